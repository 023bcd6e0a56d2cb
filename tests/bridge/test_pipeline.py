"""The async engine transforms pages as they arrive and records them in stream order: its report
is the sync engine's, whatever the order of arrival. The shortcuts of the per-trade work give
the answers of the long way."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huke_client import Trade
from huke_client.testing import fake_trade
from huke_k3_bridge import SkipTrade, SyncReport, Template, TemplateError, trade_to_customer
from huke_k3_bridge._trade import wire_fields
from huke_k3_bridge._transform import _encodable, _surely_encodable
from k3cloud_client import Customer

from .conftest import HOUR_MS, Stage


def _picky(trade: Any) -> Customer:
    """The scheme's transform, except that it breaks on one buyer and makes a customer that
    cannot be sent (NaN) for another."""
    cid = wire_fields(trade).get("buyerCid")
    if cid == "wmBUG":
        raise RuntimeError("no customer for wmBUG")
    customer = trade_to_customer(trade)
    return Customer(cid, "nan", extra={"FQty": math.nan}) if cid == "wmNAN" else customer


def _order_key(trade: Any) -> Any:
    fields = wire_fields(trade)
    if fields.get("tag") == "no-key":
        raise KeyError("tag")
    return fields["createTime"]


def _every_kind_of_trade(stage: Stage) -> None:
    """Trades spread over the 20 hours (so over every sub-window) that exercise each decision
    of the books: repeated buyers with other names, a trade fetched twice, a skip, a transform
    failure, a customer that cannot be sent, and order_by failing (first in stream order wins the
    note)."""
    stage.generate(400, buyers=60, seed=5, missing_cid_every=37)
    base = stage.start + HOUR_MS
    step = 4 * HOUR_MS
    quarter = stage.start + (stage.end - stage.start + 1) // 4  # where the second sub-window starts
    twice = fake_trade(create_time=base, tid="TWICE", buyer_cid="wmT", buyer_nick="twice")
    stage.fake_huke.add_trades(
        [
            twice,
            {**twice, "createTime": base + 3 * step},  # the same trade again, in a later range
            fake_trade(create_time=base + 1, tid="BUG1", buyer_cid="wmBUG"),
            fake_trade(create_time=base + step, tid="NAN", buyer_cid="wmNAN"),
            # K1 ends the first sub-window, K2 opens the second: the first in stream order
            # is the one noted.
            fake_trade(create_time=quarter - 10, tid="K1", buyer_cid="wmK", tag="no-key"),
            fake_trade(create_time=quarter + 10, tid="K2", buyer_cid="wmK", tag="no-key"),
            fake_trade(create_time=base + 3 * step + 1, tid="K3", buyer_cid="wmK", buyer_nick="新"),
        ]
    )


def _view(report: SyncReport) -> tuple[Any, ...]:
    # customer_id is left out: the fake numbers customers in the order their saves arrive.
    outcomes = [
        (o.position, o.status, o.trade_id, o.buyer_cid, o.number, o.name, o.reason, o.merged_into)
        for o in report.outcomes
    ]
    return outcomes, report.notes, report.errors, report.ok


async def test_async_report_is_the_sync_report_for_every_kind_of_trade() -> None:
    views = []
    for use_async in (False, True):
        stage = Stage()
        _every_kind_of_trade(stage)
        options: dict[str, Any] = {"transform": _picky, "order_by": _order_key, "batch_size": 40}
        if use_async:
            report = await stage.async_sync(fetch_concurrency=4, concurrency=3, **options)
        else:
            report = stage.sync(**options)
        report.check()
        views.append(_view(report))
    sync_view, async_view = views
    assert async_view == sync_view
    outcomes, notes, _, _ = sync_view
    by_tid = {o[2]: o for o in outcomes}
    assert by_tid["BUG1"][1:2] == ("failed",)
    assert by_tid["NAN"][6].startswith("transform failed: ValueError: the customer cannot be sent")
    assert sum(1 for o in outcomes if o[2] == "TWICE") == 2
    assert any(o[1] == "skipped" for o in outcomes)
    # The note names the first trade whose order_by failed in stream order, not in arrival order.
    assert [n for n in notes if "order_by failed" in n] == [
        f"order_by failed for trade K1 #{by_tid['K1'][0]}: KeyError: 'tag'; "
        "the latest trade in the stream wins instead"
    ]


async def test_async_looks_each_new_number_up_once(stage: Stage) -> None:
    trades = stage.generate(1500, buyers=900, seed=3)
    report = await stage.async_sync(concurrency=4)
    numbers = len({t["buyerCid"] for t in trades})
    assert report.counts["created"] == numbers
    queried = [n for body in stage.sent("ExecuteBillQuery") for n in _quoted(body)]
    assert len(queried) == numbers
    assert set(queried) == {t["buyerCid"] for t in trades}
    assert len(stage.sent("ExecuteBillQuery")) == math.ceil(numbers / 200)


def _quoted(body: dict[str, Any]) -> list[str]:
    """The numbers of an ``(FNumber in ('a','b')) and (FUseOrgId.FNumber = '100')`` lookup."""
    text = body["data"]["FilterString"]
    assert text.endswith(" and (FUseOrgId.FNumber = '100')"), text
    inside = text[text.index("FNumber in (") + len("FNumber in (") : text.index("))")]
    return [part.strip().strip("'") for part in inside.split(",")]


# -- the shortcuts ---------------------------------------------------------------------------

JSONISH = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(),
        st.sampled_from(["\ud800", "a\udfffb", "字🌸", ""]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.dictionaries(
            st.one_of(st.text(max_size=3), st.integers(), st.none()), inner, max_size=3
        ),
        st.builds(lambda d: {"FNumber": d}, inner),
    ),
    max_leaves=8,
)


def _sendable(model: Any) -> bool:
    try:
        json.dumps(model, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):
        return False
    return True


@given(st.dictionaries(st.one_of(st.text(max_size=4), st.integers()), JSONISH, max_size=5))
def test_encodable_shortcut_agrees_with_encoding(model: dict[Any, Any]) -> None:
    if _surely_encodable(model):
        assert _sendable(model)
    try:
        _encodable(model)
    except ValueError:
        assert not _sendable(model)
    else:
        assert _sendable(model)


def test_the_schemes_customers_take_the_shortcut() -> None:
    trade = fake_trade(create_time=1, buyer_nick="张三的店", buyer_cid="wm01")
    assert _surely_encodable(trade_to_customer(trade).to_wire())
    assert _surely_encodable(Customer("wm01", "x", description="备注").to_wire())
    assert not _surely_encodable(Customer("wm01", "\ud800").to_wire())


def test_single_placeholder_renders_like_any_template() -> None:
    wire = {"buyerNick": "张三", "payment": 99.5, "nothing": None, "paid": True, "shop": {"a": "b"}}
    trade = Trade.from_wire(wire)
    for source in (wire, trade):
        assert Template("{{buyerNick}}").render(source) == "张三"
        assert Template("{{ buyerNick }}").render(source) == "张三"
        assert Template("{{payment}}").render(source) == "99.5"
        assert Template("{{nothing}}").render(source) == ""
        assert Template("{{shop.a}}").render(source) == "b"
        for text in ("{{paid}}", "{{absent}}", "{{shop}}"):
            with pytest.raises(TemplateError) as caught:
                Template(text).render(source, target="FName")
            assert caught.value.target == "FName"


def test_wire_fields_of_a_trade_are_its_raw_fields() -> None:
    trade = Trade.from_wire({"tid": "T1", "buyerCid": "wm1"})
    assert wire_fields(trade) is trade.raw
    assert trade_to_customer(trade).number == "wm1"
    with pytest.raises(SkipTrade) as caught:
        trade_to_customer(Trade.from_wire({"tid": "T2"}))
    assert caught.value.reason == "trade has no buyerCid"
