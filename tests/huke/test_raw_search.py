"""``SearchOptions.body`` and ``pagination.read_page``: a search sent through ``request`` is the
same search, read the same way (the doctor reads a page it cannot trust that way, once)."""

from __future__ import annotations

import json

import pytest

from huke_client import HukeResponseError, SearchOptions
from huke_client.pagination import read_page
from huke_client.testing import FakeHuke, fake_trade

START, END = 1_717_200_000_000, 1_717_203_600_000


def _fake(**options: object) -> FakeHuke:
    trades = [fake_trade(create_time=START + i * 1000, tid=f"T{i}") for i in range(5)]
    return FakeHuke("k", "s", trades=trades, **options)  # type: ignore[arg-type]


def test_the_body_is_the_bytes_search_trades_sends() -> None:
    fake = _fake()
    options = SearchOptions(page_size=2, source="3", extra={"shopId": "S9"})
    with fake.client() as huke:
        page = huke.search_trades(start=START, end=END, page=2, options=options)
        raw = huke.request("trade/searchTrades", options.body(START, END, 2), idempotent=True)
    sent = [json.loads(request.content) for request in fake.received]
    assert sent[0] == sent[1]
    assert list(sent[0]) == list(sent[1])  # the same key order: the same bytes signed
    assert read_page(raw, page=2, page_size=2) == page


def test_read_page_reads_an_unfamiliar_key_and_refuses_a_shape_it_cannot_read() -> None:
    fake = _fake(items_key="tradeList")
    with fake.client() as huke:
        raw = huke.request("trade/searchTrades", SearchOptions().body(START, END), idempotent=True)
    page = read_page(raw, page_size=100, items_key="tradeList")
    assert [t["tid"] for t in page.trades] == [f"T{i}" for i in range(5)]
    with pytest.raises(HukeResponseError) as error:
        read_page(raw, page_size=100)
    assert error.value.reason
    assert error.value.reason in str(error.value)


def test_read_page_masks_what_its_error_quotes() -> None:
    data = {"result": "secret-token-123"}
    with pytest.raises(HukeResponseError) as error:
        read_page(data, page_size=10, redact=lambda text: text.replace("secret-token-123", "***"))
    assert "secret-token-123" not in str(error.value)


def test_read_page_reads_null_data_as_empty_only_when_told() -> None:
    assert read_page(None, page_size=10, null_is_empty=True).trades == []
    with pytest.raises(HukeResponseError):
        read_page(None, page_size=10)
