"""Huke's envelope ``code`` (when it is not numeric) goes into HukeAPIError's message, its
``.code``, the SyncReport and the CLI output without passing through the redactor.

A gateway answering ``{"code": "SIGN_ERROR expected ur-checksum <...>", ...}`` (code is text:
``_envelope_code`` keeps it as a str) leaks the app secret / checksum verbatim."""

from __future__ import annotations

import contextlib
import io

import httpx

from huke_client import HukeClient, HukeError
from huke_client.testing import FakeHuke
from huke_k3_bridge import sync_customers
from huke_k3_bridge.__main__ import main as cli_main
from k3cloud_client import K3CloudClient
from k3cloud_client.testing import (
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
)

KEY, SECRET = "adv-key", "adv-huke-secret-0123456789"
SEEN: list[str] = []


def echo(request: httpx.Request) -> httpx.Response:
    checksum = request.headers["ur-checksum"]
    SEEN.append(checksum)
    code = f"SIGN_ERROR ur-checksum={checksum} expected with app secret {SECRET}"
    return httpx.Response(200, json={"code": code, "msg": "signature rejected", "data": None})


def leaked(text: str) -> list[str]:
    return [s for s in (SECRET, *SEEN) if s in text]


def test_client_error_does_not_quote_the_code_unredacted() -> None:
    client = HukeClient(
        KEY,
        SECRET,
        base_url="http://127.0.0.1:9/openapi",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(echo)),
    )
    try:
        client.search_trades(start=0, end=1000)
    except HukeError as exc:
        texts = f"{exc} {exc!r} {getattr(exc, 'code', '')}"
    assert not leaked(texts), texts


def test_report_does_not_carry_the_code_unredacted() -> None:
    huke = HukeClient(
        KEY,
        SECRET,
        base_url="http://127.0.0.1:9/openapi",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(echo)),
    )
    k3 = K3CloudClient(
        "http://127.0.0.1:9/k3cloud/",
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
        http_client=httpx.Client(
            transport=FakeK3Cloud(
                acct_id=TEST_ACCT_ID,
                user_name=TEST_USER_NAME,
                app_id=TEST_APP_ID,
                app_secret=TEST_APP_SECRET,
            ).transport()
        ),
    )
    report = sync_customers(huke, k3, start=0, end=3_600_000, progress=False)
    text = report.to_json() + str(report) + "\n".join(report.errors)
    assert not leaked(text), text[:600]


class EchoHuke(FakeHuke):
    def handle(self, request: httpx.Request) -> httpx.Response:
        return echo(request)


def test_cli_output_does_not_carry_the_code_unredacted(monkeypatch) -> None:
    server = EchoHuke(KEY, SECRET).serve()
    k3 = FakeK3Cloud(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
    ).serve()
    try:
        env = {
            "HUKE_APP_KEY": KEY,
            "HUKE_APP_SECRET": SECRET,
            "HUKE_BASE_URL": f"{server.url}/openapi",
            "K3CLOUD_SERVER_URL": f"{k3.url}/k3cloud/",
            "K3CLOUD_ACCT_ID": TEST_ACCT_ID,
            "K3CLOUD_USER_NAME": TEST_USER_NAME,
            "K3CLOUD_APP_ID": TEST_APP_ID,
            "K3CLOUD_APP_SECRET": TEST_APP_SECRET,
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli_main(
                [
                    "sync",
                    "--start",
                    "1970-01-01T00:00:00+00:00",
                    "--end",
                    "1970-01-01T01:00:00+00:00",
                    "--no-progress",
                    "--json",
                ]
            )
        text = out.getvalue() + err.getvalue()
        assert not leaked(text), text[:600]
    finally:
        server.close()
        k3.close()
