"""A redirect is never followed, even through a user's ``httpx.Client(follow_redirects=True)``:
following one would carry the request's signatures, the app id (its secret half), session
cookies or a login body with a password to whatever host the ``Location`` names. Loopback only:
a first server answers with a 3xx pointing at a second one, which must receive nothing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest

from _huke_k3_core import HTTPStatusError
from _huke_k3_core.testing import LoopbackServer, serve
from huke_client import AsyncHukeClient, HukeClient, HukeHTTPError
from k3cloud_client import AsyncK3CloudClient, K3CloudClient, K3CloudHTTPError
from k3cloud_client.testing import (
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
)

SIGNED = {
    "acct_id": TEST_ACCT_ID,
    "user_name": TEST_USER_NAME,
    "app_id": TEST_APP_ID,
    "app_secret": TEST_APP_SECRET,
}
PASSWORD = {"acct_id": TEST_ACCT_ID, "user_name": TEST_USER_NAME, "password": "pw-Redir-5ecret"}


class Elsewhere:
    """The host a redirect points at: counts what reaches it."""

    def __init__(self) -> None:
        self.received: list[httpx.Request] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.received.append(request)
        return httpx.Response(200, json=[])


@pytest.fixture
def elsewhere() -> Iterator[tuple[Elsewhere, LoopbackServer]]:
    target = Elsewhere()
    with serve(target) as server:
        yield target, server


def redirecting(status: int, to: str) -> Callable[[httpx.Request], httpx.Response]:
    """Every request answered with ``status`` to the same path on ``to``."""
    return lambda request: httpx.Response(status, headers={"Location": to + request.url.path})


def k3_call(client: Any) -> Any:
    return client.execute_bill_query("BD_Customer", ["FNumber"])


def huke_call(client: Any) -> Any:
    return client.search_trades(start=0, end=1000)


CLIENTS = {
    "k3-signed": (K3CloudClient, AsyncK3CloudClient, "/k3cloud/", SIGNED, k3_call),
    # The login request is the one redirected: it carries the password in its body.
    "k3-password-login": (K3CloudClient, AsyncK3CloudClient, "/k3cloud/", PASSWORD, k3_call),
    "huke": (HukeClient, AsyncHukeClient, "/openapi", {}, huke_call),
}


def _make(kind: str, mode: str, url: str, http: Any) -> Any:
    sync_cls, async_cls, path, creds, _ = CLIENTS[kind]
    cls = sync_cls if mode == "sync" else async_cls
    if kind == "huke":
        return cls("redir-key", "redir-huke-secret", base_url=url + path, http_client=http)
    return cls(url + path, http_client=http, max_retries=0, **creds)


def _outcome(kind: str, mode: str, url: str) -> BaseException | Any:
    call = CLIENTS[kind][4]
    if mode == "sync":
        with httpx.Client(follow_redirects=True, timeout=5) as http:
            try:
                return call(_make(kind, mode, url, http))
            except Exception as exc:  # the assertions say what it should be
                return exc

    async def run() -> Any:
        async with httpx.AsyncClient(follow_redirects=True, timeout=5) as http:
            try:
                return await call(_make(kind, mode, url, http))
            except Exception as exc:  # the assertions say what it should be
                return exc

    return anyio.run(run)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("kind", list(CLIENTS))
@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_following_user_client_sends_nothing_to_the_location(
    elsewhere: tuple[Elsewhere, LoopbackServer], kind: str, mode: str, status: int
) -> None:
    target, other = elsewhere
    with serve(redirecting(status, other.url)) as first:
        outcome = _outcome(kind, mode, first.url)
    assert target.received == [], (
        f"{kind} ({mode}) sent {[str(r.url) for r in target.received]} to the Location's host"
    )
    assert isinstance(outcome, HTTPStatusError), outcome
    assert outcome.status_code == status
    assert outcome.location is not None
    assert outcome.location.startswith(other.url)


# -- the Location is server text: it passes through the client's redactor -------------------------


def _cookies(request: httpx.Request) -> dict[str, str]:
    pairs = (p.strip().split("=", 1) for p in request.headers.get("cookie", "").split(";"))
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def _k3_redirect_to_login(fake: FakeK3Cloud, secret_of: Callable[[httpx.Request], str]) -> Any:
    """The fake, except that a query is answered with a 302 whose path holds ``secret_of(the
    request)``, as an SSO gateway with ASP.NET cookieless sessions answers."""

    def respond(request: httpx.Request) -> httpx.Response:
        if ".ExecuteBillQuery." in request.url.path:
            location = f"/k3cloud/(S({secret_of(request)}))/login.aspx?ReturnUrl=%2fk3cloud"
            return httpx.Response(302, headers={"Location": location})
        return fake(request)

    return respond


SECRETS_OF: dict[str, tuple[dict[str, str], Callable[[httpx.Request], str]]] = {
    # The session id this very request carried.
    "session-id": (PASSWORD, lambda r: _cookies(r)["kdservice-sessionid"]),
    # The replayable signature of the signed-header scheme.
    "kd-signature": (SIGNED, lambda r: r.headers["x-kd-signature"]),
    # An id the server made up itself, which no redactor knows: masked by its shape.
    "server-issued-id": (SIGNED, lambda r: "srv0issued0cookieless0id"),
}


@pytest.mark.parametrize("secret_kind", list(SECRETS_OF))
def test_a_redirect_location_quoting_a_secret_is_masked_in_the_error_and_every_log_line(
    caplog: pytest.LogCaptureFixture, secret_kind: str
) -> None:
    creds, secret_of = SECRETS_OF[secret_kind]
    fake = FakeK3Cloud(**creds)
    seen: list[str] = []

    def remember(request: httpx.Request) -> str:
        seen.append(secret_of(request))
        return seen[-1]

    caplog.set_level(logging.DEBUG)
    with (
        serve(_k3_redirect_to_login(fake, remember)) as server,
        K3CloudClient(server.url + "/k3cloud/", max_retries=0, **creds) as client,
        pytest.raises(K3CloudHTTPError) as caught,
    ):
        client.execute_bill_query("BD_Customer", ["FNumber"])
    error = caught.value
    assert seen
    assert len(seen[0]) >= 16
    shown = [str(error), repr(error), str(error.location), caplog.text]
    assert [text for text in shown if seen[0] in text] == []
    # Still says where it leads: scheme, host and path, the secret alone masked.
    assert error.location == f"{server.url}/k3cloud/(S(***))/login.aspx"
    assert f"a redirect to {error.location} (not followed)" in str(error)
    assert "(b'location'" in caplog.text.lower()  # the HTTP stack's DEBUG lines were captured


def test_a_redirected_login_quoting_the_password_in_its_location_masks_it() -> None:
    fake = FakeK3Cloud(**PASSWORD)

    def respond(request: httpx.Request) -> httpx.Response:
        if ".ValidateUser." in request.url.path:
            location = (
                f"https://sso.example.test/form/{PASSWORD['password']}/(A(anon0visitor0id0x))"
            )
            return httpx.Response(302, headers={"Location": location})
        return fake(request)

    client = K3CloudClient(
        "http://k3.test/k3cloud/",
        http_client=httpx.Client(transport=httpx.MockTransport(respond)),
        max_retries=0,
        **PASSWORD,
    )
    with pytest.raises(K3CloudHTTPError) as caught:
        client.execute_bill_query("BD_Customer", ["FNumber"])
    assert caught.value.location == "https://sso.example.test/form/***/(A(***))"
    assert PASSWORD["password"] not in str(caught.value)
    assert "anon0visitor0id0x" not in str(caught.value)


def test_a_huke_redirect_location_quoting_the_request_signature_is_masked() -> None:
    signatures: list[str] = []

    def respond(request: httpx.Request) -> httpx.Response:
        signatures.append(request.headers["ur-sign"])
        return httpx.Response(302, headers={"Location": f"/login/{signatures[-1]}/again"})

    client = HukeClient(
        "redir-key",
        "redir-huke-secret",
        base_url="http://huke.test/openapi",
        http_client=httpx.Client(transport=httpx.MockTransport(respond)),
        max_retries=0,
    )
    with pytest.raises(HukeHTTPError) as caught:
        huke_call(client)
    assert caught.value.location == "http://huke.test/login/***/again"
    assert signatures[0] not in str(caught.value)
