"""The client surface: configuration, the exact search body, time handling, parity, secrets."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

import huke_client
from huke_client import (
    AsyncHukeClient,
    HukeAPIError,
    HukeClient,
    HukeConfigError,
    HukeHTTPError,
    HukePageLimitError,
    to_epoch_ms,
)
from huke_client.testing import FakeHuke, Fault, envelope_error, generate_trades

from .conftest import APP_KEY, APP_SECRET, END_MS, INSTANT, START_MS, Clock

SECRET = "s3cr3t-Do-Not-Leak-0123456789"


def test_public_api_is_exported() -> None:
    # The documented defaults; every other public name is a class or function.
    values: dict[str, object] = {
        "DEFAULT_BASE_URL": "https://huke.163.com/openapi",
        "DEFAULT_MAX_PAGES": 100_000,
        "DEFAULT_MAX_RESTARTS": 3,
        "TimeLike": datetime | int,
    }
    for name in huke_client.__all__:
        value = getattr(huke_client, name)  # raises for a name listed but not served
        if name in values:
            assert value == values[name], name
        else:  # the object itself, not another served under its name
            assert value.__name__ == name
    assert "HukeClient" in huke_client.__all__
    assert "AsyncHukeClient" in huke_client.__all__


def test_search_body_is_the_scheme_byte_for_byte(fake: FakeHuke, client: HukeClient) -> None:
    client.search_trades(start=1732728000123, end=1732800000123, page_size=10)
    sent = fake.received[0]
    assert sent.url == "https://huke.163.com/openapi/trade/searchTrades"
    assert sent.method == "POST"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.content == (
        b'{"source":"2","dealerList":[],"timeRanges":[{"timeType":"1",'
        b'"startTime":"1732728000123","endTime":"1732800000123","page":"1","pageSize":"10"}]}'
    )


def test_search_arguments_and_extra_fields_reach_the_wire(
    fake: FakeHuke, client: HukeClient
) -> None:
    client.search_trades(
        start=1,
        end=2,
        page=3,
        page_size=5,
        source="7",
        time_type="1",
        dealer_list=["d1", 2],
        shopId="S9",  # type: ignore[list-item]
    )
    assert json.loads(fake.received[0].content) == {
        "source": "7",
        "dealerList": ["d1", "2"],
        "timeRanges": [
            {"timeType": "1", "startTime": "1", "endTime": "2", "page": "3", "pageSize": "5"}
        ],
        "shopId": "S9",
    }


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"timeRanges": []}, ValueError, "extra field timeRanges would replace"),
        ({"page": 0}, ValueError, "page must be an int >= 1"),
        ({"page_size": 0}, ValueError, "page_size must be an int >= 1"),
        ({"start": END_MS + 1}, ValueError, "is after end"),
        ({"start": 1.5}, TypeError, "start must be a datetime or epoch milliseconds"),
        ({"end": -1}, ValueError, "end must be epoch milliseconds >= 0"),
        ({"dealer_list": "d1"}, TypeError, "not one string"),
    ],
)
def test_bad_arguments_fail_before_any_request(
    fake: FakeHuke, client: HukeClient, kwargs: dict[str, Any], error: type[Exception], text: str
) -> None:
    arguments: dict[str, Any] = {"start": START_MS, "end": END_MS, **kwargs}
    with pytest.raises(error, match=text):
        client.search_trades(**arguments)
    if "page" not in kwargs:  # iterators choose pages themselves
        with pytest.raises(error, match=text):
            client.iter_trades(**arguments)  # raised on the call, not on the first next()
    assert fake.request_count == 0


def test_window_must_be_a_timedelta_of_at_least_a_millisecond(client: HukeClient) -> None:
    with pytest.raises(TypeError, match="window must be a timedelta"):
        client.iter_trades(start=0, end=10, window=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1 ms"):
        client.iter_trades(start=0, end=10, window=timedelta(microseconds=10))


def test_times_convert_to_epoch_milliseconds() -> None:
    aware = datetime(2024, 11, 27, 17, 20, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    assert to_epoch_ms(aware) == 1732699200123
    assert to_epoch_ms(datetime(1970, 1, 1, tzinfo=timezone.utc)) == 0
    naive = datetime(2024, 11, 27, 17, 20, 0, 123000)
    assert to_epoch_ms(naive) == round(naive.timestamp() * 1000)  # naive = local time
    assert to_epoch_ms(1732699200123) == 1732699200123
    with pytest.raises(TypeError):
        to_epoch_ms(True)


def test_datetimes_reach_the_wire_as_epoch_ms(fake: FakeHuke, client: HukeClient) -> None:
    tz = timezone(timedelta(hours=8))
    client.search_trades(
        start=datetime(2024, 11, 27, 0, 0, tzinfo=tz), end=datetime(2024, 11, 27, 20, 0, tzinfo=tz)
    )
    entry = json.loads(fake.received[0].content)["timeRanges"][0]
    assert (entry["startTime"], entry["endTime"]) == ("1732636800000", "1732708800000")


def test_request_any_endpoint(fake: FakeHuke, client: HukeClient) -> None:
    fake.add_route("customer/fields", lambda body: [{"name": "手机", "body": body}])
    assert client.request("customer/fields") == [{"name": "手机", "body": {}}]
    assert client.request("/customer/fields", {"a": 1}) == [{"name": "手机", "body": {"a": 1}}]
    with pytest.raises(HukeAPIError) as info:
        client.request("customer/nothing")
    assert info.value.code == 404
    assert info.value.msg == "no such API: /openapi/customer/nothing"


def test_base_url_may_or_may_not_end_with_a_slash(fake: FakeHuke) -> None:
    fake.add_route("customer/fields", lambda body: [])
    for base in ("https://h.test/openapi", "https://h.test/openapi/"):
        with fake.client(base_url=base) as client:
            client.request("customer/fields")
        assert fake.received[-1].url == "https://h.test/openapi/customer/fields"


def test_from_env_reads_the_four_variables() -> None:
    env = {
        "HUKE_APP_KEY": APP_KEY,
        "HUKE_APP_SECRET": APP_SECRET,
        "HUKE_BASE_URL": "https://huke.example/openapi",
        "HUKE_EID": "E1",
    }
    with HukeClient.from_env(env) as client:
        assert client.app_key == APP_KEY
        assert client.eid == "E1"
        assert str(client.base_url) == "https://huke.example/openapi/"
    with HukeClient.from_env({"HUKE_APP_KEY": "k", "HUKE_APP_SECRET": "s"}, max_retries=5) as c:
        assert str(c.base_url) == "https://huke.163.com/openapi/"
        assert (c.eid, c.max_retries) == (None, 5)


async def test_async_from_env() -> None:
    async with AsyncHukeClient.from_env({"HUKE_APP_KEY": "k", "HUKE_APP_SECRET": "s"}) as c:
        assert isinstance(c, AsyncHukeClient)


def test_from_env_names_what_is_missing() -> None:
    with pytest.raises(HukeConfigError, match="missing setting HUKE_APP_SECRET") as info:
        HukeClient.from_env({"HUKE_APP_KEY": "k", "HUKE_APP_SECRET": "  "})
    assert "HUKE_APP_KEY" not in str(info.value)
    with pytest.raises(HukeConfigError, match="HUKE_APP_KEY, HUKE_APP_SECRET"):
        HukeClient.from_env({})
    with HukeClient.from_env({"HUKE_APP_KEY": "k"}, app_secret="given") as client:
        assert client.app_key == "k"


def test_constructor_validation() -> None:
    with pytest.raises(HukeConfigError, match="non-empty"):
        HukeClient(APP_KEY, "")
    with pytest.raises(HukeConfigError, match="retry_codes"):
        HukeClient(APP_KEY, APP_SECRET, retry_codes=[None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="absolute http"):
        HukeClient(APP_KEY, APP_SECRET, base_url="huke.163.com")


def test_eid_is_sent_and_checked(clock: Clock) -> None:
    fake = FakeHuke(APP_KEY, APP_SECRET, clock=clock, eid="E-7")
    with fake.client() as client:
        client.search_trades(start=0, end=1)
    assert fake.received[0].headers["eid"] == "E-7"
    with fake.client(eid="E-8") as client, pytest.raises(HukeAPIError, match="40006"):
        client.search_trades(start=0, end=1)


async def test_sync_and_async_clients_agree() -> None:
    trades = list(generate_trades(345, start=START_MS, end=END_MS, seed=3))
    sync_fake = FakeHuke(APP_KEY, APP_SECRET, trades=trades, clock=Clock(), data_shape="list")
    async_fake = FakeHuke(APP_KEY, APP_SECRET, trades=trades, clock=Clock(), data_shape="list")
    options: dict[str, Any] = {
        "start": START_MS,
        "end": END_MS,
        "window": timedelta(hours=5),
        "page_size": 40,
    }
    with sync_fake.client() as client:
        sync_pages = list(client.iter_trade_pages(**options))
        sync_trades = list(client.iter_trades(**options))
        sync_page = client.search_trades(start=START_MS, end=END_MS, page=2, page_size=40)
        sync_data = client.request("trade/searchTrades", json.loads(sync_fake.received[0].content))
    async with async_fake.async_client() as aclient:
        async_pages = [p async for p in aclient.iter_trade_pages(**options)]
        async_trades = [t async for t in aclient.iter_trades(**options)]
        async_page = await aclient.search_trades(start=START_MS, end=END_MS, page=2, page_size=40)
        async_data = await aclient.request(
            "trade/searchTrades", json.loads(async_fake.received[0].content)
        )
    assert sync_pages == async_pages
    assert sync_trades == async_trades
    assert [t.raw for t in sync_trades] == sorted(trades, key=lambda t: t["createTime"])
    assert sync_page == async_page
    assert sync_data == async_data
    sent = [(r.url, r.content, r.headers["ur-curtime"]) for r in sync_fake.received]
    assert sent == [(r.url, r.content, r.headers["ur-curtime"]) for r in async_fake.received]


async def test_async_max_pages_and_errors_match_sync(
    fake: FakeHuke, aclient: AsyncHukeClient
) -> None:
    fake.add_trades(generate_trades(30, start=START_MS, end=END_MS))
    with pytest.raises(HukePageLimitError):
        async for _ in aclient.iter_trades(start=START_MS, end=END_MS, page_size=10, max_pages=2):
            pass
    fake.inject(envelope_error(1011, "exists"))
    with pytest.raises(HukeAPIError, match="1011"):
        await aclient.request("trade/searchTrades", {})


def test_with_options_shares_the_pool_and_keeps_signing(fake: FakeHuke, client: HukeClient) -> None:
    fake.inject(Fault.http_status(503), times=1)
    with pytest.raises(HukeHTTPError):
        client.with_options(max_retries=0).search_trades(start=0, end=1)
    assert client.with_options(timeout=5).search_trades(start=0, end=1).trades == []


def test_clients_close_their_own_pool() -> None:
    with HukeClient(APP_KEY, APP_SECRET) as client:
        http = client._http
    assert http.is_closed


async def test_async_clients_close_their_own_pool() -> None:
    async with AsyncHukeClient(APP_KEY, APP_SECRET) as client:
        http = client._http
    assert http.is_closed


# -- secrets ---------------------------------------------------------------------------------


def test_no_secret_in_reprs_errors_or_logs(caplog: pytest.LogCaptureFixture, clock: Clock) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeHuke(APP_KEY, SECRET, clock=clock)
    fake.add_trades(generate_trades(150, start=START_MS, end=END_MS))
    texts: list[str] = [repr(fake)]
    with fake.client(retry=INSTANT) as client:
        texts += [repr(client), repr(client.auth), str(client.__dict__.get("auth"))]
        list(client.iter_trades(start=START_MS, end=END_MS))
        fake.inject(Fault.http_status(503, body=f"upstream said {SECRET}".encode()), times=3)
        fake.inject(envelope_error(500, f"bad secret {SECRET}"))
        fake.inject(Fault.reply(f"not json {SECRET}".encode()), times=3)
        fake.inject(Fault.timeout(), times=3)
        for _ in range(4):
            with pytest.raises(huke_client.HukeError) as info:
                client.search_trades(start=START_MS, end=END_MS)
            error = info.value
            texts += [str(error), repr(error), *map(str, vars(error).values())]
    wrong = FakeHuke(APP_KEY, "another-secret-xyz", clock=clock)
    http = httpx.Client(transport=wrong.transport())
    with HukeClient(APP_KEY, SECRET, http_client=http, clock=clock) as mismatched:
        with pytest.raises(HukeAPIError) as rejected:
            mismatched.search_trades(start=0, end=1)
        texts += [repr(mismatched), str(rejected.value)]
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    assert any("retrying" in t for t in texts)  # the logs were captured at all
    assert any("***" in t for t in texts)  # and the secret was masked where it appeared
    leaked = [t for t in texts if SECRET in t]
    assert leaked == []
