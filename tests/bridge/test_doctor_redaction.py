"""Secrets the clients' redactors do not know, kept out of every check of the doctor's report
(issue 12): a proxy's password and a base URL's, as they are and as the ``Basic`` token that
carries them, when a proxy or server quotes its request back. Loopback servers only."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import socket
import threading

import httpx
import pytest

from _huke_k3_core.testing import LoopbackServer
from huke_client.testing import FakeHuke
from huke_k3_bridge._cli import main
from huke_k3_bridge._doctor import doctor
from huke_k3_bridge._doctor_redact import basic_tokens, environment_secrets, scrub_checks
from huke_k3_bridge._doctor_report import Check, DoctorReport
from k3cloud_client.testing import FakeK3Cloud

from .conftest import HUKE_KEY, HUKE_SECRET, K3_CREDENTIALS

PASSWORD = "Pr0xy-Passw0rd"
TOKEN = basic_tokens("puser", PASSWORD)[0]


def _texts(report: DoctorReport) -> list[str]:
    return [str(report), report.to_json(), report._repr_html_()]


# -- environment_secrets ----------------------------------------------------------------------


def test_basic_tokens_are_what_httpx_sends() -> None:
    request = httpx.Request("GET", "http://127.0.0.1/")
    sent = next(httpx.BasicAuth("u", "pässwörd").auth_flow(request)).headers["Authorization"]
    assert basic_tokens("u", "pässwörd")[0] == sent.split()[1]
    assert basic_tokens("u", "pw1") == ["dTpwdzE=", "dTpwdzE"]  # padded and bare
    assert basic_tokens("ab", "c") == ["YWI6Yw==", "YWI6Yw"]
    assert basic_tokens("abc", "de") == ["YWJjOmRl"]


@pytest.mark.parametrize("name", ["HTTP_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"])
def test_the_password_of_every_proxy_variable_is_found(name: str) -> None:
    secrets = environment_secrets([], {name: f"http://puser:{PASSWORD}@proxy.example:3128"})
    assert PASSWORD in secrets
    assert TOKEN in secrets


def test_environment_secrets_of_urls_and_the_forms_of_a_password() -> None:
    environ = {
        # No scheme (httpx reads it as http://), a password URL-quoted as written.
        "HTTPS_PROXY": "puser:p%40ss%2Fw0rd@proxy.example:3128",
        "NO_PROXY": "http://nobody:not-a-secret@example.com",
        "HUKE_BASE_URL": "http://huke:also-not-here@example.com",
        "http_proxy": "http://proxy.example:3128",
    }
    urls = ["https://k3user:K3-url-pw@k3.example/k3cloud/", httpx.URL("https://huke.example/")]
    secrets = environment_secrets(urls, environ)
    assert set(secrets) == {
        "K3-url-pw",
        *basic_tokens("k3user", "K3-url-pw"),
        "p@ss/w0rd",
        "p%40ss%2Fw0rd",
        *basic_tokens("puser", "p@ss/w0rd"),
    }
    assert len(secrets) == len(set(secrets))
    assert environment_secrets(["https://huke.example/"], {}) == []


def test_a_proxy_setting_httpx_cannot_read_still_gives_its_password() -> None:
    secrets = environment_secrets([], {"HTTPS_PROXY": f"http://puser:{PASSWORD}@[127.0.0.1"})
    assert PASSWORD in secrets
    assert TOKEN in secrets


def test_environ_none_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", f"http://puser:{PASSWORD}@127.0.0.1:9")
    assert PASSWORD in environment_secrets([], None)
    assert PASSWORD not in environment_secrets([], {})


# -- scrub_checks ---------------------------------------------------------------------------


def test_scrub_checks_masks_every_text_at_any_depth() -> None:
    url_password, chinese = "p@ss/w0rd", "密码-Passw0rd"
    check = Check(
        id="huke.auth",
        section="huke",
        title=f"Huke via {PASSWORD}",
        status="fail",
        summary=f"407: got Basic {TOKEN} ({PASSWORD})",
        fix=f"correct puser:{PASSWORD}",
        details={
            "lines": [f"Proxy-Authorization: Basic {TOKEN}", "nothing here"],
            "nested": {"deeper": ({"json": json.dumps({"pw": chinese})},), "n": 3},
            PASSWORD: True,
            "next": "http://h/?next=http%3A//u:p%40ss%2Fw0rd@h/",
        },
    )
    untouched = Check(id="k3.org", section="k3", title="K/3 org", status="pass", summary="100")
    scrubbed = scrub_checks([check, untouched], [PASSWORD, TOKEN, url_password, chinese])
    assert scrubbed[1] == untouched
    clean = scrubbed[0]
    assert (clean.id, clean.section, clean.status, clean.required) == (
        check.id,
        check.section,
        check.status,
        check.required,
    )
    assert clean.title == "Huke via ***"
    assert clean.summary == "407: got Basic *** (***)"
    assert clean.fix == "correct puser:***"
    assert clean.details["lines"] == ["Proxy-Authorization: Basic ***", "nothing here"]
    assert clean.details["nested"]["n"] == 3
    assert clean.details["***"] is True
    assert clean.details["nested"]["deeper"] == ({"json": '{"pw": "***"}'},)
    assert clean.details["next"] == "http://h/?next=http%3A//u:***@h/"
    text = json.dumps(clean.to_dict(), ensure_ascii=False)
    for secret in (PASSWORD, TOKEN, "p%40ss%2Fw0rd", chinese, "Passw0rd"):
        assert secret not in text
    assert scrub_checks([check], []) == (check,)


# -- end to end: a proxy that quotes the credentials it was sent ----------------------------


class _QuotingProxy:
    """An HTTP proxy on 127.0.0.1 that refuses every request with 407, quoting the
    ``Proxy-Authorization`` it got and the user and password in it (as a careless one might)."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = int(self._sock.getsockname()[1])
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(OSError), conn:
                conn.settimeout(2)
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65_536:
            chunk = conn.recv(65_536)
            if not chunk:
                return
            head += chunk
        text = head.decode("latin-1")
        found = re.search(r"(?im)^proxy-authorization: *basic +(\S+)", text)
        token = found.group(1) if found else "none"
        self.seen.append(token)
        pair = base64.b64decode(token).decode() if found else "nobody"
        body = json.dumps({"denied": f"Basic {token}", "credentials": pair}).encode()
        conn.sendall(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    def __enter__(self) -> _QuotingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@pytest.fixture
def env(clean_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The clients' settings, and no proxy setting of the machine running the tests."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            clean_env.delenv(name)
    clean_env.setenv("HUKE_APP_KEY", HUKE_KEY)
    clean_env.setenv("HUKE_APP_SECRET", HUKE_SECRET)
    clean_env.setenv("K3CLOUD_ACCT_ID", K3_CREDENTIALS["acct_id"])
    clean_env.setenv("K3CLOUD_USER_NAME", K3_CREDENTIALS["user_name"])
    clean_env.setenv("K3CLOUD_APP_ID", K3_CREDENTIALS["app_id"])
    clean_env.setenv("K3CLOUD_APP_SECRET", K3_CREDENTIALS["app_secret"])
    return clean_env


@pytest.mark.parametrize("name", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_a_proxy_quoting_its_password_back_does_not_put_it_in_any_check(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    with _QuotingProxy() as proxy:
        # Every request goes to the proxy: the servers behind it are never reached.
        env.setenv("HUKE_BASE_URL", "http://127.0.0.1:9/openapi")
        env.setenv("K3CLOUD_SERVER_URL", "http://127.0.0.1:9/k3cloud/")
        env.setenv(name, f"http://puser:{PASSWORD}@127.0.0.1:{proxy.port}")
        report = doctor(network=False, timeout=2)
        status = main(["doctor", "--json", "--no-network"])
        printed = capsys.readouterr()
    assert TOKEN in proxy.seen  # the clients sent the credentials, and got them quoted back
    assert "407" in report["huke.auth"].summary
    assert "407" in report["k3.auth"].summary
    assert status == 1
    for text in [*_texts(report), printed.out, printed.err]:
        assert PASSWORD not in text
        assert TOKEN not in text


# -- end to end: a server quoting the Basic token of its URL's password -----------------------


def test_the_basic_token_of_the_base_urls_password_never_shows(env: pytest.MonkeyPatch) -> None:
    """httpx sends a URL's userinfo as ``Authorization: Basic`` with the clock's request (the
    clients sign theirs their own way); a server that quotes it in its ``Date`` shows neither
    the password nor the token."""
    password = "Ur1-Passw0rd"
    token = basic_tokens("u", password)[0]
    fake = FakeHuke(HUKE_KEY, HUKE_SECRET)

    def huke(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, headers={"Date": request.headers.get("authorization", "")})
        return fake(request)

    with LoopbackServer(huke) as server, FakeK3Cloud(**K3_CREDENTIALS).serve() as k3:
        env.setenv("HUKE_BASE_URL", server.url.replace("//", f"//u:{password}@") + "/openapi")
        env.setenv("K3CLOUD_SERVER_URL", k3.url + "/k3cloud/")
        report = doctor(timeout=2)
    assert report["huke.auth"].status == "pass"
    assert "Basic ***" in report["network.huke.clock"].summary
    for text in _texts(report):
        assert password not in text
        assert token not in text
