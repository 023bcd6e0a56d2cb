"""The public surface: moved names still served (with a warning), the search options object, the
shared testing helpers."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import attrs
import pytest

import _huke_k3_core.testing as core_testing
import huke_client
import huke_client.pagination
import huke_client.signing
import huke_client.testing
from huke_client import AsyncHukeClient, HukeClient, SearchOptions
from huke_client.testing import FakeHuke, generate_trades

from .conftest import APP_KEY, APP_SECRET, END_MS, START_MS, Clock

MOVED = {
    "LIST_KEYS": huke_client.pagination,
    "TOTAL_KEYS": huke_client.pagination,
    "TRADE_ID_KEYS": huke_client.pagination,
    "body_sign": huke_client.signing,
    "checksum": huke_client.signing,
}


@pytest.mark.parametrize("name", sorted(MOVED))
def test_a_moved_name_still_works_from_the_old_path_with_a_warning(name: str) -> None:
    new_home = MOVED[name]
    with pytest.warns(
        DeprecationWarning, match=rf"huke_client\.{name} moved to {new_home.__name__}"
    ):
        old = getattr(huke_client, name)
    assert old is getattr(new_home, name)
    assert name not in huke_client.__all__
    assert name in new_home.__all__


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        huke_client.no_such_name  # noqa: B018


def test_testing_exports_the_shared_simulator_helpers() -> None:
    for name in ("Fault", "LoopbackServer", "serve", "MAX_JSON_DEPTH"):
        assert name in huke_client.testing.__all__
        assert getattr(huke_client.testing, name) is getattr(core_testing, name)


def test_testing_keeps_every_public_name() -> None:
    for name in huke_client.testing.__all__:
        assert hasattr(huke_client.testing, name), name


# -- SearchOptions -------------------------------------------------------------------------------


def _bodies(fake: FakeHuke) -> list[Any]:
    return [json.loads(request.content) for request in fake.received]


def test_options_object_and_keyword_arguments_send_the_same_bytes() -> None:
    trades = list(generate_trades(120, start=START_MS, end=END_MS, seed=5))
    by_keywords = FakeHuke(APP_KEY, APP_SECRET, trades=trades, clock=Clock())
    by_object = FakeHuke(APP_KEY, APP_SECRET, trades=trades, clock=Clock())
    keywords: dict[str, Any] = {
        "page_size": 25,
        "dealer_list": ["d1"],
        "window": timedelta(hours=6),
        "max_restarts": 1,
        "extra": {"shopId": "S9"},
    }
    with by_keywords.client() as client:
        one = list(client.iter_trade_pages(start=START_MS, end=END_MS, **keywords))
    with by_object.client() as client:
        options = SearchOptions(**keywords)
        two = list(client.iter_trade_pages(start=START_MS, end=END_MS, options=options))
    assert one == two
    assert [r.content for r in by_keywords.received] == [r.content for r in by_object.received]
    assert all(body["shopId"] == "S9" for body in _bodies(by_object))


def test_keyword_arguments_override_the_options_object(fake: FakeHuke, client: HukeClient) -> None:
    options = SearchOptions(page_size=7, source="5", extra={"a": 1})
    client.search_trades(start=1, end=2, options=options, page_size=3, b=2)  # type: ignore[call-arg]
    body = _bodies(fake)[0]
    assert body["source"] == "5"
    assert body["timeRanges"][0]["pageSize"] == "3"
    assert (body["a"], body["b"]) == (1, 2)
    assert options.page_size == 7  # the object itself is not changed


def test_undeclared_keywords_and_extra_join_in_call_order(
    fake: FakeHuke, client: HukeClient
) -> None:
    client.search_trades(start=1, end=2, extra={"x": 1}, y=2)  # type: ignore[call-arg]
    assert list(_bodies(fake)[0]) == ["source", "dealerList", "timeRanges", "x", "y"]


def test_search_trades_sends_iterator_options_as_wire_fields_as_before(
    fake: FakeHuke, client: HukeClient
) -> None:
    # search_trades never took window/max_pages/max_restarts: as keywords they are wire fields.
    client.search_trades(start=1, end=2, max_pages=4)  # type: ignore[call-arg]
    assert _bodies(fake)[0]["max_pages"] == 4


@pytest.mark.parametrize(
    ("fields", "error", "text"),
    [
        ({"page_size": 0}, ValueError, "page_size must be an int >= 1"),
        ({"page_size": True}, ValueError, "page_size must be an int >= 1"),
        ({"dealer_list": "d1"}, TypeError, "not one string"),
        ({"window": 5}, TypeError, "window must be a timedelta"),
        ({"max_pages": 0}, ValueError, "max_pages must be >= 1"),
        ({"max_restarts": -1}, ValueError, "max_restarts must be an int >= 0"),
        ({"extra": {"timeRanges": []}}, ValueError, "extra field timeRanges would replace"),
    ],
)
def test_options_are_checked_when_built(
    fields: dict[str, Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        SearchOptions(**fields)


def test_options_are_frozen_and_compare_by_value() -> None:
    options = SearchOptions(dealer_list=["a", 1], source=2)  # type: ignore[list-item]
    assert options == SearchOptions(dealer_list=("a", "1"), source="2")
    assert (options.dealer_list, options.source) == (("a", "1"), "2")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        options.page_size = 5  # type: ignore[misc]
    assert hash(options) == hash(SearchOptions(dealer_list=("a", "1"), source="2"))
    assert attrs.evolve(options, page_size=5).page_size == 5


async def test_async_client_takes_the_same_options(clock: Clock) -> None:
    trades = list(generate_trades(60, start=START_MS, end=END_MS, seed=2))
    fake = FakeHuke(APP_KEY, APP_SECRET, trades=trades, clock=clock)
    options = SearchOptions(page_size=20, window=timedelta(hours=12))
    client: AsyncHukeClient
    async with fake.async_client() as client:
        got = [t async for t in client.iter_trades(start=START_MS, end=END_MS, options=options)]
        page = await client.search_trades(start=START_MS, end=END_MS, options=options, page=2)
    assert sorted(t["tid"] for t in got) == sorted(t["tid"] for t in trades)
    assert page.page_size == 20
