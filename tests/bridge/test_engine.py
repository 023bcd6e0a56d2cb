"""The sync over the real clients and simulators: mapping on the wire, dedupe, existing customers,
uncertain saves, accounting, dry run, state, and sync/async parity."""

from __future__ import annotations

import collections
import json
from datetime import timedelta
from pathlib import Path

import pytest

from huke_client.testing import Fault, fake_trade
from huke_k3_bridge import STATUSES, CustomerTransform, FileState, SyncReport
from k3cloud_client import Customer

from .conftest import HOUR_MS, Stage


def test_exact_scheme_model_and_flags_on_the_wire(stage: Stage) -> None:
    stage.fake_huke.add_trades(
        [
            fake_trade(
                create_time=stage.now_ms - HOUR_MS,
                tid="HK1",
                buyer_nick="王小明😊",
                buyer_cid="wm00ab12cd34",
                payment="88.00",
            )
        ]
    )
    report = stage.sync()
    assert [o.status for o in report.outcomes] == ["created"]
    (query,) = stage.sent("ExecuteBillQuery")
    assert query["data"]["FormId"] == "BD_Customer"
    assert query["data"]["FieldKeys"] == "FCUSTID,FNumber,FUseOrgId.FNumber"
    assert query["data"]["FilterString"] == (
        "(FNumber in ('wm00ab12cd34')) and (FUseOrgId.FNumber = '100')"
    )
    assert query["data"]["OrderString"] == "FCUSTID"
    (save,) = stage.sent("BatchSave")
    assert save["formid"] == "BD_Customer"
    data = save["data"]
    assert data["Model"] == [
        {
            "FNumber": "wm00ab12cd34",
            "FName": "王小明😊",
            "FCreateOrgId": {"FNumber": "100"},
            "FUseOrgId": {"FNumber": "100"},
        }
    ]
    assert data["IsAutoSubmitAndAudit"] is True
    assert data["IsVerifyBaseDataField"] is False
    stored = stage.customers()["wm00ab12cd34"]
    assert stored["FName"] == "王小明😊"
    assert stored["FDocumentStatus"] == "C"  # submitted and audited in the same call
    assert report.outcomes[0].customer_id == str(stored["FCUSTID"])


def test_every_trade_accounted_for(stage: Stage) -> None:
    trades = stage.generate(700, buyers=150, missing_cid_every=50)
    report = stage.sync(batch_size=64)
    report.check(700)
    assert report.total == 700
    assert sum(report.counts.values()) == 700
    assert [o.trade_id for o in report.outcomes] == [
        t["tid"] for t in sorted(trades, key=lambda t: t["createTime"])
    ]
    cids = {t["buyerCid"] for t in trades if "buyerCid" in t}
    assert report.counts["created"] == len(cids)
    assert report.counts["skipped"] == 14
    assert report.counts["merged"] == 700 - 14 - len(cids)
    assert report.counts["failed"] == 0
    assert set(stage.customers()) == cids
    assert report.ok
    # a merged trade points at the created one of the same buyer
    for outcome in report.by_status("merged"):
        assert outcome.merged_into is not None
        target = report.outcomes[outcome.merged_into]
        assert target.status == "created"
        assert target.number == outcome.number
    # re-running converges: nothing new, nothing twice
    again = stage.sync(batch_size=64)
    assert again.counts["created"] == 0
    assert again.counts["existed"] == len(cids)
    assert set(stage.customers()) == cids


def test_dedupe_latest_wins_and_conflicting_names_are_noted(stage: Stage) -> None:
    base = stage.now_ms - 5 * HOUR_MS
    stage.fake_huke.add_trades(
        [
            fake_trade(create_time=base, tid="A1", buyer_nick="李雷", buyer_cid="wmL"),
            fake_trade(create_time=base + 1, tid="B1", buyer_nick="韩梅梅", buyer_cid="wmH"),
            fake_trade(create_time=base + 2, tid="A2", buyer_nick="李雷雷", buyer_cid="wmL"),
            fake_trade(create_time=base + 3, tid="A3", buyer_nick="李雷雷", buyer_cid="wmL"),
            fake_trade(create_time=base + 4, tid="B2", buyer_nick="韩梅梅", buyer_cid="wmH"),
        ]
    )
    report = stage.sync()
    assert [(o.trade_id, o.status, o.merged_into) for o in report.outcomes] == [
        ("A1", "merged", 3),
        ("B1", "merged", 4),
        ("A2", "merged", 3),
        ("A3", "created", None),
        ("B2", "created", None),
    ]
    assert stage.customers()["wmL"]["FName"] == "李雷雷"
    assert report.notes == (
        "customer wmL: 3 trades with different names ('李雷', '李雷雷'); kept '李雷雷' from trade A3 #3",
    )
    assert report.outcomes[0].reason == (
        "merged into trade A3 #3: a later trade of the same buyer (name '李雷' was replaced by '李雷雷')"
    )
    (save,) = stage.sent("BatchSave")
    assert [m["FNumber"] for m in save["data"]["Model"]] == ["wmL", "wmH"]


def test_existing_customers_are_skipped(stage: Stage) -> None:
    stage.fake_k3.seed("BD_Customer", [Customer("wm1", "老客户", description="手工录入").to_wire()])
    stage.fake_huke.add_trades(
        [
            fake_trade(
                create_time=stage.now_ms - HOUR_MS, tid="T1", buyer_nick="新名字", buyer_cid="wm1"
            ),
            fake_trade(
                create_time=stage.now_ms - HOUR_MS + 1,
                tid="T2",
                buyer_nick="新客户",
                buyer_cid="wm2",
            ),
        ]
    )
    report = stage.sync()
    assert [o.status for o in report.outcomes] == ["existed", "created"]
    stored = stage.customers()
    assert stored["wm1"]["FName"] == "老客户"
    assert stored["wm1"]["FDescription"] == "手工录入"
    assert report.outcomes[0].customer_id == str(stored["wm1"]["FCUSTID"])
    (save,) = stage.sent("BatchSave")
    assert [m["FNumber"] for m in save["data"]["Model"]] == ["wm2"]


def test_existing_customers_are_updated(stage: Stage) -> None:
    (cust_id,) = stage.fake_k3.seed("BD_Customer", [Customer("wm1", "老客户").to_wire()])
    stage.fake_huke.add_trades(
        [
            fake_trade(
                create_time=stage.now_ms - HOUR_MS, tid="T1", buyer_nick="新名字", buyer_cid="wm1"
            )
        ]
    )
    transform = CustomerTransform(description={"wm1": "UID-1"})
    report = stage.sync(on_existing="update", transform=transform)
    assert [o.status for o in report.outcomes] == ["updated"]
    stored = stage.customers()
    assert list(stored) == ["wm1"]
    assert stored["wm1"]["FName"] == "新名字"
    assert stored["wm1"]["FDescription"] == "UID-1"
    assert stored["wm1"]["FCUSTID"] == cust_id
    (save,) = stage.sent("BatchSave")
    assert save["data"]["Model"][0]["FCUSTID"] == cust_id
    assert save["data"]["NeedUpDateFields"] == ["FName", "FDescription"]


def test_save_timeout_after_commit_then_rerun_creates_no_duplicate(stage: Stage) -> None:
    trades = stage.generate(120, buyers=40)
    cids = {t["buyerCid"] for t in trades}
    stage.fake_k3.inject(Fault.reply_timeout(), path="BatchSave")
    first = stage.sync()
    assert len(stage.sent("BatchSave")) == 1  # committed, reply lost, never re-sent
    assert first.counts["created"] == len(cids)
    assert {o.reason for o in first.by_status("created")} == {"confirmed after an uncertain reply"}
    assert first.ok
    assert set(stage.customers()) == cids
    second = stage.sync()
    assert second.counts["created"] == 0
    assert second.counts["existed"] == len(cids)
    assert set(stage.customers()) == cids  # and customers() asserted no number twice


def test_save_timeout_before_commit_is_retried_once(stage: Stage) -> None:
    trades = stage.generate(30, buyers=10)
    stage.fake_k3.inject(Fault.timeout(), path="BatchSave")
    report = stage.sync()
    assert len(stage.sent("BatchSave")) == 2
    assert {o.reason for o in report.by_status("created")} == {
        "saved on a second attempt after an uncertain reply"
    }
    assert set(stage.customers()) == {t["buyerCid"] for t in trades}


def test_save_lost_twice_is_reported_and_the_rerun_completes(stage: Stage) -> None:
    trades = stage.generate(20, buyers=5)
    cids = {t["buyerCid"] for t in trades}
    stage.fake_k3.inject(Fault.timeout(), path="BatchSave", times=2)
    first = stage.sync()
    assert first.counts["uncertain"] == len(cids)
    assert first.counts["failed"] == 0
    assert not first.ok
    assert all("stayed unknown after a retry" in (o.reason or "") for o in first.uncertain)
    assert stage.customers() == {}
    second = stage.sync()
    assert second.counts["created"] == len(cids)
    assert set(stage.customers()) == cids


def test_dry_run_saves_nothing(stage: Stage, tmp_path: Path) -> None:
    trades = stage.generate(50, buyers=12)
    state = FileState(tmp_path / "state.json")
    report = stage.sync(dry_run=True, state=state)
    assert report.dry_run
    assert report.counts["created"] == len({t["buyerCid"] for t in trades})
    assert stage.fake_k3.call_count("BatchSave") == 0
    assert stage.customers() == {}
    assert state.load() is None
    assert "dry run: nothing was saved" in str(report)


def test_huke_failing_after_retries_is_a_run_error(stage: Stage, tmp_path: Path) -> None:
    stage.generate(250, buyers=60)
    state = FileState(tmp_path / "state.json")
    stage.fake_huke.inject(Fault.http_status(503), times=10, after=2)
    report = stage.sync(state=state)
    assert report.total == 200  # the two pages that arrived were saved
    assert report.counts["failed"] == 0
    assert len(report.errors) == 1
    assert "HukeHTTPError" in report.errors[0]
    assert not report.ok
    assert report.watermark is None
    assert state.load() is None


def test_state_resumes_with_overlap(stage: Stage, tmp_path: Path) -> None:
    state = FileState(tmp_path / "state.json", overlap=timedelta(minutes=5))
    early = stage.now_ms - 3 * HOUR_MS
    stage.fake_huke.add_trades(
        [
            fake_trade(create_time=early, tid="E1", buyer_cid="wmE", buyer_nick="e"),
            fake_trade(create_time=stage.end - 60_000, tid="L1", buyer_cid="wmL", buyer_nick="l"),
        ]
    )
    first = stage.sync(start=stage.start, end=stage.end, state=state)
    assert first.watermark is not None
    assert int(first.watermark.timestamp() * 1000) == stage.end
    stage.fake_huke.add_trades(
        [fake_trade(create_time=stage.end + 1000, tid="N1", buyer_cid="wmN", buyer_nick="n")]
    )
    # Run when the clock says end: the watermark never runs ahead of the moment of the fetch.
    later = (stage.end + 2000) / 1000
    second = stage.sync(start=None, end=stage.end + 2000, state=state, clock=lambda: later)
    assert second.resumed_from is not None
    assert int(second.resumed_from.timestamp() * 1000) == stage.end - 300_000
    # the overlap brings L1 back: absorbed as existed; E1 is not fetched again
    assert [(o.trade_id, o.status) for o in second.outcomes] == [
        ("L1", "existed"),
        ("N1", "created"),
    ]
    loaded = state.load()
    assert loaded is not None
    assert int(loaded.timestamp() * 1000) == stage.end + 2000


def _store_view(stage: Stage) -> dict[str, tuple[str, str | None]]:
    return {n: (r["FName"], r.get("FDescription")) for n, r in stage.customers().items()}


async def test_sync_and_async_reach_the_same_state() -> None:
    reports: list[SyncReport] = []
    stores = []
    for use_async in (False, True):
        stage = Stage()
        stage.generate(900, buyers=260, seed=5, missing_cid_every=97)
        stage.fake_k3.seed(
            "BD_Customer", [Customer(stage.fake_huke.trades[3]["buyerCid"], "seeded").to_wire()]
        )
        stage.fake_k3.inject(Fault.reply_timeout(), path="BatchSave", after=1)
        options = {
            "batch_size": 50,
            "transform": CustomerTransform(description=lambda cid: cid[-4:]),
        }
        if use_async:
            report = await stage.async_sync(concurrency=4, **options)
        else:
            report = stage.sync(**options)
        reports.append(report)
        stores.append(_store_view(stage))
    sync_report, async_report = reports
    assert stores[0] == stores[1]
    assert sync_report.counts == async_report.counts
    assert [(o.trade_id, o.status, o.number, o.merged_into) for o in sync_report.outcomes] == [
        (o.trade_id, o.status, o.number, o.merged_into) for o in async_report.outcomes
    ]
    assert sync_report.counts["existed"] == 1
    assert sync_report.ok
    assert async_report.ok


async def test_async_lookups_overlap_fetching(stage: Stage) -> None:
    stage.generate(1500, buyers=900, seed=3)
    order: list[str] = []
    handler = stage.fake_k3.handle

    def spy(request: object) -> object:
        order.append("k3")
        return handler(request)  # type: ignore[arg-type]

    huke_handle = stage.fake_huke.handle

    def huke_spy(request: object) -> object:
        order.append("huke")
        return huke_handle(request)  # type: ignore[arg-type]

    stage.fake_k3.handle = spy  # type: ignore[method-assign]
    stage.fake_huke.handle = huke_spy  # type: ignore[method-assign]
    report = await stage.async_sync(concurrency=4)
    assert report.counts["created"] == len(stage.customers())
    first_k3 = order.index("k3")
    last_huke = len(order) - 1 - order[::-1].index("huke")
    assert first_k3 < last_huke  # a lookup went out while pages were still being fetched


def test_outcome_statuses_are_known(stage: Stage) -> None:
    stage.generate(40, buyers=9, missing_cid_every=7)
    report = stage.sync()
    assert set(collections.Counter(o.status for o in report.outcomes)) <= set(STATUSES)


@pytest.mark.parametrize("fault", [Fault.reply_lost(), Fault.http_status(502)])
def test_lookup_faults_are_retried(stage: Stage, fault: Fault) -> None:
    trades = stage.generate(30, buyers=10)
    stage.fake_k3.inject(fault, path="ExecuteBillQuery")
    report = stage.sync()
    assert report.counts["created"] == len({t["buyerCid"] for t in trades})
    assert report.ok


async def test_async_fetch_failure_stops_in_order_and_is_reported(
    stage: Stage, tmp_path: Path
) -> None:
    trades = stage.generate(800, buyers=300, seed=9)
    state = FileState(tmp_path / "state.json")
    stage.fake_huke.inject(Fault.http_status(503), times=50, after=3)
    report = await stage.async_sync(fetch_concurrency=4, state=state)
    report.check()
    assert len(report.errors) == 1
    assert "HukeHTTPError" in report.errors[0]
    assert not report.ok
    # the watermark covers only sub-windows that fully succeeded: every trade up to it is done
    mark = state.load()
    assert mark == report.watermark
    assert mark is not None
    mark_ms = int(mark.timestamp() * 1000)
    done = {o.trade_id for o in report.outcomes}
    assert {t["tid"] for t in trades if t["createTime"] <= mark_ms} <= done
    assert any(t["tid"] not in done for t in trades)
    ordered = [t["tid"] for t in sorted(trades, key=lambda t: t["createTime"])]
    # what was accounted for is a prefix of the stream, in order, and all of it was saved
    assert [o.trade_id for o in report.outcomes] == ordered[: report.total]
    assert report.counts["failed"] == 0
    assert set(stage.customers()) == {o.number for o in report.outcomes if o.number}
    stage.fake_huke.faults.clear()  # Huke is back
    again = await stage.async_sync(fetch_concurrency=4, state=state)
    assert again.ok
    assert again.total == 800
    assert (
        again.counts["created"] == len({t["buyerCid"] for t in trades}) - report.counts["created"]
    )
    assert again.resumed_from is None  # explicit start/end given by the stage
    assert state.load() == again.watermark


QUERY_ERROR = json.dumps(
    [
        [
            {
                "Result": {
                    "ResponseStatus": {
                        "IsSuccess": False,
                        "MsgCode": 9,
                        "ErrorCode": 500,
                        "Errors": [{"FieldName": "FNumber", "Message": "字段不存在", "DIndex": 0}],
                    }
                }
            }
        ]
    ]
).encode()


async def test_async_lookup_refused_as_a_whole_is_split_and_completed(stage: Stage) -> None:
    trades = stage.generate(600, buyers=450, seed=4)
    stage.fake_k3.inject(Fault.reply(QUERY_ERROR), path="ExecuteBillQuery")
    report = await stage.async_sync()
    assert report.ok
    assert report.counts["created"] == len({t["buyerCid"] for t in trades})
    assert len(stage.sent("ExecuteBillQuery")) > 3


def test_async_default_fetches_sub_windows_in_parallel() -> None:
    from huke_k3_bridge._windows import subdivide

    assert subdivide(0, 99, 4) == [(0, 24), (25, 49), (50, 74), (75, 99)]
    assert subdivide(0, 2, 8) == [(0, 0), (1, 1), (2, 2)]
    assert subdivide(5, 5, 4) == [(5, 5)]
