"""FileState: atomic JSON watermark."""

from __future__ import annotations

import asyncio
import errno
import json
import math
import os
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest

from huke_k3_bridge import FileState, ProgressEvent, State, StateError, StateLockedError, _state

from .conftest import Stage

T = TypeVar("T")

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


# -- the run lock ----------------------------------------------------------------------------------


def in_thread(call: Callable[[], T]) -> T:
    """``call()`` on another thread: a lock held by this thread is then someone else's."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result(timeout=10)


def test_a_held_lock_refuses_a_second_run_at_once_naming_the_state(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    release = FileState(path).acquire()
    note = json.loads((tmp_path / "s.json.lock").read_text())
    assert note["pid"] == os.getpid()
    assert note["host"] == socket.gethostname()
    assert datetime.fromisoformat(note["since"]) <= datetime.now(timezone.utc)
    started = time.monotonic()
    with pytest.raises(StateLockedError) as caught:
        in_thread(FileState(path).acquire)
    assert time.monotonic() - started < 1.0  # fails fast: no waiting by default
    message = str(caught.value)
    assert message.startswith(f"state file {path} is in use by another run (pid {os.getpid()} ")
    assert f"lock file {path}.lock" in message
    assert "huke-k3 sync --wait" in message
    assert "\n" not in message
    assert isinstance(caught.value, StateError)
    assert (caught.value.path, caught.value.pid, caught.value.waited) == (path, os.getpid(), 0.0)
    assert caught.value.host == socket.gethostname()
    release()


def test_release_then_acquire_again_and_the_lock_file_stays(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "s.json"
    state = FileState(path)
    for _ in range(3):  # sequential runs on one object
        release = state.acquire()
        release()
        release()  # harmless twice
    lock_file = tmp_path / "sub" / "s.json.lock"
    assert lock_file.read_text() == ""  # the holder's note goes with the lock...
    assert os.listdir(tmp_path / "sub") == ["s.json.lock"]  # ...the file stays: deleting races
    in_thread(FileState(path).acquire)()  # free for others too


def test_a_run_inside_a_run_on_one_state_fails_at_once_even_when_waiting(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    release = FileState(path).acquire()
    started = time.monotonic()
    with pytest.raises(StateLockedError, match="cannot run inside another sync on the same state"):
        FileState(path, wait=True).acquire()  # waiting for ourselves would never end
    assert time.monotonic() - started < 1.0
    release()


def test_wait_takes_the_lock_when_the_holder_releases_in_time(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    release = FileState(path).acquire()
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        waiting = pool.submit(FileState(path, wait=5).acquire)
        time.sleep(0.1)
        assert not waiting.done()
        release()
        again = waiting.result(timeout=5)
        elapsed = time.monotonic() - started
    assert 0.1 <= elapsed < 1.0  # followed within a poll, not at the end of the wait
    assert json.loads((tmp_path / "s.json.lock").read_text())["pid"] == os.getpid()
    again()


def test_wait_gives_up_after_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    release = FileState(path).acquire()
    started = time.monotonic()
    with pytest.raises(StateLockedError, match=r"is still in use after waiting 0\.2s") as caught:
        in_thread(FileState(path, wait=0.2).acquire)
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 1.0
    assert caught.value.waited >= 0.2
    release()


@pytest.mark.parametrize(
    ("wait", "error"),
    [(-1, ValueError), (math.nan, ValueError), ("5", TypeError), (None, TypeError)],
)
def test_wait_must_be_a_flag_or_seconds(wait: Any, error: type[Exception], tmp_path: Path) -> None:
    with pytest.raises(error, match="wait must be True, False or seconds"):
        FileState(tmp_path / "s.json", wait=wait)


def test_wait_forever_and_repr(tmp_path: Path) -> None:
    assert FileState(tmp_path / "s.json", wait=math.inf).wait is True
    assert repr(FileState("s.json", wait=2.5)).endswith(", wait=2.5)")
    assert "wait" not in repr(FileState("s.json"))


def test_a_lock_file_that_cannot_be_created_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StateError, match="cannot open the lock file") as caught:
        FileState(blocker / "s.json").acquire()
    assert str(blocker / "s.json") in str(caught.value)


class _Plain:
    """A state without a lock (a database row, say)."""

    overlap = timedelta(0)

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.watermark: datetime | None = None

    def load(self) -> datetime | None:
        self.calls.append("load")
        return self.watermark

    def save(self, watermark: datetime) -> None:
        self.calls.append("save")
        self.watermark = watermark


class _Locking(_Plain):
    """A state with its own lock: ``acquire`` returns the release function."""

    def acquire(self) -> Callable[[], None]:
        self.calls.append("acquire")
        return lambda: self.calls.append("release")


def test_hold_takes_the_lock_only_of_states_that_have_one() -> None:
    plain = _Plain()
    _state.hold(plain)()
    assert plain.calls == []
    locking = _Locking()
    release = _state.hold(locking)
    assert locking.calls == ["acquire"]
    release()
    assert locking.calls == ["acquire", "release"]

    class Broken(_Plain):
        def acquire(self) -> int:
            return 42

    with pytest.raises(TypeError, match=r"Broken.acquire\(\) must return a release function"):
        _state.hold(Broken())


ENGINES = ("sync", "async")


def _run(stage: Stage, engine: str, **options: Any) -> Any:
    if engine == "sync":
        return stage.sync(**options)
    return asyncio.run(stage.async_sync(**options))


@pytest.mark.parametrize("engine", ENGINES)
def test_the_watermark_is_read_and_stored_under_the_lock(stage: Stage, engine: str) -> None:
    stage.generate(5, buyers=3)
    state = _Locking()
    report = _run(stage, engine, state=state, start=None)
    assert report.ok
    assert state.calls == ["acquire", "load", "save", "release"]


@pytest.mark.parametrize("engine", ENGINES)
def test_the_lock_is_released_when_the_run_raises(
    stage: Stage, engine: str, tmp_path: Path
) -> None:
    stage.generate(5, buyers=3)
    path = tmp_path / "s.json"

    class Interrupted(BaseException):
        """Ctrl-C, say: no ``except Exception`` stops it."""

    def interrupt(event: ProgressEvent) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):  # raised once the run has started
        _run(stage, engine, state=FileState(path), progress=interrupt)
    in_thread(FileState(path).acquire)()
    with pytest.raises(ValueError, match="is after end"):  # raised before the run starts
        _run(stage, engine, state=FileState(path), start=stage.end, end=stage.start)
    path.write_text("garbage")
    with pytest.raises(StateError, match="is not a watermark file"):  # raised by the load
        _run(stage, engine, state=FileState(path), start=None)
    in_thread(FileState(path).acquire)()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_sync_inside_a_sync_on_one_state_is_refused(
    stage: Stage, engine: str, tmp_path: Path
) -> None:
    path = tmp_path / "s.json"
    release = FileState(path).acquire()
    with pytest.raises(StateLockedError):
        _run(stage, engine, state=FileState(path, wait=True))
    release()
    assert not stage.fake_k3.received
    assert not stage.fake_huke.received


# -- the Windows lock, on a stand-in for msvcrt -----------------------------------------------------


class _FakeMsvcrt:
    """``msvcrt.locking`` over byte ranges per file: a range locked through one descriptor is
    refused (EACCES, as the C runtime says) through any other."""

    LK_UNLCK = 0
    LK_NBLCK = 2

    def __init__(self) -> None:
        self.locks: dict[tuple[int, int], int] = {}
        self.calls: list[tuple[int, int, int]] = []

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        offset = os.lseek(fd, 0, os.SEEK_CUR)
        self.calls.append((mode, offset, nbytes))
        key = (os.fstat(fd).st_ino, offset)
        if mode == self.LK_NBLCK:
            if key in self.locks:
                raise OSError(errno.EACCES, "Permission denied")
            self.locks[key] = fd
        else:
            assert self.locks.pop(key) == fd


@pytest.mark.skipif(sys.platform == "win32", reason="checks that flock was not taken")
def test_windows_locks_a_byte_past_the_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    fake = _FakeMsvcrt()
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    monkeypatch.setattr(_state, "_WINDOWS", True)
    path = tmp_path / "s.json"
    release = FileState(path).acquire()
    with pytest.raises(StateLockedError, match=f"in use by another run \\(pid {os.getpid()} "):
        in_thread(FileState(path).acquire)  # the note is readable: the lock is past it
    with open(tmp_path / "s.json.lock", "rb") as other:  # no flock on this path
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    release()
    offset = _state._WINDOWS_LOCK_OFFSET
    assert fake.calls == [(2, offset, 1), (2, offset, 1), (0, offset, 1)]
    assert fake.locks == {}
    assert (tmp_path / "s.json.lock").stat().st_size < offset  # locking past EOF grows nothing
    in_thread(FileState(path).acquire)()


# -- issue 9.8: files as they are found on disk ----------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        '{"watermark_ms": 1}'.encode("utf-16"),  # saved by an editor as UTF-16
        b"\xff\xfe\x00garbage",
        b'{"watermark": "\xe6\x97"}',  # cut in the middle of a character
    ],
)
def test_a_state_file_that_is_not_utf8_is_a_state_error_naming_it(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(content)
    with pytest.raises(StateError) as info:
        FileState(path).load()
    message = str(info.value)
    assert str(path) in message
    assert "not UTF-8" in message
    assert "start=" in message
    assert not isinstance(info.value.__cause__, UnicodeDecodeError)


def test_a_state_file_with_a_utf8_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps({"version": 1, "watermark_ms": 1_700_000_000_000}).encode()
    )
    loaded = FileState(path).load()
    assert loaded is not None
    assert int(loaded.timestamp() * 1000) == 1_700_000_000_000


@pytest.mark.parametrize("content", ["[]", "null", '{"watermark_ms": "x"}', "{", ""])
def test_a_corrupt_state_file_is_a_state_error_with_the_fix(tmp_path: Path, content: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(StateError, match="Delete it") as info:
        FileState(path).load()
    assert str(path) in str(info.value)


def test_temporary_files_of_an_interrupted_write_are_cleaned_up(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    state = FileState(path)
    state.save(datetime(2026, 1, 1, tzinfo=timezone.utc))
    leftovers = [tmp_path / ".s.json.abc123.tmp", tmp_path / ".s.json.zz9.tmp"]
    for leftover in leftovers:
        leftover.write_text("{half a write", encoding="utf-8")
    unrelated = tmp_path / ".other.json.abc.tmp"
    unrelated.write_text("keep", encoding="utf-8")
    release = state.acquire()
    try:
        assert not any(leftover.exists() for leftover in leftovers)
        assert unrelated.exists()
        loaded = state.load()
        assert loaded == datetime(2026, 1, 1, tzinfo=timezone.utc)
    finally:
        release()
