"""Pagination: every trade exactly once, in the fewest requests the stop rules allow."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from huke_client import HukePageLimitError, HukeResponseError, Trade
from huke_client._pages import extract_page, has_next
from huke_client._plan import PagePlan
from huke_client._plan import search_ranges as windows
from huke_client.testing import FakeHuke, fake_trade, generate_trades

from .conftest import APP_KEY, APP_SECRET, END_MS, INSTANT, START_MS, Clock


def make_fake(clock: Clock, n: int, **options: Any) -> FakeHuke:
    trades = generate_trades(n, start=START_MS, end=END_MS, seed=7)
    return FakeHuke(APP_KEY, APP_SECRET, trades=trades, clock=clock, **options)


def tids(trades: Sequence[Trade]) -> list[str]:
    return [t["tid"] for t in trades]


@pytest.mark.parametrize(
    ("n", "shape", "requests"),
    [
        (0, "object", 1),
        (1, "object", 1),
        (100, "object", 2),  # a full page never ends the range, even at its total
        (101, "object", 2),
        (0, "object_no_total", 1),
        (1, "object_no_total", 1),
        (100, "object_no_total", 2),  # a full page never ends the range: one empty page more
        (101, "object_no_total", 2),
        (0, "list", 1),
        (1, "list", 1),
        (100, "list", 2),
        (101, "list", 2),
    ],
)
def test_every_trade_once_at_the_page_size_edges(
    clock: Clock, n: int, shape: str, requests: int
) -> None:
    fake = make_fake(clock, n, data_shape=shape)
    with fake.client(retry=INSTANT) as client:
        trades = list(client.iter_trades(start=START_MS, end=END_MS, page_size=100))
    expected = sorted(fake.trades, key=lambda t: t["createTime"])
    assert [t.raw for t in trades] == expected
    assert fake.request_count == requests
    pages = [json.loads(r.content)["timeRanges"][0]["page"] for r in fake.received]
    assert pages == [str(p) for p in range(1, requests + 1)]


@pytest.mark.parametrize("shape", ["object", "object_no_total", "list"])
def test_1001_trades_in_exactly_11_requests(clock: Clock, shape: str) -> None:
    fake = make_fake(clock, 1001, data_shape=shape)
    with fake.client() as client:
        trades = list(client.iter_trades(start=START_MS, end=END_MS, page_size=100))
    assert len(trades) == 1001
    assert len(set(tids(trades))) == 1001
    assert set(tids(trades)) == {t["tid"] for t in fake.trades}
    assert fake.request_count == 11


@pytest.mark.parametrize(
    ("items_key", "total_key"),
    [
        ("list", "total"),
        ("trades", "totalCount"),
        ("records", "count"),
        ("rows", "total"),
        ("items", "total"),
        ("data", "count"),
    ],
)
def test_every_known_object_shape_is_detected(clock: Clock, items_key: str, total_key: str) -> None:
    fake = make_fake(clock, 150, items_key=items_key, total_key=total_key)
    with fake.client() as client:
        page = client.search_trades(start=START_MS, end=END_MS, page_size=100)
        assert (len(page.trades), page.total, page.has_next) == (100, 150, True)
        assert len(list(client.iter_trades(start=START_MS, end=END_MS))) == 150
    assert fake.request_count == 3


def test_items_key_names_an_unusual_key(clock: Clock) -> None:
    fake = make_fake(clock, 3, items_key="tradeList", total_key="totalNum")
    with fake.client() as client:
        with pytest.raises(HukeResponseError) as info:
            client.search_trades(start=START_MS, end=END_MS)
        trades = list(client.iter_trades(start=START_MS, end=END_MS, items_key="tradeList"))
    assert len(trades) == 3
    message = str(info.value)
    assert "cannot find the items in data" in message
    assert "its keys: 'tradeList', 'totalNum'" in message
    assert "items_key=" in message


def test_unknown_shape_error_names_the_keys_and_quotes_the_data() -> None:
    with pytest.raises(HukeResponseError) as info:
        extract_page({"result": {"x": 1}, "n": 2}, where="/openapi/trade/searchTrades")
    assert str(info.value).startswith("/openapi/trade/searchTrades: cannot find the items")
    assert "its keys: 'result', 'n'" in str(info.value)
    assert info.value.body == '{"result":{"x":1},"n":2}'


@pytest.mark.parametrize("data", ["trades", 42, True])
def test_data_that_is_neither_list_nor_object_is_refused(data: Any) -> None:
    with pytest.raises(HukeResponseError, match=f"not {type(data).__name__}"):
        extract_page(data, where="w")


def test_items_key_that_is_absent_is_named() -> None:
    with pytest.raises(
        HukeResponseError, match=r"a list under 'rows' \(items_key\); its keys: 'list'"
    ):
        extract_page({"list": []}, where="w", items_key="rows")


def test_extract_page_reads_totals() -> None:
    assert extract_page([1, 2], where="w").items == [1, 2]
    assert extract_page({"list": [1], "total": "7"}, where="w").total == 7
    assert extract_page({"list": [1], "totalCount": 9}, where="w").total == 9
    assert extract_page({"list": [1], "total": None, "count": 3}, where="w").total == 3
    assert extract_page({"list": [1]}, where="w").total is None
    with pytest.raises(HukeResponseError, match=r"data\['total'\] should be a non-negative count"):
        extract_page({"list": [], "total": "many"}, where="w")


def test_a_trade_that_is_not_an_object_is_a_response_error(clock: Clock) -> None:
    fake = FakeHuke(APP_KEY, APP_SECRET, clock=clock)
    fake.add_route("trade/searchTrades", lambda body: {"list": [{"tid": "ok"}, "oops"]})
    with fake.client() as client, pytest.raises(HukeResponseError) as info:
        client.search_trades(start=START_MS, end=END_MS)
    assert "trade #1 of page 1 is not a JSON object" in str(info.value)
    assert info.value.body == '"oops"'


def test_has_next_rules() -> None:
    assert has_next(count=0, page_size=10, total=None, seen=0) is False
    assert has_next(count=3, page_size=10, total=None, seen=3) is False  # short page
    assert has_next(count=10, page_size=10, total=None, seen=10) is True  # never stop after full
    # A full page at the total: only the next page shows where the listing ends.
    assert has_next(count=10, page_size=10, total=10, seen=10) is True
    assert has_next(count=4, page_size=10, total=14, seen=14) is False  # total reached
    assert has_next(count=10, page_size=10, total=25, seen=20) is True
    # A short page before a known total: the server may cap page sizes; keep going.
    assert has_next(count=5, page_size=10, total=25, seen=5) is True


def test_server_capping_page_size_loses_nothing_when_total_is_known(clock: Clock) -> None:
    capped = make_fake(clock, 120)
    search = capped._search_trades

    def silently_capped(body: dict[str, Any]) -> Any:  # a server that serves 50, whatever asked
        body["timeRanges"][0]["pageSize"] = "50"
        return search(body)

    capped.add_route("trade/searchTrades", silently_capped)
    with capped.client() as client:
        trades = list(client.iter_trades(start=START_MS, end=END_MS, page_size=100))
    assert len(set(tids(trades))) == len(trades) == 120
    assert capped.request_count == 3  # 50 + 50 + 20


def test_max_pages_raises_instead_of_truncating(clock: Clock) -> None:
    fake = make_fake(clock, 250)
    with fake.client() as client:
        trades = client.iter_trades(start=START_MS, end=END_MS, max_pages=2)
        seen = [next(trades) for _ in range(200)]  # two pages' worth arrive before the guard
        with pytest.raises(HukePageLimitError) as info:
            next(trades)
        assert len(set(tids(seen))) == 200
        assert info.value.max_pages == 2
        assert "more than max_pages=2 pages (next: page 3 of range" in str(info.value)
        # Exactly enough pages is not an error.
        assert len(list(client.iter_trades(start=START_MS, end=END_MS, max_pages=3))) == 250
    with pytest.raises(ValueError, match="max_pages must be >= 1"):
        PagePlan([(0, 1)], max_pages=0)


def test_windows_split_inclusive_ranges_without_gaps_or_overlaps() -> None:
    assert list(windows(0, 9, 4)) == [(0, 3), (4, 7), (8, 9)]
    assert list(windows(0, 7, 4)) == [(0, 3), (4, 7)]
    assert list(windows(5, 5, 4)) == [(5, 5)]
    assert list(windows(0, 9, None)) == [(0, 9)]
    with pytest.raises(ValueError, match="after end"):
        list(windows(9, 0, 4))
    with pytest.raises(ValueError, match="at least 1 ms"):
        list(windows(0, 9, 0))


def test_window_boundaries_neither_lose_nor_duplicate_trades(clock: Clock) -> None:
    hour = 3_600_000
    at = [
        START_MS,
        START_MS + hour - 1,
        START_MS + hour,
        START_MS + 2 * hour - 1,
        START_MS + 2 * hour,
        START_MS + 2 * hour + 30 * 60_000,
    ]
    end = START_MS + 2 * hour + 30 * 60_000
    trades = [fake_trade(create_time=ms, tid=f"T{i}") for i, ms in enumerate(at)]
    trades.append(fake_trade(create_time=end + 1, tid="after"))
    fake = FakeHuke(APP_KEY, APP_SECRET, trades=trades, clock=clock)
    with fake.client() as client:
        got = list(
            client.iter_trades(start=START_MS, end=end, window=timedelta(hours=1), page_size=10)
        )
    assert tids(got) == [f"T{i}" for i in range(len(at))]
    ranges = [
        (r["startTime"], r["endTime"])
        for r in (json.loads(q.content)["timeRanges"][0] for q in fake.received)
    ]
    assert ranges == [
        (str(START_MS), str(START_MS + hour - 1)),
        (str(START_MS + hour), str(START_MS + 2 * hour - 1)),
        (str(START_MS + 2 * hour), str(end)),
    ]


def test_windows_and_pages_together(clock: Clock) -> None:
    fake = make_fake(clock, 1000)
    with fake.client() as client:
        pages = list(
            client.iter_trade_pages(
                start=START_MS, end=END_MS, window=timedelta(hours=6), page_size=100
            )
        )
    trades = [t for p in pages for t in p.trades]
    assert sorted(tids(trades)) == sorted(t["tid"] for t in fake.trades)
    assert sum(p.total or 0 for p in pages if p.page == 1) == 1000
    assert all(p.page_size == 100 for p in pages)
    assert pages[-1].has_next is False


def test_trade_page_fields(clock: Clock) -> None:
    fake = make_fake(clock, 101)
    with fake.client() as client:
        first = client.search_trades(start=START_MS, end=END_MS, page_size=100)
        second = client.search_trades(start=START_MS, end=END_MS, page=2, page_size=100)
    assert (first.page, first.page_size, first.total, first.has_next) == (1, 100, 101, True)
    assert (second.page, len(second.trades), second.has_next) == (2, 1, False)
    assert second.raw == {"list": [second.trades[0].raw], "total": 101}


def test_a_trade_with_a_field_of_the_wrong_type_does_not_cost_the_page(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    odd = {"tid": "odd", "buyerNick": {"nested": True}, "buyerCid": "C9"}
    fake = FakeHuke(APP_KEY, APP_SECRET, clock=clock)
    fake.add_route("trade/searchTrades", lambda body: {"list": [{"tid": "ok"}, odd]})
    with fake.client() as client, caplog.at_level("WARNING", logger="huke_client"):
        page = client.search_trades(start=START_MS, end=END_MS)
    assert [t["tid"] for t in page.trades] == ["ok", "odd"]
    kept = page.trades[1]
    assert kept.buyer_nick is None  # unreadable: left unset ...
    assert kept.buyer_cid == "C9"  # ... while the readable fields are structured
    assert dict(kept.raw) == odd  # and nothing of the wire object is lost
    assert any(
        "buyerNick" in r.getMessage() and "trade #1" in r.getMessage() for r in caplog.records
    )
