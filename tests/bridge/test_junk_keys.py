"""Issue 8.9: no junk customer keys, whatever made the customer (default transform, with_fields,
templates, user functions): empty, blank, prefix-only or non-finite numbers are skipped with a
reason, never merged into one junk customer."""

from __future__ import annotations

import math
from typing import Any

import pytest

from huke_client.testing import fake_trade
from huke_k3_bridge import CustomerTransform, SkipTrade, trade_to_customer
from k3cloud_client import Customer

from .conftest import HOUR_MS, Stage


def _trades(stage: Stage, cids: list[Any]) -> None:
    trades = []
    for n, cid in enumerate(cids):
        trade = fake_trade(create_time=stage.now_ms - HOUR_MS + n, tid=f"T{n}", buyer_cid=None)
        trade["buyerCid"] = cid
        trades.append(trade)
    stage.fake_huke.add_trades(trades)


@pytest.mark.parametrize("cid", [None, "", "   ", math.nan, math.inf, -math.inf])
def test_a_prefixed_number_template_skips_trades_without_a_usable_buyer_cid(cid: Any) -> None:
    transform = CustomerTransform().with_fields(FNumber="HK-{{buyerCid}}")
    trade = {"tid": "T1", "buyerNick": "n", "buyerCid": cid}
    with pytest.raises(SkipTrade) as info:
        transform(trade)
    assert "buyerCid" in info.value.reason


def test_a_prefixed_number_template_still_works_for_real_buyers() -> None:
    transform = CustomerTransform().with_fields(FNumber="HK-{{buyerCid}}")
    assert transform({"buyerNick": "n", "buyerCid": "wm01"}).number == "HK-wm01"
    assert transform({"buyerNick": "n", "buyerCid": 42}).number == "HK-42"


@pytest.mark.parametrize("cid", [math.nan, math.inf, -math.inf])
def test_a_non_finite_buyer_cid_is_no_customer_number(cid: float) -> None:
    with pytest.raises(SkipTrade, match="not text"):
        trade_to_customer({"buyerNick": "n", "buyerCid": cid})


@pytest.mark.parametrize("engine", ["sync", "async"])
async def test_trades_without_a_usable_buyer_cid_never_become_one_junk_customer(
    stage: Stage, engine: str
) -> None:
    # NaN and Infinity travel as the JSON tokens a lenient server emits.
    _trades(stage, [None, "", " ", math.nan, math.inf, "wm01", "wm02"])
    transform = CustomerTransform().with_fields(FNumber="HK-{{buyerCid}}")
    report = (
        stage.sync(transform=transform)
        if engine == "sync"
        else await stage.async_sync(transform=transform)
    )
    assert sorted(stage.customers()) == ["HK-wm01", "HK-wm02"]
    by_tid = {o.trade_id: o for o in report.outcomes}
    for tid in ("T0", "T1", "T2", "T3", "T4"):
        assert by_tid[tid].status == "skipped", by_tid[tid]
        assert by_tid[tid].reason
    assert [by_tid[t].status for t in ("T5", "T6")] == ["created", "created"]
    assert report.ok


@pytest.mark.parametrize("number", ["", "   ", "nan", "NaN", "inf", "-Infinity"])
def test_a_user_function_giving_a_junk_number_is_skipped_with_a_reason(
    stage: Stage, number: str
) -> None:
    _trades(stage, ["wm01", "wm02"])

    def transform(trade: Any) -> Customer:
        return Customer(number, "x")

    report = stage.sync(transform=transform)
    assert stage.customers() == {}
    assert [o.status for o in report.outcomes] == ["skipped", "skipped"]
    assert all("customer number" in str(o.reason) for o in report.outcomes)
