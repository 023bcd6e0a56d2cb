"""The redaction policy: bounded pools, escaped and cut secrets, named values, the log filter."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from _huke_k3_core import (
    MASK,
    ConnectionFailedError,
    ErrorTypes,
    HTTPStatusError,
    Redactor,
    RequestTimeoutError,
    ResponseFormatError,
    SDKError,
    SyncAPIClient,
    snippet,
)
from _huke_k3_core._redact import (
    HTTP_LOGGERS,
    SESSIONS_KEPT,
    SIGNATURES_KEPT,
    mask_named_values,
)


def test_session_ids_are_kept_in_a_bounded_pool_newest_last() -> None:
    redact = Redactor(["app-secret-value"])
    sessions = [f"session-{n:06d}" for n in range(1000)]
    for session in sessions:
        redact.add_session(session)
    assert redact.size == 1 + SESSIONS_KEPT
    assert redact(sessions[-1]) == MASK
    assert redact(sessions[-SESSIONS_KEPT]) == MASK
    assert redact(sessions[0]) == sessions[0]  # long gone: forgotten, so memory stays bounded
    assert redact("app-secret-value") == MASK  # credentials are kept for good


def test_signatures_are_kept_in_their_own_bounded_pool() -> None:
    redact = Redactor()
    redact.add_session("the-live-session-id")
    for n in range(500):
        redact.add_signature(f"signature-{n:06d}")
        redact.add_signature(f"signature-{n:06d}")  # a repeat costs nothing and adds nothing
    assert redact.size == 1 + SIGNATURES_KEPT
    # A burst of requests never pushes the session out.
    assert redact("sid the-live-session-id") == f"sid {MASK}"
    assert redact("signature-000499") == MASK


def test_json_escaped_forms_of_a_secret_are_masked_too() -> None:
    secret = 'pa"ss\\wörd-42'
    redact = Redactor([secret])
    once = 'pa\\"ss\\\\wörd-42'
    once_ascii = 'pa\\"ss\\\\w\\u00f6rd-42'
    twice = 'pa\\\\\\"ss\\\\\\\\w\\\\u00f6rd-42'
    for form in (secret, once, once_ascii, twice):
        assert redact(f"body [{form}]") == f"body [{MASK}]", form


def test_short_secrets_are_masked_as_tokens_wherever_they_stand_alone() -> None:
    redact = Redactor(["p@5s"])
    body = '{"parameters":["acct","user","p@5s",2052]}'
    assert redact(body) == '{"parameters":["acct","user","***",2052]}'
    assert redact("xp@5sx p@5s1") == "xp@5sx p@5s1"


@pytest.mark.parametrize("cut", range(1, 40))
def test_a_secret_that_a_snippet_cut_in_two_is_masked_from_its_start(cut: int) -> None:
    secret = "S3CRET-TOKEN-0123456789-abcdefghij"
    redact = Redactor([secret])
    text = redact(snippet("x" * 20 + secret + " tail", limit=20 + cut))
    assert not any(secret[:n] in text for n in range(4, len(secret) + 1)), text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Cookie: kdservice-sessionid=abc123; lang=zh",
            "Cookie: ***; lang=zh",
        ),
        (
            "[(b'Set-Cookie', b'kdservice-sessionid=abc123; path=/'), (b'X', b'y')]",
            "[(b'Set-Cookie', b'***; path=/'), (b'X', b'y')]",
        ),
        (
            '{"x-kd-signature": "OWQ2YW==", "KDSVCSessionId": "s1", "x-kd-appdata": "NWRi"}',
            '{"x-kd-signature": "***", "KDSVCSessionId": "***", "x-kd-appdata": "NWRi"}',
        ),
        (
            "ur-sign: 3d60 ur-checksum=8496 ur-curtime: 1",
            "ur-sign: *** ur-checksum=*** ur-curtime: 1",
        ),
        ("password=hunter2&user=x", "password=***&user=x"),
        # Text that names a secret without giving a value is left alone.
        ("ur-sign is not the MD5 of the body received", None),
        ("check user, password or app credentials", None),
        ('"KDSVCSessionId":""', None),
    ],
)
def test_values_of_secret_headers_cookies_and_settings_are_masked_by_name(
    text: str, expected: str | None
) -> None:
    assert mask_named_values(text) == (text if expected is None else expected)
    assert Redactor()(text) == (text if expected is None else expected)


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def httpcore_log() -> Iterator[tuple[logging.Logger, _Kept]]:
    log = logging.getLogger("httpcore.http11")
    kept = _Kept()
    level = log.level
    log.setLevel(logging.DEBUG)
    log.addHandler(kept)
    try:
        yield log, kept
    finally:
        log.removeHandler(kept)
        log.setLevel(level)


def test_the_http_log_filter_masks_headers_and_registered_secrets(
    httpcore_log: tuple[logging.Logger, _Kept],
) -> None:
    log, kept = httpcore_log
    redact = Redactor(["registered-secret-1"])
    # What httpcore logs at DEBUG, before any client has read the reply.
    log.debug(
        "receive_response_headers.complete return_value=(b'HTTP/1.1', 200, b'OK', "
        "[(b'Set-Cookie', b'kdservice-sessionid=f00dfeedcafe; path=/')])"
    )
    log.debug("echo %s and %r", "registered-secret-1", {"x-api-signature": "c2ln"})
    assert kept.messages == [
        "receive_response_headers.complete return_value=(b'HTTP/1.1', 200, b'OK', "
        "[(b'Set-Cookie', b'***; path=/')])",
        "echo *** and {'x-api-signature': '***'}",
    ]
    assert redact.size == 1


def test_the_log_filter_is_installed_once_on_every_http_logger() -> None:
    for _ in range(3):
        Redactor(["x" * 8])
    for name in HTTP_LOGGERS:
        filters = logging.getLogger(name).filters
        assert len([f for f in filters if type(f).__name__ == "SecretLogFilter"]) == 1, name


class _DemoError(SDKError):
    pass


class _DemoHTTPError(_DemoError, HTTPStatusError):
    pass


class _DemoConnectionError(_DemoError, ConnectionFailedError):
    pass


class _DemoTimeoutError(_DemoConnectionError, RequestTimeoutError):
    pass


class _DemoResponseError(_DemoError, ResponseFormatError):
    pass


class _Demo(SyncAPIClient):
    _errors = ErrorTypes(
        http_status=_DemoHTTPError,
        connection=_DemoConnectionError,
        timeout=_DemoTimeoutError,
        response_format=_DemoResponseError,
    )
    _logger = logging.getLogger("demo_redact")

    def call(self) -> object:
        return self._send(lambda: self._build_request("op", b"{}"), self.decode_json)


@pytest.mark.parametrize("fail", ["status", "connect"])
def test_errors_never_show_credentials_written_into_the_url(fail: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if fail == "connect":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(503, text="busy")

    client = _Demo(
        base_url="https://user:url-pa55word@api.example.test/root/",
        timeout=5.0,
        max_retries=0,
        retry=None,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        redactor=Redactor(),
    )
    with pytest.raises(_DemoError) as info:
        client.call()
    url = getattr(info.value, "url", "")
    assert url == "https://api.example.test/root/op"
    assert "url-pa55word" not in str(info.value)
