"""FileState: atomic JSON watermark."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from huke_k3_bridge import FileState, State, StateError

MOMENT = datetime(2024, 11, 28, 8, 30, 15, 123000, tzinfo=timezone.utc)


def test_missing_file_means_no_watermark(tmp_path: Path) -> None:
    state = FileState(tmp_path / "none.json")
    assert state.load() is None
    assert state.overlap == timedelta(minutes=5)
    assert isinstance(state, State)


def test_save_then_load(tmp_path: Path) -> None:
    state = FileState(tmp_path / "sub" / "state.json", overlap=timedelta(minutes=1))
    state.save(MOMENT)
    assert state.load() == MOMENT
    data = json.loads((tmp_path / "sub" / "state.json").read_text())
    assert data == {
        "version": 1,
        "watermark_ms": 1732782615123,
        "watermark": "2024-11-28T08:30:15.123000+00:00",
    }
    assert os.listdir(tmp_path / "sub") == ["state.json"]  # no temp file left behind


def test_save_replaces_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    state = FileState(path)
    state.save(MOMENT)
    calls = []
    real_replace = os.replace

    def spy(src: str, dst: object) -> None:
        calls.append((Path(src).parent, Path(str(dst))))
        # at the moment of the swap the old content is still intact and the new one complete
        assert json.loads(path.read_text())["watermark_ms"] == 1732782615123
        assert json.loads(Path(src).read_text())["watermark_ms"] == 1732782675123
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", spy)
    state.save(MOMENT + timedelta(minutes=1))
    assert calls == [(tmp_path, path)]
    assert state.load() == MOMENT + timedelta(minutes=1)


def test_crash_before_replace_keeps_old_watermark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    state = FileState(path)
    state.save(MOMENT)

    def boom(src: str, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(StateError, match="cannot write state file"):
        state.save(MOMENT + timedelta(hours=1))
    monkeypatch.undo()
    assert state.load() == MOMENT
    assert os.listdir(tmp_path) == ["state.json"]


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(StateError, match="is not a watermark file") as caught:
        FileState(path).load()
    assert str(path) in str(caught.value)
    path.write_text('{"watermark_ms": "soon"}')
    with pytest.raises(StateError, match="not an integer"):
        FileState(path).load()


def test_naive_datetime_is_local_time(tmp_path: Path) -> None:
    state = FileState(tmp_path / "s.json")
    naive = datetime(2024, 11, 28, 8, 0)
    state.save(naive)
    loaded = state.load()
    assert loaded is not None
    assert loaded == naive.astimezone()


def test_negative_overlap_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="overlap"):
        FileState(tmp_path / "s.json", overlap=timedelta(seconds=-1))
