"""Faults: which are retried (always with a freshly signed request) and which raise what."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

import _huke_k3_core._transport as transport
from huke_client import (
    HukeAPIError,
    HukeClient,
    HukeConnectionError,
    HukeError,
    HukeHTTPError,
    HukeResponseError,
    HukeTimeoutError,
    RetryPolicy,
)
from huke_client.testing import FakeHuke, Fault, envelope_error, fake_trade

from .conftest import END_MS, INSTANT, START_MS


@pytest.fixture
def trades(fake: FakeHuke) -> FakeHuke:
    fake.add_trades(fake_trade(create_time=START_MS + i, tid=f"T{i}") for i in range(3))
    return fake


def search(client: HukeClient) -> list[str]:
    return [t["tid"] for t in client.search_trades(start=START_MS, end=END_MS).trades]


def assert_freshly_signed(fake: FakeHuke) -> None:
    """Every attempt carried its own curtime and checksum, over the same body."""
    attempts = list(fake.received)
    assert len(attempts) >= 2
    curtimes = [r.headers["ur-curtime"] for r in attempts]
    checksums = [r.headers["ur-checksum"] for r in attempts]
    assert len(set(curtimes)) == len(attempts)
    assert len(set(checksums)) == len(attempts)
    assert [int(c) for c in curtimes] == sorted(int(c) for c in curtimes)
    assert len({r.content for r in attempts}) == 1


RETRIED = [
    pytest.param(lambda: Fault.http_status(500), id="500"),
    pytest.param(lambda: Fault.http_status(502), id="502"),
    pytest.param(lambda: Fault.http_status(503), id="503"),
    pytest.param(lambda: Fault.http_status(429, retry_after=0), id="429"),
    pytest.param(Fault.reset, id="reset"),
    pytest.param(Fault.connect_error, id="connect-error"),
    pytest.param(Fault.timeout, id="timeout"),
    pytest.param(Fault.malformed_json, id="malformed-json"),
]


@pytest.mark.parametrize("make_fault", RETRIED)
def test_transient_faults_are_retried_with_a_fresh_signature(
    trades: FakeHuke, client: HukeClient, make_fault: Callable[[], Fault]
) -> None:
    trades.inject(make_fault(), times=2)
    assert search(client) == ["T0", "T1", "T2"]
    assert trades.request_count == 3
    assert_freshly_signed(trades)


@pytest.mark.parametrize("make_fault", RETRIED)
async def test_async_client_retries_the_same_faults(
    trades: FakeHuke, make_fault: Callable[[], Fault]
) -> None:
    trades.inject(make_fault(), times=2)
    async with trades.async_client(retry=INSTANT) as client:
        page = await client.search_trades(start=START_MS, end=END_MS)
    assert [t["tid"] for t in page.trades] == ["T0", "T1", "T2"]
    assert_freshly_signed(trades)


@pytest.mark.parametrize(
    ("fault", "error", "text"),
    [
        (Fault.http_status(503), HukeHTTPError, "answered HTTP 503: 'simulated HTTP 503'"),
        (Fault.http_status(429), HukeHTTPError, "answered HTTP 429"),
        (Fault.reset(), HukeConnectionError, "Connection reset by peer"),
        (Fault.timeout(), HukeTimeoutError, "timed out"),
    ],
)
def test_exhausted_retries_raise_the_typed_error(
    trades: FakeHuke, client: HukeClient, fault: Fault, error: type[HukeError], text: str
) -> None:
    trades.inject(fault, times=10)
    with pytest.raises(error, match=text):
        search(client)
    assert trades.request_count == 3  # the first attempt and max_retries=2


def test_http_error_carries_status_and_a_body_snippet(trades: FakeHuke) -> None:
    trades.inject(Fault.http_status(400, body=b"<html>bad gateway\n config</html>"))
    with trades.client(retry=INSTANT) as client, pytest.raises(HukeHTTPError) as info:
        search(client)
    assert info.value.status_code == 400
    assert info.value.body == "<html>bad gateway config</html>"
    assert info.value.url == "https://huke.163.com/openapi/trade/searchTrades"
    assert trades.request_count == 1  # a 400 is not retried


def test_malformed_json_every_time_is_a_response_error_with_a_snippet(
    trades: FakeHuke, client: HukeClient
) -> None:
    trades.inject(Fault.malformed_json(), times=3)
    with pytest.raises(HukeResponseError) as info:
        search(client)
    assert info.value.body == '{"code": 200, "data": [{"trunc'
    assert "is not JSON" in str(info.value)
    assert trades.request_count == 3
    assert_freshly_signed(trades)
    assert search(client) == ["T0", "T1", "T2"]  # the next call is unaffected


@pytest.mark.parametrize(
    "body",
    [b'["not", "an", "envelope"]', b'{"msg": "no code"}', b'{"code": true}', b"null"],
)
def test_json_that_is_not_the_envelope_is_a_response_error(
    trades: FakeHuke, client: HukeClient, body: bytes
) -> None:
    trades.inject(Fault.reply(body))
    with pytest.raises(HukeResponseError, match="not the Huke envelope") as info:
        search(client)
    assert info.value.body == body.decode()


def test_error_envelope_raises_api_error_without_retry(
    trades: FakeHuke, client: HukeClient
) -> None:
    trades.inject(envelope_error(1011, "客户已存在", data={"id": 7}))
    with pytest.raises(HukeAPIError) as info:
        search(client)
    error = info.value
    assert (error.code, error.msg, error.data) == (1011, "客户已存在", {"id": 7})
    assert error.path == "/openapi/trade/searchTrades"
    assert str(error) == "/openapi/trade/searchTrades failed with Huke error 1011: 客户已存在"
    assert trades.request_count == 1


def test_retry_codes_make_an_error_envelope_retryable(trades: FakeHuke) -> None:
    trades.inject(envelope_error(40100, "rate limited"), times=2)
    with trades.client(retry=INSTANT, retry_codes={40100}) as client:
        assert search(client) == ["T0", "T1", "T2"]
    assert trades.request_count == 3
    assert_freshly_signed(trades)


def test_retry_codes_exhausted_raise_the_api_error(trades: FakeHuke) -> None:
    trades.inject(envelope_error(40100, "rate limited"), times=5)
    with (
        trades.client(retry=INSTANT, retry_codes=["40100"]) as client,
        pytest.raises(HukeAPIError, match="Huke error 40100: rate limited"),
    ):
        search(client)
    assert trades.request_count == 3


def test_string_success_code_is_accepted(trades: FakeHuke, client: HukeClient) -> None:
    trades.inject(Fault.reply(b'{"code": "200", "msg": "ok", "data": {"list": []}}'))
    assert search(client) == []


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, delay: float) -> None:
        self.delays.append(delay)

    async def asleep(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Sleeps:
    recorder = Sleeps()
    monkeypatch.setattr(transport.time, "sleep", recorder)
    monkeypatch.setattr(anyio, "sleep", recorder.asleep)
    return recorder


PATIENT = RetryPolicy(initial_delay=0, max_delay=0, jitter=0, max_retry_after=60)


def test_retry_after_seconds_is_honoured(trades: FakeHuke, sleeps: Sleeps) -> None:
    trades.inject(Fault.http_status(429, retry_after="7"))
    with trades.client(retry=PATIENT) as client:
        assert search(client) == ["T0", "T1", "T2"]
    assert sleeps.delays == [7.0]
    assert_freshly_signed(trades)


def test_retry_after_http_date_is_honoured(trades: FakeHuke, sleeps: Sleeps) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    trades.inject(Fault.http_status(429, retry_after=when))
    with trades.client(retry=PATIENT) as client:
        assert search(client) == ["T0", "T1", "T2"]
    assert len(sleeps.delays) == 1
    assert 27.0 < sleeps.delays[0] <= 30.0


def test_retry_after_is_capped(trades: FakeHuke, sleeps: Sleeps) -> None:
    trades.inject(Fault.http_status(503, retry_after="3600"))
    with trades.client(retry=PATIENT) as client:
        search(client)
    assert sleeps.delays == [60.0]


async def test_async_retry_after_is_honoured(trades: FakeHuke, sleeps: Sleeps) -> None:
    trades.inject(Fault.http_status(429, retry_after="4"))
    async with trades.async_client(retry=PATIENT) as client:
        page = await client.search_trades(start=START_MS, end=END_MS)
    assert len(page.trades) == 3
    assert sleeps.delays == [4.0]


def test_backoff_grows_exponentially_without_retry_after(trades: FakeHuke, sleeps: Sleeps) -> None:
    trades.inject(Fault.http_status(502), times=3)
    policy = RetryPolicy(max_retries=3, initial_delay=0.5, max_delay=1.5, jitter=0)
    with trades.client(retry=policy) as client:
        search(client)
    assert sleeps.delays == [0.5, 1.0, 1.5]


def test_writes_are_not_retried_after_the_request_may_have_been_processed(
    fake: FakeHuke,
) -> None:
    calls: list[dict[str, Any]] = []
    fake.add_route("customer/addCustomer", lambda body: calls.append(body) or {"id": 1})
    fake.inject(Fault.reply_lost())
    with fake.client(retry=INSTANT) as client:
        with pytest.raises(HukeConnectionError) as info:
            client.request("customer/addCustomer", {"name": "王小明"})
        assert info.value.reached_server is True
        assert calls == [{"name": "王小明"}]  # processed once, not repeated
        fake.inject(Fault.connect_error())  # surely never sent: safe to retry even a write
        assert client.request("customer/addCustomer", {"name": "李雷"}) == {"id": 1}
        fake.inject(Fault.http_status(503))
        with pytest.raises(HukeHTTPError):
            client.request("customer/addCustomer", {"name": "韩梅梅"})
        fake.inject(Fault.http_status(503))
        assert client.request("customer/addCustomer", {"n": 1}, idempotent=True) == {"id": 1}
    assert fake.request_count == 6


def test_an_injected_http_client_keeps_the_signing(fake: FakeHuke) -> None:
    fake.add_route("customer/fields", lambda body: ["name"])
    http = httpx.Client(transport=fake.transport(), headers={"X-Proxy-Tag": "t"})
    with HukeClient(
        "34ff472473d741b881a7b46a3cfb5b59",
        "d83d0971ca5641a7a6b2b7c78dea7f49",
        http_client=http,
        clock=fake.clock,
    ) as client:
        assert client.request("customer/fields") == ["name"]
    assert fake.received[0].headers["X-Proxy-Tag"] == "t"
    assert not http.is_closed  # the caller's client stays the caller's
    http.close()
