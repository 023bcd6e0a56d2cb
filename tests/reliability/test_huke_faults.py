"""Huke misbehaving under a real sync over loopback sockets: resets mid-page, 5xx bursts, 429
with ``Retry-After``, truncated JSON, a hang, a rate-limit envelope, data shifting while paging
(a trade inserted into or removed from the pages already read, or a listing that never settles).

Reads are safe to repeat, so every one of these must end with every trade accounted for exactly
once, the same customers in K/3 Cloud as without the fault, and a re-run that changes nothing.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from huke_client import to_epoch_ms
from huke_client.testing import Fault, ServedPage, envelope_error, fake_trade
from huke_k3_bridge import FileState, SyncReport

from .conftest import (
    HANG_TIMEOUT,
    PAGE_SIZE,
    Engine,
    Stage,
    assert_accounted,
    assert_converges,
    assert_store_complete,
    chunks,
    expected_counts,
)

SEARCH = "trade/searchTrades"


def _clean_run(stage: Stage, engine: Engine, **options: Any) -> None:
    """Run once, expecting the fault-free outcome, then check that a re-run converges."""
    report = stage.run(engine, **options)
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades)
    assert report.ok, str(report)
    assert_store_complete(stage)
    numbers = len(stage.winners())
    assert stage.k3.call_count("BatchSave") == chunks(numbers)
    assert_converges(stage, engine, existed=numbers, **options)


def test_baseline_without_faults(stage: Stage, engine: Engine) -> None:
    stage.generate()
    _clean_run(stage, engine, default_pool=True)
    assert stage.huke.faults.struck == []


def test_connection_reset_mid_pagination(stage: Stage, engine: Engine) -> None:
    stage.generate()
    stage.huke.inject(Fault.reset(), after=3, times=2, path=SEARCH)
    _clean_run(stage, engine)
    assert stage.huke.faults.struck == [("reset", f"/openapi/{SEARCH}")] * 2


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_burst(stage: Stage, engine: Engine, status: int) -> None:
    stage.generate()
    # Three in a row on one request: the client's last retry (of 3) gets through.
    stage.huke.inject(Fault.http_status(status), after=2, times=3, path=SEARCH)
    _clean_run(stage, engine)
    assert stage.huke.faults.struck == [("status", f"/openapi/{SEARCH}")] * 3


def test_429_with_retry_after_is_honoured(stage: Stage) -> None:
    stage.generate()
    stage.huke.inject(Fault.http_status(429, retry_after="0.05"), after=1, path=SEARCH)
    _clean_run(stage, "sync")
    # The sync engine fetches one page at a time: request #2 got the 429, #3 is its retry.
    [_, (refused, _), (retried, _)] = stage.huke.arrivals[:3]
    assert retried - refused >= 0.05
    assert stage.huke.faults.struck == [("status", f"/openapi/{SEARCH}")]


def test_429_with_retry_after_async(stage: Stage) -> None:
    stage.generate()
    stage.huke.inject(Fault.http_status(429, retry_after="0.05"), after=1, times=2, path=SEARCH)
    started = time.monotonic()
    _clean_run(stage, "async")
    assert time.monotonic() - started >= 0.05
    assert stage.huke.faults.struck == [("status", f"/openapi/{SEARCH}")] * 2


def test_truncated_json_is_reread(stage: Stage, engine: Engine) -> None:
    stage.generate()
    stage.huke.inject(Fault.malformed_json(), after=1, times=2, path=SEARCH)
    _clean_run(stage, engine)
    assert stage.huke.faults.struck == [("body", f"/openapi/{SEARCH}")] * 2


def test_a_hang_ends_at_the_client_timeout(stage: Stage, engine: Engine) -> None:
    stage.generate()
    stage.huke.inject(Fault.timeout(), after=2, path=SEARCH)
    started = time.monotonic()
    _clean_run(stage, engine, timeout=HANG_TIMEOUT)
    assert time.monotonic() - started >= HANG_TIMEOUT
    assert stage.huke.faults.struck == [("timeout", f"/openapi/{SEARCH}")]


def test_rate_limit_envelope_is_retried_when_configured(stage: Stage, engine: Engine) -> None:
    stage.generate()
    stage.huke.inject(envelope_error(40100, "调用过于频繁"), after=1, times=2, path=SEARCH)
    _clean_run(stage, engine, huke_options={"retry_codes": [40100]})
    assert stage.huke.faults.struck == [("body", f"/openapi/{SEARCH}")] * 2


def test_huke_down_after_retries_is_a_run_error_and_a_rerun_completes(
    stage: Stage, engine: Engine
) -> None:
    stage.generate()
    stage.huke.inject(Fault.http_status(503), after=3, times=50, path=SEARCH)
    report = stage.run(engine)
    assert not report.ok
    assert len(report.errors) == 1
    assert "fetching trades" in report.errors[0]
    assert "HukeHTTPError" in report.errors[0]
    assert report.counts["failed"] == 0  # what was fetched is accounted for and saved
    fetched = {o.trade_id for o in report.outcomes}
    assert len(fetched) == report.total < len(stage.trades)
    stored = stage.customers()
    assert set(stored) == {o.number for o in report.by_status("created")}
    stage.huke.faults.clear()
    again = stage.run(engine)
    assert_accounted(again, stage)
    assert again.ok
    assert again.counts["existed"] == len(stored)
    assert again.counts["created"] == len(stage.winners()) - len(stored)
    assert_store_complete(stage)


def test_trade_inserted_while_paging_is_counted_once_and_a_rerun_gets_the_missed_one(
    stage: Stage,
) -> None:
    """Offset paging over data that changes: a trade committed late into the part already
    paged past shifts the next page, so one trade arrives twice and the new one not at all. A
    growing total is not restarted for (nothing already there is lost); the next run, whose
    window overlaps, gets the late trade."""
    stage.generate(60, buyers=30, missing_cid_every=None)
    late = fake_trade(
        create_time=stage.start + 500, tid="LATE1", buyer_nick="迟到的买家", buyer_cid="wmLATE"
    )
    searches = []

    def insert_late_trade(operation: str, request: httpx.Request) -> None:
        searches.append(operation)
        if len(searches) == 3:
            stage.add([late])

    stage.on_huke(insert_late_trade)
    report = stage.run("sync")
    stream = [t for t in stage.stream() if t["tid"] != "LATE1"]
    # Page 3 starts one trade early: the last trade of page 2 is fetched again.
    repeated = stream[19]["tid"]
    ids = [o.trade_id for o in report.outcomes]
    assert ids == [t["tid"] for t in stream[:20]] + [repeated] + [t["tid"] for t in stream[20:]]
    twice = report.outcomes[20]
    first = report.outcomes[19]
    assert twice.status == "merged"
    # Pointed at its first copy, or past it to where that copy's buyer was merged.
    assert twice.merged_into == (19 if first.status != "merged" else first.merged_into)
    assert twice.reason == f"trade {repeated} was fetched twice; counted once (as #19)"
    assert report.ok
    assert "wmLATE" not in stage.customers()
    rerun = stage.run("sync")
    assert_accounted(rerun, stage)
    assert rerun.counts["created"] == 1
    assert rerun.by_status("created")[0].trade_id == "LATE1"
    assert_store_complete(stage)


def _first_appearances(report: SyncReport) -> list[str | None]:
    return list(dict.fromkeys(o.trade_id for o in report.outcomes))


def test_trade_removed_while_paging_loses_no_other_trade(
    stage: Stage, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A trade removed from a page already read shifts the next page left: without the restart
    the trade that was first on that next page would never be fetched, and the watermark would
    pass it. The async engine reads sub-windows side by side: the removal hits whichever first
    page of a range holding two pages or more is made first."""
    stage.generate(60, buyers=30, missing_cid_every=None)
    removed: list[ServedPage] = []

    def remove_first_trade_once(served: ServedPage) -> None:
        if not removed and served.page == 1 and served.total > PAGE_SIZE:
            removed.append(served)
            stage.huke.remove_trades(served.tids[0])

    stage.huke.on_page(remove_first_trade_once)
    with caplog.at_level("WARNING", logger="huke_client"):
        report = stage.run(engine)
    [served] = removed
    in_range = [
        t["tid"] for t in stage.stream() if served.start_ms <= t["createTime"] <= served.end_ms
    ]
    victim = in_range[PAGE_SIZE]  # first on page 2 before the removal, last on page 1 after
    assert served.tids == in_range[:PAGE_SIZE]
    [warning] = [m for m in caplog.messages if "the total dropped" in m]
    assert f"the total dropped from {len(in_range)} to {len(in_range) - 1} by page 2" in warning
    fetched = _first_appearances(report)
    assert victim in fetched
    # Every trade is fetched (the removed one before it went), first appearances in time order.
    assert fetched == [t["tid"] for t in stage.stream()]
    report.check(len(report.outcomes))
    assert report.ok, str(report)
    assert report.counts["failed"] == 0
    assert_store_complete(stage)


def test_a_listing_that_keeps_changing_is_a_run_level_fetch_error(
    stage: Stage, engine: Engine
) -> None:
    """The client gives up after max_restarts readings of a window with HukeConsistencyError; the
    bridge reports it like any Huke failure and saves what came before it."""
    stage.generate()

    def remove_latest_in_range(served: ServedPage) -> None:
        if served.page == 1 and served.total > PAGE_SIZE:
            held = [
                t for t in stage.huke.trades if served.start_ms <= t["createTime"] <= served.end_ms
            ]
            latest = max(held, key=lambda t: t["createTime"])
            stage.huke.remove_trades(latest["tid"])

    stage.huke.on_page(remove_latest_in_range)
    report = stage.run(engine)
    assert not report.ok
    assert len(report.errors) == 1
    assert "fetching trades" in report.errors[0]
    assert "HukeConsistencyError" in report.errors[0]
    assert "the listing kept changing while it was read" in report.errors[0]
    assert "max_restarts=3" in report.errors[0]
    assert report.counts["failed"] == 0
    report.check(len(report.outcomes))


def test_watermark_stops_before_a_failed_window_and_the_next_run_resumes(
    stage: Stage, engine: Engine, tmp_path: Path
) -> None:
    stage.generate()
    state = FileState(tmp_path / "watermark.json")
    window = timedelta(hours=2)
    # Some windows in, every request fails until one has failed all its attempts (the async
    # engine fetches four sub-windows side by side: 16 faults are more than 4 x 3 retries).
    stage.huke.inject(Fault.http_status(503), after=6, times=16, path=SEARCH)
    first = stage.run(engine, start=None, state=state, window=window)
    stage.huke.faults.clear()
    assert len(first.errors) == 1
    assert "answered HTTP 503" in first.errors[0]
    assert first.counts["failed"] == 0
    assert first.watermark is not None
    mark = to_epoch_ms(first.watermark)
    assert stage.start < mark < stage.end
    if engine == "sync":  # the end of a whole window
        assert (mark - stage.start + 1) % (window // timedelta(milliseconds=1)) == 0
    # Everything up to the watermark was fetched, and what was fetched was saved.
    fetched = {o.trade_id for o in first.outcomes}
    assert {t["tid"] for t in stage.trades if t["createTime"] <= mark} <= fetched
    assert set(stage.customers()) == {o.number for o in first.by_status("created")}
    # The next run starts at the watermark minus the overlap and completes the range.
    second = stage.run(engine, start=None, state=state, window=window)
    assert second.ok, str(second)
    assert second.resumed_from is not None
    assert to_epoch_ms(second.resumed_from) == mark - state.overlap // timedelta(milliseconds=1)
    assert {o.trade_id for o in second.outcomes} == {
        t["tid"] for t in stage.trades if t["createTime"] >= mark - 300_000
    }
    assert second.counts["failed"] == 0
    assert second.watermark is not None
    assert to_epoch_ms(second.watermark) == stage.end
    assert_store_complete(stage)
    third = stage.run(engine, start=None, state=state, window=window)
    assert third.ok
    assert third.total == sum(1 for t in stage.trades if t["createTime"] >= stage.end - 300_000)
    assert third.counts["created"] == 0
    assert_store_complete(stage)
