"""What ``FakeHuke`` shows a first-run check (``huke-k3 doctor``): a reply shape the client does
not know (the list and the total under unfamiliar keys), how the client fails on it and reads it
once told, and the server's clock in every reply's ``Date`` header."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import httpx
import pytest

from huke_client import HukeResponseError, SearchOptions
from huke_client.testing import FakeHuke, Fault, envelope_error, generate_trades

from .conftest import APP_KEY, APP_SECRET, END_MS, INSTANT, START_MS

SKEWED = 1_700_000_000.0 + 3600


def unfamiliar(clock: float = 1_700_000_000.0) -> FakeHuke:
    trades = generate_trades(3, start=START_MS, end=END_MS, seed=12)
    return FakeHuke(
        APP_KEY,
        APP_SECRET,
        trades=trades,
        clock=lambda: clock,
        items_key="tradeList",
        total_key="totalNum",
    )


def test_an_unfamiliar_list_key_fails_naming_what_was_received() -> None:
    fake = unfamiliar()
    with fake.client(retry=INSTANT) as client, pytest.raises(HukeResponseError) as info:
        client.search_trades(start=START_MS, end=END_MS)
    message = str(info.value)
    assert "cannot find the items in data" in message
    assert "its keys: 'tradeList', 'totalNum'" in message
    assert "pass items_key= to name another key" in message
    assert '"tradeList":[{' in message  # a snippet of the data itself
    assert info.value.body is not None
    assert info.value.body.startswith('{"tradeList":[')
    assert fake.request_count == 1  # a shape error is not retried


def test_items_key_in_search_options_reads_it_and_the_raw_data_keeps_the_total() -> None:
    fake = unfamiliar()
    options = SearchOptions(items_key="tradeList", page_size=2)
    with fake.client(retry=INSTANT) as client:
        page = client.search_trades(start=START_MS, end=END_MS, options=options)
        every = list(client.iter_trades(start=START_MS, end=END_MS, options=options))
    assert len(page.trades) == 2
    # The total sits under a key the client does not read: it is in ``raw`` for a caller
    # (a doctor) to find, and the page does not claim one.
    assert page.raw["totalNum"] == 3
    assert sorted(page.raw) == ["totalNum", "tradeList"]
    assert page.total is None
    assert sorted(t.raw["tid"] for t in every) == sorted(t["tid"] for t in fake.trades)


def test_every_reply_carries_the_servers_clock_in_its_date_header() -> None:
    fake = unfamiliar(SKEWED)
    fake.inject(envelope_error(40100, "rate limited"))
    fake.inject(Fault.http_status(503), after=1)
    with httpx.Client(transport=fake.transport()) as http:
        replies = [
            http.post("https://huke.163.com/openapi/trade/searchTrades", content=b"{}")
            for _ in range(3)
        ]
    assert [r.status_code for r in replies] == [200, 200, 503]
    for response in replies:
        (date,) = response.headers.get_list("Date")
        assert parsedate_to_datetime(date).timestamp() == SKEWED
