"""Wire models: Trade keeps every field; request models write the scheme's body exactly."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huke_client import SearchTradesRequest, TimeRange, Trade

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
id_like = st.none() | st.text(max_size=12) | st.integers(min_value=-(10**12), max_value=10**12)


def _with(extra: dict[str, Any], **known: Any) -> dict[str, Any]:
    out = dict(extra)
    out.update({k: v for k, v in known.items() if v is not _ABSENT})
    return out


_ABSENT = object()


@given(
    extra=st.dictionaries(
        st.text(max_size=10).filter(lambda k: k not in ("buyerNick", "buyerCid")),
        json_values,
        max_size=6,
    ),
    nick=id_like | st.just(_ABSENT),
    cid=id_like | st.just(_ABSENT),
)
def test_trade_round_trips_any_wire_object_unchanged(
    extra: dict[str, Any], nick: Any, cid: Any
) -> None:
    wire = _with(extra, buyerNick=nick, buyerCid=cid)
    trade = Trade.from_wire(wire)
    assert trade.to_wire() == wire
    assert dict(trade.raw) == wire
    expected_nick = None if nick is _ABSENT or nick is None else str(nick)
    assert trade.buyer_nick == expected_nick
    assert trade.buyer_cid == (None if cid is _ABSENT or cid is None else str(cid))


def test_trade_fields_and_item_access() -> None:
    trade = Trade.from_wire(
        {"buyerNick": "王小明", "buyerCid": 10086, "tid": "T1", "payment": "9.90"}
    )
    assert trade.buyer_nick == "王小明"
    assert trade.buyer_cid == "10086"  # ids may arrive as numbers
    assert trade["tid"] == "T1"
    assert trade.get("missing", "default") == "default"
    assert "payment" in trade
    assert trade.to_wire()["buyerCid"] == 10086  # and go back as they came
    with pytest.raises(KeyError, match=r"Trade has no wire field 'nope' \(its wire fields: "):
        trade["nope"]


def test_trade_rejects_a_field_of_the_wrong_type_with_where_and_what() -> None:
    with pytest.raises(ValueError, match=r"Trade\.buyerNick: .*\(received \{'a': 1\}\)"):
        Trade.from_wire({"buyerNick": {"a": 1}})


def test_search_request_default_body_is_the_scheme() -> None:
    request = SearchTradesRequest(
        time_ranges=(TimeRange(start_time="1732728000123", end_time="1732800000123"),)
    )
    assert request.to_wire() == {
        "source": "2",
        "dealerList": [],
        "timeRanges": [
            {
                "timeType": "1",
                "startTime": "1732728000123",
                "endTime": "1732800000123",
                "page": "1",
                "pageSize": "100",
            }
        ],
    }
    assert list(request.to_wire()) == ["source", "dealerList", "timeRanges"]
    assert list(request.to_wire()["timeRanges"][0]) == [
        "timeType",
        "startTime",
        "endTime",
        "page",
        "pageSize",
    ]


digits = st.integers(min_value=0, max_value=10**14).map(str)
extra_keys = st.text(min_size=1, max_size=8)


@st.composite
def time_ranges(draw: st.DrawFn) -> dict[str, Any]:
    known = {
        "timeType": draw(st.sampled_from(["1", "2", "3"])),
        "startTime": draw(digits),
        "endTime": draw(digits),
        "page": draw(digits),
        "pageSize": draw(digits),
    }
    extra = draw(
        st.dictionaries(extra_keys.filter(lambda k: k not in known), json_values, max_size=2)
    )
    return {**known, **extra}


@st.composite
def request_bodies(draw: st.DrawFn) -> dict[str, Any]:
    known = {
        "source": draw(st.text(min_size=1, max_size=3)),
        "dealerList": draw(st.lists(st.text(max_size=6), max_size=3)),
        "timeRanges": draw(st.lists(time_ranges(), min_size=1, max_size=2)),
    }
    extra = draw(
        st.dictionaries(extra_keys.filter(lambda k: k not in known), json_values, max_size=3)
    )
    return {**known, **extra}


@given(request_bodies())
def test_request_body_round_trips_unchanged(body: dict[str, Any]) -> None:
    request = SearchTradesRequest.from_wire(body)
    assert request.to_wire() == body
    assert request.source == body["source"]
    assert request.dealer_list == tuple(body["dealerList"])
    assert [r.start_time for r in request.time_ranges] == [
        r["startTime"] for r in body["timeRanges"]
    ]


@given(
    source=st.text(max_size=3),
    dealers=st.lists(st.text(max_size=5), max_size=3).map(tuple),
    start=digits,
    end=digits,
    page=digits,
    size=digits,
)
def test_request_model_round_trips_through_the_wire(
    source: str, dealers: tuple[str, ...], start: str, end: str, page: str, size: str
) -> None:
    request = SearchTradesRequest(
        source=source,
        dealer_list=dealers,
        time_ranges=(TimeRange(start_time=start, end_time=end, page=page, page_size=size),),
    )
    again = SearchTradesRequest.from_wire(request.to_wire())
    assert again.to_wire() == request.to_wire()
    assert (again.source, again.dealer_list) == (source, dealers)
    assert again.time_ranges[0].page_size == size
