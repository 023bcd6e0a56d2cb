"""A sync process killed with SIGKILL at a random point, then run again: nothing lost, nothing
created twice.

The simulators run here, on loopback sockets, and outlive the sync, which runs in a child process
(``sync_child.py``) configured from the environment like a deployment, with a ``FileState``
watermark; the servers add a little latency so that its calls interleave as on a network.

To kill it mid-sync without racing it, a gate holds one request (a random one among those every
run makes: any, or a random page, lookup or save) while the child waits for the answer; the child
is killed, then the held request is either carried out anyway (the server had it: a save
committed that nobody hears of) or dropped. Then the sync runs again to completion.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from huke_client import to_epoch_ms
from k3cloud_client.testing import TEST_ACCT_ID, TEST_APP_ID, TEST_APP_SECRET, TEST_USER_NAME

from .conftest import HUKE_KEY, HUKE_SECRET, K3_PASSWORD, Auth, Engine, Stage, assert_store_complete

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

CHILD = Path(__file__).with_name("sync_child.py")
TRADES = 120
BUYERS = 40
PAGE_SIZE = 10
BATCH_SIZE = 4
#: Added by the servers to every request.
LATENCY = 0.002
#: Bound on any wait for the child or the gate (seconds).
PATIENCE = 20.0


class Gate:
    """Holds the ``n``-th request (counting from 1) that reaches either simulator, or the
    ``n``-th of ``operation`` when one is given, until ``open()``."""

    def __init__(self, n: int, operation: str | None = None) -> None:
        self.n = n
        self.operation = operation
        self.seen = 0
        self.held: str | None = None
        #: The customer numbers of the held request, when it is a save.
        self.numbers: list[str] = []
        self.drop = False
        self.reached = threading.Event()
        self._opened = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, operation: str, request: httpx.Request) -> None:
        if self.operation is not None and operation != self.operation:
            return
        with self._lock:
            self.seen += 1
            mine = self.seen == self.n
        if not mine:
            return
        self.held = operation
        if operation == "BatchSave":
            models = json.loads(request.content)["data"]["Model"]
            self.numbers = [str(m["FNumber"]) for m in models]
        self.reached.set()
        self._opened.wait(timeout=PATIENCE)
        if self.drop:  # lost on the way: the server never processes it
            raise httpx.ReadError("dropped after the client was killed", request=request)

    def open(self, *, drop: bool) -> None:
        self.drop = drop
        self._opened.set()


def _environment(stage: Stage, auth: Auth) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUKE_", "K3CLOUD_", "PYTEST"))}
    env.update(
        HUKE_APP_KEY=HUKE_KEY,
        HUKE_APP_SECRET=HUKE_SECRET,
        HUKE_BASE_URL=stage.huke_url,
        K3CLOUD_SERVER_URL=stage.k3_url,
        K3CLOUD_ACCT_ID=TEST_ACCT_ID,
        K3CLOUD_USER_NAME=TEST_USER_NAME,
    )
    if auth == "signed":
        env.update(K3CLOUD_APP_ID=TEST_APP_ID, K3CLOUD_APP_SECRET=TEST_APP_SECRET)
    else:
        env.update(K3CLOUD_PASSWORD=K3_PASSWORD)
    return env


def _start(engine: Engine, state: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        str(CHILD),
        "--engine",
        engine,
        "--state",
        str(state),
        "--page-size",
        str(PAGE_SIZE),
        "--batch-size",
        str(BATCH_SIZE),
    ]
    return subprocess.Popen(
        command,
        env=env,
        cwd=state.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(child: subprocess.Popen[str]) -> tuple[str, str]:
    """Kill ``child`` if it still runs; its output."""
    if child.poll() is None:
        child.kill()
    out, err = child.communicate(timeout=PATIENCE)
    return out, err


def _kill_mid_sync(
    stage: Stage, engine: Engine, state: Path, env: dict[str, str], gate: Gate, *, drop: bool
) -> None:
    """Start a sync, SIGKILL it while ``gate`` holds one of its requests, then let the held
    request be carried out (or dropped) and wait until the simulators are idle."""
    stage.huke.hooks[:] = [gate]
    stage.k3.hooks[:] = [gate]
    child = _start(engine, state, env)
    try:
        if not gate.reached.wait(timeout=PATIENCE):
            pytest.fail(f"the child never made request {gate.n}: {_stop(child)}")
        assert child.poll() is None  # it waits for the held request's answer: mid-sync
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=PATIENCE)
        assert child.returncode == -signal.SIGKILL
    finally:
        gate.open(drop=drop)
        _stop(child)
        stage.huke.hooks.clear()
        stage.k3.hooks.clear()
    stage.wait_idle()


CASES = [
    # engine, auth, seed, and per kill the kind of request it strikes during ("any" request,
    # or one of a kind); which one of them is random (seeded), as is dropping it or not.
    pytest.param("sync", "signed", 1, ("searchTrades",), id="sync-fetching"),
    pytest.param("async", "signed", 2, ("searchTrades",), id="async-fetching"),
    pytest.param("sync", "password", 3, ("ExecuteBillQuery",), id="sync-looking-up"),
    pytest.param("sync", "signed", 4, ("BatchSave",), id="sync-saving"),
    pytest.param("async", "password", 5, ("BatchSave",), id="async-saving"),
    pytest.param("sync", "password", 6, ("any", "BatchSave"), id="sync-killed-twice"),
    pytest.param("async", "signed", 7, ("any", "BatchSave"), id="async-killed-twice"),
]


def _gate(stage: Stage, kind: str, rng: random.Random) -> Gate:
    """A gate on a random request of ``kind`` among those every run over the data makes."""
    creates = len(set(stage.winners()) - set(stage.customers()))
    pages = math.ceil(TRADES / PAGE_SIZE)
    saves = math.ceil(creates / BATCH_SIZE)
    if kind == "any":
        return Gate(rng.randint(1, pages + 1 + saves))
    count = {"searchTrades": pages, "ExecuteBillQuery": 1, "BatchSave": saves}[kind]
    return Gate(rng.randint(1, count), operation=kind)


@pytest.mark.parametrize(("engine", "auth", "seed", "kills"), CASES)
def test_killed_sync_resumes_without_loss_or_duplicates(
    tmp_path: Path, engine: Engine, auth: Auth, seed: int, kills: tuple[str, ...]
) -> None:
    rng = random.Random(seed)
    stage = Stage(latency=LATENCY)
    try:
        stage.generate(TRADES, buyers=BUYERS, seed=seed, missing_cid_every=30)
        numbers = len(stage.winners())
        state = tmp_path / "watermark.json"
        env = _environment(stage, auth)
        for kind in kills:
            gate = _gate(stage, kind, rng)
            drop = rng.random() < 0.5
            _kill_mid_sync(stage, engine, state, env, gate, drop=drop)
            if kind != "any":
                assert gate.held == kind
            stored = stage.customers()  # no number twice, even now
            if gate.held == "BatchSave":
                # Carried out after the client died, or never: the server alone decides.
                held = set(gate.numbers)
                # Full, or the last (partial) chunk: the async engine sends its chunks side by
                # side, so which one the gate holds is up to the scheduler.
                assert 0 < len(held) <= BATCH_SIZE
                assert held <= set(stored) if not drop else not held & set(stored)
            assert not state.exists()  # the watermark is written only once a run is through
        stored_before = len(stage.customers())
        started_ms = int(time.time() * 1000)
        child = _start(engine, state, env)
        try:
            out, err = child.communicate(timeout=PATIENCE)
        finally:
            _stop(child)
        assert child.returncode == 0, err
        summary = json.loads(out)
        assert summary["ok"] is True
        assert summary["errors"] == []
        assert summary["total"] == TRADES
        assert summary["counts"] == {
            "created": numbers - stored_before,
            "updated": 0,
            "existed": stored_before,
            "skipped": TRADES // 30,
            "uncertain": 0,
            "failed": 0,
            "merged": TRADES - TRADES // 30 - numbers,
        }
        # The end of the child's range: its "now", between its start and its report.
        mark_ms = to_epoch_ms(datetime.fromisoformat(summary["watermark"]))
        assert started_ms <= mark_ms <= time.time() * 1000
        assert json.loads(state.read_text())["watermark_ms"] == mark_ms
        assert_store_complete(stage)  # every buyer once, named after the latest trade
    finally:
        stage.close()
