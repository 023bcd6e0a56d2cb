"""Engine decisions on replies the simulators cannot produce on demand (stand-in K/3)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from huke_k3_bridge import FileState, SyncReport, sync_customers
from k3cloud_client import BatchSaveResult, FailedRow, K3CloudAPIError, K3CloudConnectionError

from .conftest import CONFIRM_TIMEOUT
from .stubs import StubHuke, StubK3


def trades(n: int, *, buyers: int | None = None, prefix: str = "T") -> list[dict[str, Any]]:
    b = buyers or n
    return [
        {"tid": f"{prefix}{i}", "buyerCid": f"c{i % b}", "buyerNick": f"n{i % b}"} for i in range(n)
    ]


def run(huke: Any, k3: Any, **options: Any) -> SyncReport:
    options.setdefault("start", 0)
    options.setdefault("end", 10_000)
    options.setdefault("progress", False)
    options.setdefault("confirm_timeout", CONFIRM_TIMEOUT)
    return sync_customers(huke, k3, **options)


def statuses(report: SyncReport) -> list[str]:
    return [o.status for o in report.outcomes]


def make_uncertain(indexes: set[int], *, times: int = 1) -> Any:
    """A save hook: the listed rows, which the stub has stored (committed), get an uncertain
    failure. A hook that pops them from ``StubK3.store`` first makes the save not commit."""
    left = {"n": times}

    def hook(models: list[dict[str, Any]], result: BatchSaveResult) -> BatchSaveResult:
        if left["n"] <= 0:
            return result
        left["n"] -= 1
        saved = [r for r in result.saved if r.index not in indexes]
        failed = [
            FailedRow(r.index, None, "timed out", None, uncertain=True, number=r.number)
            for r in result.saved
            if r.index in indexes
        ]
        return BatchSaveResult(saved=saved, failed=[*result.failed, *failed])

    return hook


def test_uncertain_but_committed_is_confirmed_not_resent() -> None:
    k3 = StubK3()
    k3.on_save = make_uncertain({0, 1})
    report = run(StubHuke(trades(3)), k3)
    assert statuses(report) == ["created"] * 3
    assert [o.reason for o in report.outcomes] == [
        "confirmed after an uncertain reply",
        "confirmed after an uncertain reply",
        None,
    ]
    assert len(k3.saves) == 1  # confirmed by a lookup, never sent twice
    assert k3.queries[-1] == ["c0", "c1"]
    assert report.ok


def test_uncertain_and_not_committed_is_retried_once() -> None:
    k3 = StubK3()

    def lose(models: list[dict[str, Any]], result: BatchSaveResult) -> BatchSaveResult:
        if len(k3.saves) == 1:  # first call: row 0 never reached the database
            k3.store.pop(models[0]["FNumber"])
            return make_uncertain({0})(models, result)
        return result

    k3.on_save = lose
    report = run(StubHuke(trades(2)), k3)
    assert statuses(report) == ["created", "created"]
    assert report.outcomes[0].reason == "saved on a second attempt after an uncertain reply"
    assert [len(s["models"]) for s in k3.saves] == [2, 1]
    assert sorted(k3.store) == ["c0", "c1"]


def test_uncertain_twice_is_failed_and_a_rerun_fixes_it() -> None:
    k3 = StubK3()

    def never(models: list[dict[str, Any]], result: BatchSaveResult) -> BatchSaveResult:
        k3.store.pop("c0", None)
        return make_uncertain({i for i, m in enumerate(models) if m["FNumber"] == "c0"})(
            models, result
        )

    k3.on_save = never
    report = run(StubHuke(trades(2)), k3)
    assert statuses(report) == ["uncertain", "created"]
    assert report.outcomes[0].reason is not None
    assert "stayed unknown after a retry" in report.outcomes[0].reason
    assert not report.ok
    assert len(k3.saves) == 2
    k3.on_save = None
    again = run(StubHuke(trades(2)), k3)
    assert statuses(again) == ["created", "existed"]
    assert sorted(k3.store) == ["c0", "c1"]


def test_call_raising_connection_error_after_commit() -> None:
    k3 = StubK3()
    real = k3.batch_save
    calls = {"n": 0}

    def flaky(form_id: str, models: list[Any], **options: Any) -> BatchSaveResult:
        calls["n"] += 1
        real(form_id, models, **options)
        if calls["n"] == 1:
            raise K3CloudConnectionError("reply lost", url="x", reached_server=True)
        return real(form_id, [], **options)

    k3.batch_save = flaky  # type: ignore[method-assign]
    report = run(StubHuke(trades(3)), k3)
    assert statuses(report) == ["created"] * 3
    assert {o.reason for o in report.outcomes} == {"confirmed after an uncertain reply"}
    assert calls["n"] == 1


def test_call_refused_before_reaching_server_is_checked_then_failed() -> None:
    k3 = StubK3()

    def refuse(form_id: str, models: list[Any], **options: Any) -> BatchSaveResult:
        raise K3CloudConnectionError("connection refused", url="x", reached_server=False)

    k3.batch_save = refuse  # type: ignore[method-assign]
    report = run(StubHuke(trades(2)), k3)
    assert statuses(report) == ["failed", "failed"]
    assert report.outcomes[0].reason == (
        "BatchSave refused the customer: K3CloudConnectionError: connection refused"
    )


def test_refused_create_whose_number_exists_now_is_existed() -> None:
    k3 = StubK3()

    def race(models: list[dict[str, Any]], result: BatchSaveResult) -> BatchSaveResult:
        # another writer created c0 between our lookup and our save
        return BatchSaveResult(
            saved=[r for r in result.saved if r.index != 0],
            failed=[FailedRow(0, "FNumber", "[c0]在当前系统中已经被使用。", 11, number="c0")],
        )

    k3.on_save = race
    report = run(StubHuke(trades(2)), k3)
    assert statuses(report) == ["existed", "created"]
    assert report.outcomes[0].reason is not None
    assert "created by another writer" in report.outcomes[0].reason
    assert report.ok


def test_refused_row_is_failed_with_message_and_identity() -> None:
    k3 = StubK3()

    def refuse(models: list[dict[str, Any]], result: BatchSaveResult) -> BatchSaveResult:
        k3.store.pop("c1")
        return BatchSaveResult(
            saved=[r for r in result.saved if r.index != 1],
            failed=[FailedRow(1, "FName", "名称不能为空", 11, number="c1")],
        )

    k3.on_save = refuse
    report = run(StubHuke(trades(3)), k3)
    failed = report.failures
    assert len(failed) == 1
    assert failed[0].identity == "trade T1 buyerCid 'c1' #1"
    assert (
        failed[0].reason == "BatchSave refused the customer: 名称不能为空 (field FName, MsgCode 11)"
    )
    assert "  failed   trade T1 buyerCid 'c1' #1: BatchSave refused" in str(report)


def test_reply_without_a_row_is_checked() -> None:
    k3 = StubK3()
    k3.on_save = lambda models, result: BatchSaveResult(saved=result.saved[1:], failed=[])
    report = run(StubHuke(trades(2)), k3)
    assert statuses(report) == ["created", "created"]
    assert report.outcomes[0].reason == "confirmed after an uncertain reply"


def test_lookup_failure_fails_those_customers_without_saving() -> None:
    k3 = StubK3()
    k3.query_error = lambda numbers: K3CloudConnectionError("down", url="x", reached_server=True)
    report = run(StubHuke(trades(2)), k3)
    assert statuses(report) == ["failed", "failed"]
    assert report.outcomes[0].reason is not None
    assert report.outcomes[0].reason.startswith("could not check whether customer c0 exists")
    assert k3.saves == []


def test_lookup_refused_as_a_whole_is_split_to_isolate_the_bad_number() -> None:
    k3 = StubK3()

    def choke(numbers: list[str]) -> Exception | None:
        if "bad'one" in numbers:
            return K3CloudAPIError("syntax", msg_code=9)
        return None

    k3.query_error = choke
    items = trades(6)
    items[3]["buyerCid"] = "bad'one"
    report = run(StubHuke(items), k3)
    assert statuses(report) == ["created", "created", "created", "failed", "created", "created"]
    assert "K3CloudAPIError" in (report.outcomes[3].reason or "")
    assert len(k3.queries) > 1


def test_transform_error_fails_only_that_trade() -> None:
    def transform(trade: Any) -> Any:
        if trade["tid"] == "T1":
            raise KeyError("boom")
        from huke_k3_bridge import trade_to_customer

        return trade_to_customer(trade)

    report = run(StubHuke(trades(3)), StubK3(), transform=transform)
    assert statuses(report) == ["created", "failed", "created"]
    assert report.outcomes[1].reason == "transform failed: KeyError: 'boom'"


def test_transform_returning_wrong_type_fails_that_trade() -> None:
    report = run(StubHuke(trades(1)), StubK3(), transform=lambda t: {"FNumber": "x"})
    assert report.outcomes[0].status == "failed"
    assert "not a k3cloud_client.Customer" in (report.outcomes[0].reason or "")


def test_unsendable_text_fails_only_that_trade() -> None:
    items = trades(3)
    items[1]["buyerNick"] = "lone \ud800 surrogate"
    k3 = StubK3()
    report = run(StubHuke(items), k3)
    assert statuses(report) == ["created", "failed", "created"]
    assert "cannot be sent as JSON" in (report.outcomes[1].reason or "")


def test_fetch_failure_is_reported_and_what_was_fetched_is_saved(tmp_path: Path) -> None:
    state = FileState(tmp_path / "s.json")
    k3 = StubK3()
    report = run(StubHuke(trades(250), page_size=100, fail_after=200), k3, state=state)
    assert report.total == 200
    assert report.counts["created"] == 200
    assert len(report.errors) == 1
    assert "failed, so the rest of the range was not fetched" in report.errors[0]
    assert "ConnectionError: huke went away" in report.errors[0]
    assert not report.ok
    assert report.watermark is None
    assert state.load() is None


def test_windows_and_watermark(tmp_path: Path) -> None:
    state = FileState(tmp_path / "s.json")
    huke = StubHuke(trades(3))
    start = datetime(2024, 11, 1, tzinfo=timezone.utc)
    end = start + timedelta(days=2, hours=12)
    report = run(huke, StubK3(), start=start, end=end, state=state, window=timedelta(days=1))
    day = 86_400_000
    s = int(start.timestamp() * 1000)
    e = int(end.timestamp() * 1000)
    assert huke.calls == [(s, s + day - 1), (s + day, s + 2 * day - 1), (s + 2 * day, e)]
    assert report.watermark == end
    assert state.load() == end


def test_watermark_stops_before_a_window_with_a_failure(tmp_path: Path) -> None:
    state = FileState(tmp_path / "s.json")

    class TwoWindows(StubHuke):
        def iter_trade_pages(self, *, start: int, end: int, **_: Any) -> Any:
            self.calls.append((start, end))
            index = len(self.calls)
            yield from [
                type(
                    "P",
                    (),
                    {
                        "trades": [{"tid": f"W{index}", "buyerCid": f"w{index}", "buyerNick": "x"}],
                        "total": None,
                    },
                )()
            ]

    k3 = StubK3()

    def refuse_w2(models: list[dict[str, Any]], result: BatchSaveResult) -> BatchSaveResult:
        k3.store.pop("w2", None)
        bad = {i for i, m in enumerate(models) if m["FNumber"] == "w2"}
        return BatchSaveResult(
            saved=[r for r in result.saved if r.index not in bad],
            failed=[FailedRow(i, None, "no", 11, number="w2") for i in bad],
        )

    k3.on_save = refuse_w2
    start = datetime(2024, 11, 1, tzinfo=timezone.utc)
    report = run(
        TwoWindows([]),
        k3,
        start=start,
        end=start + timedelta(days=3) - timedelta(milliseconds=1),
        state=state,
        window=timedelta(days=1),
    )
    assert statuses(report) == ["created", "failed", "created"]
    assert report.watermark == start + timedelta(days=1) - timedelta(milliseconds=1)


def test_resume_from_watermark_with_overlap(tmp_path: Path) -> None:
    state = FileState(tmp_path / "s.json", overlap=timedelta(minutes=5))
    mark = datetime(2024, 11, 28, 8, 0, tzinfo=timezone.utc)
    state.save(mark)
    now = mark + timedelta(hours=1)
    huke = StubHuke(trades(1))
    report = run(huke, StubK3(), start=None, end=None, state=state, clock=now.timestamp)
    low = int((mark - timedelta(minutes=5)).timestamp() * 1000)
    assert huke.calls == [(low, int(now.timestamp() * 1000))]
    assert report.resumed_from == mark - timedelta(minutes=5)
    assert state.load() == now
    assert "resumed from the stored watermark" in str(report)


def test_default_window_is_the_schemes_20_hours() -> None:
    huke = StubHuke([])
    now = 1_732_780_000.0
    report = run(huke, StubK3(), start=None, end=None, clock=lambda: now)
    assert huke.calls == [(int(now * 1000) - 72_000_000, int(now * 1000))]
    assert report.total == 0
    assert report.ok


def test_order_by_picks_the_winner() -> None:
    items = [
        {"tid": "A", "buyerCid": "c", "buyerNick": "newest", "createTime": 30},
        {"tid": "B", "buyerCid": "c", "buyerNick": "older", "createTime": 10},
    ]
    report = run(StubHuke(items), StubK3(), order_by=lambda t: t["createTime"])
    assert statuses(report) == ["created", "merged"]
    assert report.outcomes[0].name == "newest"
    assert report.outcomes[1].reason == (
        "merged into trade A #0: an earlier trade of the same buyer "
        "(name 'older' was replaced by 'newest')"
    )


def test_order_by_failure_falls_back_to_stream_order() -> None:
    items = [
        {"tid": "A", "buyerCid": "c", "buyerNick": "a"},
        {"tid": "B", "buyerCid": "c", "buyerNick": "b"},
    ]
    report = run(StubHuke(items), StubK3(), order_by=lambda t: t["createTime"])
    assert statuses(report) == ["merged", "created"]
    assert any("order_by failed" in n for n in report.notes)


def test_dry_run_saves_nothing_but_says_what_would_happen(tmp_path: Path) -> None:
    k3 = StubK3(existing=["c1"])
    state = FileState(tmp_path / "s.json")
    report = run(StubHuke(trades(3)), k3, dry_run=True, state=state)
    assert statuses(report) == ["created", "existed", "created"]
    assert report.outcomes[0].reason == "dry run: would be created"
    assert k3.saves == []
    assert sorted(k3.store) == ["c1"]
    assert report.dry_run
    assert state.load() is None
    updating = run(StubHuke(trades(3)), k3, dry_run=True, on_existing="update")
    assert statuses(updating) == ["created", "updated", "created"]
    assert k3.saves == []


def test_batches_follow_batch_size() -> None:
    k3 = StubK3()
    report = run(StubHuke(trades(9)), k3, batch_size=4)
    assert [len(s["models"]) for s in k3.saves] == [4, 4, 1]
    assert report.counts["created"] == 9


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="on_existing"):
        run(StubHuke([]), StubK3(), on_existing="merge")
    with pytest.raises(ValueError, match="batch_size"):
        run(StubHuke([]), StubK3(), batch_size=0)
    with pytest.raises(ValueError, match="is after end"):
        run(StubHuke([]), StubK3(), start=10, end=5)


def test_update_sends_fcustid_and_need_update_fields() -> None:
    k3 = StubK3(existing=["c0"])
    report = run(StubHuke(trades(1)), k3, on_existing="update")
    assert statuses(report) == ["updated"]
    sent = k3.saves[0]
    assert sent["models"][0]["FCUSTID"] == 1001
    assert sent["need_update_fields"] == ["FName"]
    assert report.outcomes[0].customer_id == "1001"


def test_case_insensitive_match_of_existing_numbers() -> None:
    k3 = StubK3(existing=["ABC"])
    report = run(StubHuke([{"tid": "x", "buyerCid": "abc", "buyerNick": "n"}]), k3)
    assert statuses(report) == ["existed"]


def test_report_is_attrs_frozen() -> None:
    report = run(StubHuke(trades(1)), StubK3())
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        report.errors = ()  # type: ignore[misc]
