"""SyncReport: counts, ok, self-check, and its renderings."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from huke_k3_bridge import AccountingError, SyncReport, TradeOutcome

START = datetime(2024, 11, 27, 20, 0, tzinfo=timezone.utc)
END = datetime(2024, 11, 28, 16, 0, tzinfo=timezone.utc)


def outcomes() -> tuple[TradeOutcome, ...]:
    return (
        TradeOutcome(
            0, "created", trade_id="T0", buyer_cid="c1", number="c1", name="张三", customer_id="101"
        ),
        TradeOutcome(
            1,
            "merged",
            trade_id="T1",
            buyer_cid="c1",
            number="c1",
            name="张三",
            reason="merged into trade T0 #0",
            merged_into=0,
        ),
        TradeOutcome(2, "skipped", trade_id="T2", reason="trade has no buyerCid"),
        TradeOutcome(
            3,
            "failed",
            trade_id="T3",
            buyer_cid="c3",
            number="c3",
            name="<b>x</b>",
            reason="BatchSave refused the customer: 违反字段唯一性要求",
        ),
        TradeOutcome(4, "existed", buyer_cid="c4", number="c4", customer_id="7"),
    )


def test_counts_ok_and_failures() -> None:
    report = SyncReport(START, END, outcomes())
    assert report.counts == {
        "created": 1,
        "updated": 0,
        "existed": 1,
        "skipped": 1,
        "uncertain": 0,
        "failed": 1,
        "merged": 1,
    }
    assert report.total == 5
    assert not report.ok
    assert [o.position for o in report.failures] == [3]
    report.check(5)
    good = SyncReport(START, END, outcomes()[:3])
    assert good.ok
    assert not SyncReport(START, END, outcomes()[:3], errors=("fetch failed",)).ok


def test_check_catches_a_ledger_that_does_not_balance() -> None:
    report = SyncReport(START, END, outcomes())
    with pytest.raises(AccountingError, match="6 trades fetched but 5 outcomes"):
        report.check(6)
    gap = SyncReport(START, END, (outcomes()[0], outcomes()[2]))
    with pytest.raises(AccountingError, match="positions"):
        gap.check()
    no_reason = SyncReport(START, END, (TradeOutcome(0, "failed", number="x"),))
    with pytest.raises(AccountingError, match="failed without a reason"):
        no_reason.check()
    dangling = SyncReport(START, END, (TradeOutcome(0, "merged", reason="r", merged_into=5),))
    with pytest.raises(AccountingError, match="merged into nothing"):
        dangling.check()


def test_to_dicts_flat_rows() -> None:
    rows = SyncReport(START, END, outcomes()).to_dicts()
    assert rows[0] == {
        "position": 0,
        "status": "created",
        "trade_id": "T0",
        "buyer_cid": "c1",
        "number": "c1",
        "name": "张三",
        "reason": None,
        "merged_into": None,
        "customer_id": "101",
    }
    assert [r["status"] for r in rows] == ["created", "merged", "skipped", "failed", "existed"]


def test_to_json_round_trips() -> None:
    data = json.loads(SyncReport(START, END, outcomes(), notes=("n",)).to_json())
    assert data["ok"] is False
    assert data["counts"]["failed"] == 1
    assert data["start"] == "2024-11-27T20:00:00+00:00"
    assert data["notes"] == ["n"]
    assert len(data["outcomes"]) == 5
    assert data["outcomes"][3]["reason"].endswith("违反字段唯一性要求")


def test_str_is_readable() -> None:
    text = str(
        SyncReport(START, END, outcomes(), errors=("Huke went away",), notes=("names differ",))
    )
    lines = text.splitlines()
    assert (
        lines[0] == "Customer sync 2024-11-27 20:00:00+00:00 .. 2024-11-28 16:00:00+00:00: NOT OK"
    )
    assert (
        lines[1]
        == "  5 trades: 1 created, 0 updated, 1 existed, 1 skipped, 0 uncertain, 1 failed, 1 merged"
    )
    assert (
        "  failed   trade T3 buyerCid 'c3' #3: BatchSave refused the customer: 违反字段唯一性要求"
        in lines
    )
    assert "  skipped  trade T2 #2: trade has no buyerCid" in lines
    assert "  note: names differ" in lines
    assert "  error: Huke went away" in lines
    dry = str(SyncReport(START, END, (), dry_run=True))
    assert "OK (dry run: nothing was saved)" in dry.splitlines()[0]


def test_str_lists_at_most_twenty() -> None:
    many = tuple(TradeOutcome(i, "skipped", reason="no cid") for i in range(25))
    text = str(SyncReport(START, END, many))
    assert text.count("skipped  trade #") == 20
    assert "… and 5 more failed, uncertain or skipped" in text


def test_html_is_escaped_table() -> None:
    html = SyncReport(START, END, outcomes())._repr_html_()
    assert "<table>" in html
    assert "<td>1</td>" in html
    assert "&lt;b&gt;" not in html or "<b>x</b>" not in html
    assert "违反字段唯一性要求" in html
    evil = SyncReport(
        START, END, (TradeOutcome(0, "skipped", trade_id="<script>", reason="<img>"),)
    )
    assert "<script>" not in evil._repr_html_()
    assert "&lt;script&gt;" in evil._repr_html_()


def test_identity_and_repr() -> None:
    assert outcomes()[3].identity == "trade T3 buyerCid 'c3' #3"
    assert TradeOutcome(9, "skipped", reason="r").identity == "trade #9"
    assert repr(SyncReport(START, END, outcomes())).startswith(
        "SyncReport(ok=False, total=5, created=1"
    )
