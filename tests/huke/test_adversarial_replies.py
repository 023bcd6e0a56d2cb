"""Replies a misbehaving server (or a proxy in front of it) can send: every one is a typed
``HukeError`` saying what was received, retried only when a repeat may help, and a trade's values
never reach the log."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest

import _huke_k3_core._transport as transport
from huke_client import (
    AsyncHukeClient,
    HukeClient,
    HukeHTTPError,
    HukeResponseError,
    RetryPolicy,
)
from huke_client.testing import FakeHuke, fake_trade

from .conftest import APP_KEY, APP_SECRET, END_MS, INSTANT, START_MS

GARBAGE = b"\x1f\x8b\x08garbage"
PHONE = "13812345678"
Handler = Callable[[httpx.Request], httpx.Response]


class _Raw(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body handed over undecoded (``content=`` would decode it in the handler already)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self.data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


def garbled() -> httpx.Response:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    return httpx.Response(200, stream=_Raw(GARBAGE), headers=headers)


def json_reply(body: bytes | str, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, content=body, headers={"Content-Type": "application/json", **headers}
    )


class Server:
    """The fake behind ``replies``: each request takes the next one (a response, or None for the
    fake's own answer); when they run out the fake answers."""

    def __init__(self, fake: FakeHuke, *replies: httpx.Response | None) -> None:
        self.fake = fake
        self.replies = list(replies)
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        reply = self.replies.pop(0) if self.replies else None
        return reply if reply is not None else self.fake(request)


@pytest.fixture
def fake(fake: FakeHuke) -> FakeHuke:
    fake.add_trades(fake_trade(create_time=START_MS + i, tid=f"T{i}") for i in range(3))
    return fake


def tids(page: Any) -> list[str]:
    return [trade["tid"] for trade in page.trades]


def search(
    fake: FakeHuke, handler: Handler, kind: str, retry: RetryPolicy = INSTANT, **call: Any
) -> Any:
    """``search_trades`` (or ``request`` when ``path`` is given) through ``handler``."""
    options: dict[str, Any] = {"clock": fake.clock, "eid": fake.eid, "retry": retry}
    path = call.pop("path", None)
    if kind == "sync":
        with HukeClient(
            APP_KEY,
            APP_SECRET,
            http_client=httpx.Client(transport=httpx.MockTransport(handler)),
            **options,
        ) as client:
            if path is not None:
                return client.request(path, {}, **call)
            return client.search_trades(start=START_MS, end=END_MS)

    async def run() -> Any:
        async with AsyncHukeClient(
            APP_KEY,
            APP_SECRET,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
            **options,
        ) as client:
            if path is not None:
                return await client.request(path, {}, **call)
            return await client.search_trades(start=START_MS, end=END_MS)

    return anyio.run(run)


KINDS = pytest.mark.parametrize("kind", ["sync", "async"])


@KINDS
def test_a_reply_nested_3000_deep_is_a_response_error_naming_its_depth(
    fake: FakeHuke, kind: str
) -> None:
    body = '{"code":200,"msg":"ok","data":{"list":[' + '{"a":' * 3000 + "1" + "}" * 3000 + "]}}"
    server = Server(fake, *[json_reply(body)] * 5)
    with pytest.raises(HukeResponseError) as caught:
        search(fake, server, kind)
    assert "nested 3003 levels deep" in str(caught.value)
    assert caught.value.body.startswith('{"code":200,"msg":"ok","data":{"list":[{"a":{"a":')
    assert not caught.value.transient
    assert server.requests == 1  # well-formed as far as it goes: a repeat brings the same


@KINDS
def test_a_body_its_content_encoding_garbles_is_retried_like_a_lost_reply(
    fake: FakeHuke, kind: str
) -> None:
    server = Server(fake, garbled())
    assert tids(search(fake, server, kind)) == ["T0", "T1", "T2"]
    assert server.requests == 2


@KINDS
def test_a_body_garbled_every_time_is_a_response_error_naming_the_content_encoding(
    fake: FakeHuke, kind: str
) -> None:
    server = Server(fake, *[garbled() for _ in range(5)])
    with pytest.raises(HukeResponseError) as caught:
        search(fake, server, kind)
    assert "Content-Encoding 'gzip'" in str(caught.value)
    assert "/openapi/trade/searchTrades" in str(caught.value)
    assert caught.value.transient
    assert server.requests == 3  # the first attempt and max_retries=2


@KINDS
def test_a_write_whose_reply_is_garbled_is_not_sent_again(fake: FakeHuke, kind: str) -> None:
    server = Server(fake, garbled(), garbled())
    with pytest.raises(HukeResponseError, match="cannot be decoded"):
        search(fake, server, kind, path="trade/searchTrades", idempotent=False)
    assert server.requests == 1  # it may have been carried out


@KINDS
def test_a_redirect_is_an_http_error_naming_status_and_location(fake: FakeHuke, kind: str) -> None:
    location = "https://login.example.invalid/sso?service=huke&ticket=ST-SECRET"
    server = Server(fake, httpx.Response(302, headers={"Location": location}))
    with pytest.raises(HukeHTTPError) as caught:
        search(fake, server, kind)
    error = caught.value
    assert error.status_code == 302
    assert error.location == "https://login.example.invalid/sso"
    assert "HTTP 302, a redirect to https://login.example.invalid/sso" in str(error)
    assert "base URL" in str(error)
    assert "ST-SECRET" not in str(error)
    assert "not JSON" not in str(error)
    assert server.requests == 1


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(transport.time, "sleep", recorded.append)

    async def fake_sleep(delay: float) -> None:
        recorded.append(delay)

    monkeypatch.setattr(transport, "_async_sleep", fake_sleep)
    return recorded


@KINDS
@pytest.mark.parametrize("header", ["nan", "inf", "-1", "1e309", "garbage"])
def test_a_retry_after_that_is_no_number_of_seconds_never_reaches_sleep(
    fake: FakeHuke, sleeps: list[float], kind: str, header: str
) -> None:
    busy = json_reply(b"busy", 503, **{"Retry-After": header})
    server = Server(fake, busy, busy)
    policy = RetryPolicy(initial_delay=0.01, jitter=0.0, max_retry_after=60.0)
    assert tids(search(fake, server, kind, retry=policy)) == ["T0", "T1", "T2"]
    assert sleeps == [0.01, 0.02]  # the backoff, as without a Retry-After
    assert all(math.isfinite(s) for s in sleeps)


@KINDS
def test_a_trade_field_that_cannot_be_read_is_logged_without_its_value(
    fake: FakeHuke, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    trade = {"tid": "T1", "buyerNick": {"mobile": PHONE}, "buyerCid": [PHONE], "createTime": 1}
    body = httpx.Response(200, json={"code": 200, "msg": "ok", "data": {"list": [trade]}})
    with caplog.at_level(logging.DEBUG, logger="huke_client"):
        page = search(fake, Server(fake, body), kind)
    assert page.trades[0].buyer_nick is None
    assert page.trades[0]["buyerNick"] == {"mobile": PHONE}  # kept whole, for the caller
    assert PHONE not in caplog.text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "Trade.buyer_nick (wire key 'buyerNick', text or a number)" in warnings[0]
    assert "received a JSON object of 1 key" in warnings[0]
    assert "Trade.buyer_cid (wire key 'buyerCid', text or a number)" in warnings[1]
    assert "received a JSON array of 1 item" in warnings[1]
