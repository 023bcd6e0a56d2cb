"""Two runs on one state, in two processes: the second is refused before it sends anything (or
waits with ``--wait``), no customer is created twice, and a killed holder leaves no lock behind.

The holders are real processes: a small script holding ``FileState.acquire()`` until told to
stop, or ``huke-k3 sync`` itself, paused mid-run by holding its first Huke request at the
simulator (on loopback) for as long as the test needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from huke_k3_bridge import FileState, StateLockedError
from k3cloud_client.testing import TEST_ACCT_ID, TEST_APP_ID, TEST_APP_SECRET, TEST_USER_NAME

from .conftest import HUKE_KEY, HUKE_SECRET, Engine, Stage, assert_store_complete

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

#: Bound on any wait for a child process or a held request (seconds).
PATIENCE = 15.0
HOLDER = """
import sys
from huke_k3_bridge import FileState

release = FileState(sys.argv[1]).acquire()
print("held", flush=True)
sys.stdin.read()  # until the test closes stdin (or kills this process)
release()
"""


@contextmanager
def held_by_child(state: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process holding ``state``'s lock until the block ends (or it is killed)."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "held\n", child.stderr
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=PATIENCE)


def test_a_sigkilled_holder_leaves_no_lock(tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    with held_by_child(state) as child:
        with pytest.raises(StateLockedError, match=f"in use by another run \\(pid {child.pid} "):
            FileState(state).acquire()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=PATIENCE)
        assert child.returncode == -signal.SIGKILL
        # The kernel released its lock with its files; its note is still there, and overwritten.
        assert json.loads((tmp_path / "s.json.lock").read_text())["pid"] == child.pid
        release = FileState(state).acquire()
        assert json.loads((tmp_path / "s.json.lock").read_text())["pid"] == os.getpid()
        release()


@pytest.mark.parametrize("engine", ["sync", "async"])
def test_a_sync_on_a_state_held_elsewhere_fails_before_any_request(
    tmp_path: Path, engine: Engine
) -> None:
    stage = Stage(transport="inprocess")
    stage.generate(20, buyers=5)
    state = tmp_path / "s.json"
    with held_by_child(state) as child, pytest.raises(StateLockedError) as caught:
        stage.run(engine, state=FileState(state), start=None)
    assert caught.value.pid == child.pid
    assert str(state) in str(caught.value)
    assert (stage.huke.arrivals, stage.k3.arrivals) == ([], [])
    assert not state.exists()


class FirstPageGate:
    """Holds the first ``searchTrades`` request at the simulator until ``open()``: the sync that
    sent it is paused mid-run, holding its state's lock."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self._opened = threading.Event()
        self._first = True
        self._lock = threading.Lock()

    def __call__(self, operation: str, request: httpx.Request) -> None:
        with self._lock:
            mine, self._first = self._first, False
        if mine:
            self.reached.set()
            self._opened.wait(timeout=PATIENCE)

    def open(self) -> None:
        self._opened.set()


def _cli(stage: Stage, state: Path, *extra: str) -> subprocess.Popen[str]:
    """``huke-k3 sync --state STATE`` over ``stage``'s window, configured from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUKE_", "K3CLOUD_", "PYTEST"))}
    env.update(
        HUKE_APP_KEY=HUKE_KEY,
        HUKE_APP_SECRET=HUKE_SECRET,
        HUKE_BASE_URL=stage.huke_url,
        K3CLOUD_SERVER_URL=stage.k3_url,
        K3CLOUD_ACCT_ID=TEST_ACCT_ID,
        K3CLOUD_USER_NAME=TEST_USER_NAME,
        K3CLOUD_APP_ID=TEST_APP_ID,
        K3CLOUD_APP_SECRET=TEST_APP_SECRET,
    )
    command = [sys.executable, "-m", "huke_k3_bridge", "sync", "--state", str(state), "--json"]
    window = ["--start", _iso(stage.start), "--end", _iso(stage.end)]
    return subprocess.Popen(
        [*command, *window, *extra],
        env=env,
        cwd=state.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


def _wait_until_trying(child: subprocess.Popen[str], lock_file: Path) -> None:
    """Wait until ``child`` has the lock file open: it tries the lock right after opening it."""
    fds = Path(f"/proc/{child.pid}/fd")
    if not fds.is_dir():  # no /proc (macOS): a process start takes well under this
        time.sleep(1.0)
        return
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline and child.poll() is None:
        with contextlib.suppress(OSError):  # fds come and go while we look
            if any(os.readlink(fd) == str(lock_file) for fd in fds.iterdir()):
                return
        time.sleep(0.01)
    pytest.fail(f"the second sync never opened {lock_file}")


def test_two_cli_syncs_on_one_state_one_exits_2_and_nothing_is_created_twice(
    stage: Stage, tmp_path: Path
) -> None:
    stage.generate(40, buyers=15, missing_cid_every=None)
    state = tmp_path / "s.json"
    gate = FirstPageGate()
    stage.on_huke(gate)
    first = _cli(stage, state)
    try:
        assert gate.reached.wait(timeout=PATIENCE), first.communicate(timeout=PATIENCE)
        second = _cli(stage, state)
        out, err = second.communicate(timeout=PATIENCE)
        assert second.returncode == 2
        assert out == ""
        assert err.startswith(
            f"huke-k3: state file {state} is in use by another run (pid {first.pid} "
        )
        assert err.count("\n") == 1  # one line, no traceback
        assert "--wait" in err
        gate.open()
        out, err = first.communicate(timeout=PATIENCE)
    finally:
        gate.open()
        if first.poll() is None:
            first.kill()
            first.communicate(timeout=PATIENCE)
    assert first.returncode == 0, err
    report = json.loads(out)
    assert report["counts"]["created"] == len(stage.winners())
    assert [op for _, op in stage.huke.arrivals] == ["searchTrades"]  # the refused one sent none
    assert_store_complete(stage)  # every buyer once


def test_cli_wait_queues_behind_the_running_sync(stage: Stage, tmp_path: Path) -> None:
    stage.generate(40, buyers=15, missing_cid_every=None)
    state = tmp_path / "s.json"
    gate = FirstPageGate()
    stage.on_huke(gate)
    first = _cli(stage, state)
    second: subprocess.Popen[str] | None = None
    try:
        assert gate.reached.wait(timeout=PATIENCE), first.communicate(timeout=PATIENCE)
        second = _cli(stage, state, "--wait", "10")
        _wait_until_trying(second, tmp_path / "s.json.lock")
        time.sleep(0.05)  # a few tries
        assert second.poll() is None  # waiting...
        assert len(stage.huke.arrivals) == 1  # ...before sending anything
        gate.open()
        first_out, first_err = first.communicate(timeout=PATIENCE)
        second_out, second_err = second.communicate(timeout=PATIENCE)
    finally:
        gate.open()
        for child in (first, second):
            if child is not None and child.poll() is None:
                child.kill()
                child.communicate(timeout=PATIENCE)
    assert (first.returncode, second.returncode) == (0, 0), (first_err, second_err)
    counts = [json.loads(out)["counts"] for out in (first_out, second_out)]
    buyers = len(stage.winners())
    assert [(c["created"], c["existed"]) for c in counts] == [(buyers, 0), (0, buyers)]
    assert_store_complete(stage)
