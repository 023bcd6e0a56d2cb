"""FakeHuke is strict: it verifies signatures like Huke and validates bodies like a server."""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx
import pytest

from huke_client import HukeAPIError, HukeAuth, HukeClient, TradePage
from huke_client.signing import checksum
from huke_client.testing import (
    DATA_SHAPES,
    FakeHuke,
    Fault,
    SimCode,
    envelope_error,
    fake_trade,
    generate_trades,
)

from .conftest import APP_KEY, APP_SECRET, END_MS, INSTANT, START_MS, Clock

URL = "https://huke.163.com/openapi/trade/searchTrades"


def body(**entry: Any) -> dict[str, Any]:
    time_range = {"timeType": "1", "startTime": "0", "endTime": "9", "page": "1", "pageSize": "10"}
    time_range.update(entry)
    return {"source": "2", "dealerList": [], "timeRanges": [time_range]}


def signed(
    content: bytes,
    *,
    clock: Clock,
    secret: str = APP_SECRET,
    key: str = APP_KEY,
    url: str = URL,
    method: str = "POST",
) -> httpx.Request:
    request = httpx.Request(method, url, content=content)
    return next(HukeAuth(key, secret, clock=clock).auth_flow(request))


def answer(fake: FakeHuke, request: httpx.Request) -> dict[str, Any]:
    response = fake(request)
    assert response.status_code == 200  # Huke reports errors in the envelope
    result: dict[str, Any] = response.json()
    return result


def test_a_correctly_signed_request_is_served(fake: FakeHuke, clock: Clock) -> None:
    reply = answer(fake, signed(json.dumps(body()).encode(), clock=clock))
    assert reply == {"code": 200, "msg": "success", "data": {"list": [], "total": 0}}


def test_bad_checksum_is_rejected(fake: FakeHuke, clock: Clock) -> None:
    reply = answer(fake, signed(b"{}", clock=clock, secret="not-the-secret"))
    assert reply == {
        "code": SimCode.BAD_CHECKSUM,
        "msg": "ur-checksum does not verify",
        "data": None,
    }


def test_md5_of_another_body_is_rejected(fake: FakeHuke, clock: Clock) -> None:
    request = signed(b'{"a":1}', clock=clock)
    tampered = httpx.Request("POST", URL, headers=request.headers, content=b'{"a":2}')
    assert answer(fake, tampered)["code"] == SimCode.SIGN_MISMATCH


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-300, True), (300, True), (-301, False), (301, False)]
)
def test_curtime_must_be_close_to_the_server_clock(offset: int, accepted: bool) -> None:
    server_now = 1_700_000_000.0
    fake = FakeHuke(APP_KEY, APP_SECRET, clock=lambda: server_now)
    reply = answer(fake, signed(json.dumps(body()).encode(), clock=Clock(server_now + offset, 0)))
    if accepted:
        assert reply["code"] == 200
    else:
        assert reply["code"] == SimCode.CURTIME_SKEW
        assert (
            reply["msg"]
            == f"ur-curtime {int(server_now) + offset} is {offset:+d}s from server time (allowed ±300s)"
        )


def test_client_with_a_skewed_clock_gets_an_api_error(fake: FakeHuke) -> None:
    with fake.client(clock=lambda: 1_600_000_000.0) as client, pytest.raises(HukeAPIError) as info:
        client.search_trades(start=0, end=1)
    assert info.value.code == SimCode.CURTIME_SKEW


def test_unknown_app_key_is_rejected(fake: FakeHuke, clock: Clock) -> None:
    reply = answer(fake, signed(b"{}", clock=clock, key="someone-else"))
    assert reply["code"] == SimCode.UNKNOWN_APP_KEY
    assert reply["msg"] == "unknown app key 'someone-else'"


@pytest.mark.parametrize("header", ["ur-appkey", "ur-sign", "ur-curtime", "ur-checksum"])
def test_each_missing_header_is_named(fake: FakeHuke, clock: Clock, header: str) -> None:
    request = signed(b"{}", clock=clock)
    del request.headers[header]
    assert answer(fake, request) == {
        "code": SimCode.MISSING_HEADER,
        "msg": f"missing header {header}",
        "data": None,
    }


def test_non_numeric_curtime_is_rejected(fake: FakeHuke) -> None:
    headers = dict(signed(b"{}", clock=lambda: 1.0).headers)
    headers["ur-curtime"] = "soon"
    headers["ur-checksum"] = checksum(APP_KEY, headers["ur-sign"], "soon", APP_SECRET)
    reply = answer(fake, httpx.Request("POST", URL, headers=headers, content=b"{}"))
    assert reply == {
        "code": SimCode.CURTIME_SKEW,
        "msg": "ur-curtime 'soon' is not Unix seconds",
        "data": None,
    }


def test_routing(fake: FakeHuke, clock: Clock) -> None:
    reply = answer(fake, signed(b"{}", clock=clock, url="https://h.test/openapi/trade/nope"))
    assert reply == {"code": 404, "msg": "no such API: /openapi/trade/nope", "data": None}
    reply = answer(fake, signed(b"", clock=clock, method="GET"))
    assert reply["code"] == SimCode.METHOD_NOT_ALLOWED


@pytest.mark.parametrize(
    ("payload", "msg"),
    [
        (b"[1]", "request body must be a JSON object"),
        (b"{not json", "request body is not JSON"),
        (json.dumps({**body(), "source": 2}), "source is required and must be a string"),
        (json.dumps({k: v for k, v in body().items() if k != "source"}), "source is required"),
        (json.dumps({**body(), "dealerList": "x"}), "dealerList must be a list of strings"),
        (json.dumps({**body(), "timeRanges": []}), "timeRanges must be a non-empty list"),
        (json.dumps({**body(), "timeRanges": body()["timeRanges"] * 2}), "one timeRanges entry"),
        (json.dumps({**body(), "timeRanges": ["x"]}), "timeRanges[0] must be an object"),
        (json.dumps(body(page=1)), "timeRanges[0].page is required and must be a string"),
        (json.dumps(body(page="0")), "timeRanges[0].page must be >= 1"),
        (json.dumps(body(page="-1")), "timeRanges[0].page must be a string of digits"),
        (json.dumps(body(pageSize="0")), "pageSize must be 1..100, got 0"),
        (json.dumps(body(pageSize="101")), "pageSize must be 1..100, got 101"),
        (json.dumps(body(startTime="10", endTime="9")), "startTime is after endTime"),
        (json.dumps(body(startTime="١٢")), "startTime must be a string of digits"),
        (json.dumps(body(timeType="9")), "unknown timeType '9' (known: 1)"),
        (json.dumps(body(endTime=None)), "timeRanges[0].endTime is required"),
    ],
)
def test_search_bodies_are_validated(
    fake: FakeHuke, clock: Clock, payload: bytes | str, msg: str
) -> None:
    content = payload.encode() if isinstance(payload, str) else payload
    reply = answer(fake, signed(content, clock=clock))
    assert reply["code"] == SimCode.BAD_REQUEST
    assert msg in reply["msg"]


def test_max_page_size_is_configurable(clock: Clock) -> None:
    fake = FakeHuke(APP_KEY, APP_SECRET, clock=clock, max_page_size=500)
    assert (
        answer(fake, signed(json.dumps(body(pageSize="500")).encode(), clock=clock))["code"] == 200
    )


def test_time_filter_is_inclusive_and_order_is_stable(fake: FakeHuke, client: HukeClient) -> None:
    fake.add_trades(
        [
            fake_trade(create_time=20, tid="late"),
            fake_trade(create_time=10, tid="a"),
            fake_trade(create_time=9, tid="before"),
            fake_trade(create_time=10, tid="b"),
            fake_trade(create_time=21, tid="after"),
            {"tid": "no-time", "buyerNick": "x"},
        ]
    )
    page = client.search_trades(start=10, end=20)
    assert [t["tid"] for t in page.trades] == ["a", "b", "late"]
    assert page.total == 3
    fake.add_trades([fake_trade(create_time=10, tid="c")])
    assert [t["tid"] for t in client.search_trades(start=10, end=10).trades] == ["a", "b", "c"]
    assert [t["tid"] for t in fake.trades][-1] == "c"


def test_time_field_is_configurable(clock: Clock) -> None:
    trades = [fake_trade(create_time=1, tid="x", payTime=50), fake_trade(create_time=60, tid="y")]
    fake = FakeHuke(
        APP_KEY,
        APP_SECRET,
        clock=clock,
        trades=trades,
        time_field={"1": "createTime", "2": "payTime"},
    )
    with fake.client() as client:
        assert [t["tid"] for t in client.search_trades(start=40, end=70).trades] == ["y"]
        by_pay = client.search_trades(start=40, end=70, time_type="2")
        assert [t["tid"] for t in by_pay.trades] == ["x"]


@pytest.mark.parametrize("shape", DATA_SHAPES)
def test_data_shapes(clock: Clock, shape: str) -> None:
    fake = FakeHuke(
        APP_KEY,
        APP_SECRET,
        clock=clock,
        data_shape=shape,
        items_key="rows",
        total_key="totalCount",
        trades=[fake_trade(create_time=5, tid="t")],
    )
    data = answer(fake, signed(json.dumps(body()).encode(), clock=clock))["data"]
    expected = {
        "object": {"rows": [fake.trades[0]], "totalCount": 1},
        "object_no_total": {"rows": [fake.trades[0]]},
        "list": [fake.trades[0]],
    }[shape]
    assert data == expected


def test_constructor_and_add_trades_validation(clock: Clock) -> None:
    with pytest.raises(ValueError, match="data_shape must be one of object"):
        FakeHuke(APP_KEY, APP_SECRET, data_shape="xml")
    with pytest.raises(ValueError, match="max_page_size"):
        FakeHuke(APP_KEY, APP_SECRET, max_page_size=0)
    fake = FakeHuke(APP_KEY, APP_SECRET, clock=clock)
    with pytest.raises(ValueError, match="'createTime' must be epoch ms \\(int\\), got '5'"):
        fake.add_trades([{"createTime": "5"}])
    assert fake.trades == []


def test_fake_trade() -> None:
    assert fake_trade(create_time=5) == {
        "tid": "T5",
        "source": "2",
        "buyerNick": "张三",
        "buyerCid": "wm000000000001",
        "createTime": 5,
        "payment": "99.00",
    }
    trade = fake_trade(create_time=5, tid="x", buyer_cid=None, status="已完成")
    assert "buyerCid" not in trade
    assert trade["status"] == "已完成"


def test_generate_trades_is_realistic_and_deterministic() -> None:
    trades = list(generate_trades(2000, start=START_MS, end=END_MS, seed=1, missing_cid_every=50))
    assert trades == list(
        generate_trades(2000, start=START_MS, end=END_MS, seed=1, missing_cid_every=50)
    )
    assert trades != list(generate_trades(2000, start=START_MS, end=END_MS, seed=2))
    assert len({t["tid"] for t in trades}) == 2000
    assert all(START_MS <= t["createTime"] <= END_MS for t in trades)
    assert sum("buyerCid" not in t for t in trades) == 40
    cids = [t["buyerCid"] for t in trades if "buyerCid" in t]
    assert len(set(cids)) < len(cids) / 2  # buyers come back
    by_cid: dict[str, set[str]] = {}
    for t in trades:
        if "buyerCid" in t:
            by_cid.setdefault(t["buyerCid"], set()).add(t["buyerNick"])
    assert all(len(nicks) == 1 for nicks in by_cid.values())  # one buyer, one nickname
    assert sum(any("\u4e00" <= ch <= "\u9fff" for ch in t["buyerNick"]) for t in trades) > 1500
    assert all(float(t["payment"]) > 0 for t in trades)
    few = list(generate_trades(50, start=0, end=10, buyers=3))
    assert len({t["buyerCid"] for t in few}) <= 3


def test_generate_trades_streams_lazily() -> None:
    million = generate_trades(1_000_000, start=START_MS, end=END_MS)
    first = list(itertools.islice(million, 3))
    assert [t["tid"] for t in first] == ["HK0000000000001", "HK0000000000002", "HK0000000000003"]
    with pytest.raises(ValueError, match="after end"):
        next(generate_trades(1, start=2, end=1))


def test_injected_faults_and_error_envelopes(fake: FakeHuke, client: HukeClient) -> None:
    fake.inject(envelope_error(1011, "exists", status=200))
    with pytest.raises(HukeAPIError, match="1011"):
        client.search_trades(start=0, end=1)
    assert fake.faults.struck == [("body", "/openapi/trade/searchTrades")]
    assert client.search_trades(start=0, end=1).trades == []  # one strike only


def test_over_a_real_loopback_socket() -> None:
    fake = FakeHuke(APP_KEY, APP_SECRET, trades=generate_trades(250, start=START_MS, end=END_MS))
    fake.inject(Fault.reset())
    fake.inject(Fault.http_status(503, retry_after=0))
    with (
        fake.serve() as server,
        HukeClient(APP_KEY, APP_SECRET, base_url=server.url + "/openapi", retry=INSTANT) as client,
    ):
        pages = list(client.iter_trade_pages(start=START_MS, end=END_MS, page_size=100))
        assert [len(p.trades) for p in pages] == [100, 100, 50]
        assert isinstance(pages[0], TradePage)
    assert fake.request_count == 5  # 3 pages + a reset and a 503 retried
    assert {t.headers["ur-appkey"] for t in fake.received} == {APP_KEY}


async def test_convenience_clients_close_what_they_were_made_with(fake: FakeHuke) -> None:
    with fake.client() as client:
        http = client._http
    assert http.is_closed
    async with fake.async_client() as aclient:
        ahttp = aclient._http
    assert ahttp.is_closed
