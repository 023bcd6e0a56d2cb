"""Issue 8.2: the watermark never runs ahead of what was read, for both engines."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from huke_client import to_epoch_ms
from huke_client.testing import fake_trade
from huke_k3_bridge import FileState, StateError, SyncReport

from .conftest import HOUR_MS, Stage

ENGINES = ["sync", "async"]


async def _run(stage: Stage, engine: str, **options: Any) -> SyncReport:
    if engine == "sync":
        return stage.sync(**options)
    return await stage.async_sync(**options)


def _store(path: Path, ms: int) -> None:
    path.write_text(json.dumps({"version": 1, "watermark_ms": ms}), encoding="utf-8")


@pytest.mark.parametrize("engine", ENGINES)
async def test_an_end_in_the_future_stores_no_watermark_beyond_the_fetch(
    stage: Stage, engine: str, tmp_path: Path
) -> None:
    state = FileState(tmp_path / "state.json", overlap=timedelta(0))
    now = stage.now_ms
    stage.fake_huke.add_trades([fake_trade(create_time=now - HOUR_MS, tid="A", buyer_cid="wmA")])
    first = await _run(
        stage,
        engine,
        start=now - 2 * HOUR_MS,
        end=now + 24 * HOUR_MS,
        state=state,
        clock=lambda: now / 1000,
    )
    assert first.ok
    # "now" when the fetch started, not the end asked for (clock() is float seconds: read back
    # as ms it may lose the last one).
    assert first.watermark == state.load()
    assert first.watermark is not None
    assert now - 1 <= to_epoch_ms(first.watermark) <= now
    # A trade stamped after the fetch started but before the end asked for: the next run sees it.
    stage.fake_huke.add_trades([fake_trade(create_time=now + 1000, tid="B", buyer_cid="wmB")])
    second = await _run(
        stage, engine, start=None, end=None, state=state, clock=lambda: (now + HOUR_MS) / 1000
    )
    assert [(o.trade_id, o.status) for o in second.outcomes] == [("B", "created")]
    assert set(stage.customers()) == {"wmA", "wmB"}


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_watermark_far_ahead_of_the_clock_is_refused(
    stage: Stage, engine: str, tmp_path: Path
) -> None:
    path = tmp_path / "state.json"
    _store(path, stage.now_ms + 24 * HOUR_MS)
    stage.fake_huke.add_trades([fake_trade(create_time=stage.now_ms - HOUR_MS, tid="A")])
    with pytest.raises(StateError, match="later than now") as info:
        await _run(stage, engine, start=None, end=None, state=FileState(path))
    assert "start=" in str(info.value)
    assert not stage.fake_k3.received
    assert not stage.fake_huke.received


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("ms", [-1, 0, 86_400_000])
async def test_a_negative_or_absurd_watermark_is_refused(
    stage: Stage, engine: str, tmp_path: Path, ms: int
) -> None:
    path = tmp_path / "state.json"
    _store(path, ms)
    with pytest.raises(StateError, match="before 2000"):
        await _run(stage, engine, start=None, end=None, state=FileState(path))


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_watermark_slightly_ahead_is_clamped_to_now_with_a_note(
    stage: Stage, engine: str, tmp_path: Path
) -> None:
    path = tmp_path / "state.json"
    now = stage.now_ms
    _store(path, now + 60_000)  # a clock step of one minute
    state = FileState(path, overlap=timedelta(minutes=5))
    stage.fake_huke.add_trades([fake_trade(create_time=now - 60_000, tid="A", buyer_cid="wmA")])
    report = await _run(stage, engine, start=None, end=None, state=state, clock=lambda: now / 1000)
    assert any("ahead of the clock" in note for note in report.notes)
    assert report.resumed_from is not None
    assert int(report.resumed_from.timestamp() * 1000) == now - 300_000
    assert [(o.trade_id, o.status) for o in report.outcomes] == [("A", "created")]
    # Replaced though earlier than what was stored: the run's end, "now" (within clock() rounding).
    assert report.watermark == state.load()
    assert report.watermark is not None
    assert now - 1 <= to_epoch_ms(report.watermark) <= now


def test_an_explicit_end_before_the_watermark_says_there_is_nothing_to_fetch(
    stage: Stage, tmp_path: Path
) -> None:
    path = tmp_path / "state.json"
    _store(path, stage.now_ms)
    moment = datetime.fromtimestamp((stage.now_ms - 3 * HOUR_MS) / 1000, tz=timezone.utc)
    report = stage.sync(start=None, end=moment, state=FileState(path))
    assert report.total == 0
    assert any("nothing to fetch" in note for note in report.notes)
