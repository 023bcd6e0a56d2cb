"""Issue 8.10: an invariant, not just cases. Hypothesis draws a schedule of faults (lost replies,
slow commits, short or inconsistent pages, 429s and MsgCode 14, session loss, a run killed
part-way) and checks, over loopback sockets and for both engines, that after a bounded number
of incremental re-runs:

- every buyer exists in K/3 Cloud exactly once, named after its latest trade;
- no create was ever sent for a customer that already existed (nothing is written twice: the
  simulator's unique index would hide a duplicate, so its refusals are counted instead);
- every run's report gives each fetched trade exactly one outcome, and the last run is OK.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huke_client.testing import LISTING_FAULT_KINDS
from huke_k3_bridge import FileState, SyncReport
from k3cloud_client.testing import Fault

from .conftest import HANG_TIMEOUT, Engine, Stage

SAVE = "BatchSave"
QUERY = "ExecuteBillQuery"
#: Re-runs after the faulty one, each fault-free: the bound within which all must be settled.
RERUNS = 2

K3_FAULT = st.sampled_from(
    ["reply-lost", "reply-timeout", "timeout", "503", "429", "14", "reset", "slow-commit"]
)
HUKE_FAULT = st.sampled_from(["503", "timeout", "reset", *sorted(LISTING_FAULT_KINDS)])
SCHEDULE = st.lists(
    st.one_of(
        st.tuples(
            st.just("k3"),
            K3_FAULT,
            st.sampled_from([SAVE, QUERY]),
            st.integers(0, 3),
            st.integers(1, 2),
        ),
        st.tuples(st.just("huke"), HUKE_FAULT, st.none(), st.integers(0, 4), st.integers(1, 2)),
        st.tuples(st.just("session"), st.just("expire"), st.none(), st.integers(1, 8), st.just(1)),
    ),
    max_size=4,
)


class Killed(Exception):
    """The process running the sync died here (raised from the progress callback)."""


def _inject(stage: Stage, schedule: list[tuple[str, str, str | None, int, int]]) -> None:
    for where, kind, path, after, times in schedule:
        if where == "session":
            _expire_sessions_at(stage, after)
        elif where == "huke" and kind == "total":
            stage.huke.listing_fault(
                kind, page=after + 1, times=times, total=lambda served: max(served.total - 3, 0)
            )
        elif where == "huke" and kind in LISTING_FAULT_KINDS:
            stage.huke.listing_fault(kind, page=after + 1, times=times)
        elif where == "huke":
            fault = {"503": Fault.http_status(503), "timeout": Fault.timeout()}.get(
                kind, Fault.reset()
            )
            stage.huke.inject(fault, after=after, times=times)
        elif kind == "reply-lost":
            stage.k3.inject_reply_lost(after=after, times=times, path=path)
        elif kind == "reply-timeout":
            stage.k3.inject_reply_timeout(after=after, times=times, path=path)
        elif kind == "14":
            stage.k3.inject_rate_limit(after=after, times=times, path=path)
        elif kind == "slow-commit":
            _slow_commits(stage, path or SAVE, after=after, times=times)
        else:
            fault = {
                "timeout": Fault.timeout(),
                "503": Fault.http_status(503),
                "429": Fault.http_status(429, retry_after="0"),
            }.get(kind, Fault.reset())
            stage.k3.inject(fault, after=after, times=times, path=path)


def _slow_commits(stage: Stage, path: str, *, after: int, times: int) -> None:
    """Requests carried out a little after the client gave up on them: still within the client's
    timeout plus the bridge's confirm window (its default, the client's timeout)."""
    seen = {"n": 0}
    lock = threading.Lock()

    def hook(operation: str, request: httpx.Request) -> None:
        if operation != path:
            return
        with lock:
            seen["n"] += 1
            strike = after < seen["n"] <= after + times
        if strike:
            time.sleep(HANG_TIMEOUT * 1.5)

    stage.on_k3(hook)


def _expire_sessions_at(stage: Stage, nth: int) -> None:
    seen = {"n": 0}

    def hook(operation: str, request: httpx.Request) -> None:
        seen["n"] += 1
        if seen["n"] == nth:
            stage.k3.expire_sessions()

    stage.on_k3(hook)


def _count_duplicate_refusals(stage: Stage) -> list[str]:
    refused: list[str] = []

    def rewrite(operation: str, response: httpx.Response) -> httpx.Response:
        if operation == SAVE and "已经被使用".encode() in response.content:
            body = json.loads(response.content)
            for error in body["Result"]["ResponseStatus"].get("Errors") or []:
                refused.append(str(error.get("Message")))
        return response

    stage.k3.rewrites.append(rewrite)
    return refused


def _killer(at: int | None) -> Any:
    events = {"n": 0}

    def progress(event: Any) -> None:
        events["n"] += 1
        if at is not None and events["n"] == at:
            raise Killed(f"killed at progress event {at}")

    return progress


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(
    schedule=SCHEDULE,
    kill_at=st.one_of(st.none(), st.integers(1, 12)),
    auth=st.sampled_from(["signed", "password"]),
    seed=st.integers(1, 1_000),
)
@pytest.mark.parametrize("engine", ["sync", "async"])
def test_after_bounded_reruns_every_buyer_exists_once_and_every_trade_has_an_outcome(
    engine: Engine,
    tmp_path: Path,
    schedule: list[tuple[str, str, str | None, int, int]],
    kill_at: int | None,
    auth: Any,
    seed: int,
) -> None:
    stage = Stage()
    try:
        stage.generate(60, buyers=20, seed=seed)
        state = FileState(tmp_path / f"state-{seed}-{time.monotonic_ns()}.json")
        refused = _count_duplicate_refusals(stage)
        _inject(stage, schedule)
        options: dict[str, Any] = {
            "auth": auth,
            "timeout": HANG_TIMEOUT,
            "state": state,
            "start": None,
            "confirm_timeout": None,  # the default: the client's timeout
        }
        reports: list[SyncReport] = []
        try:
            reports.append(stage.run(engine, progress=_killer(kill_at), **options))
        except Killed:
            stage.wait_idle()  # the dead process's last requests are carried out or gone
        stage.huke.faults.clear()
        stage.k3.faults.clear()
        for fault in list(getattr(stage.huke, "_listing_faults", [])):
            fault.cancel()
        stage.k3.hooks.clear()
        for _ in range(RERUNS):
            reports.append(stage.run(engine, progress=False, **options))
            if reports[-1].ok:
                break
        for report in reports:
            report.check()  # each fetched trade has exactly one outcome
        last = reports[-1]
        assert last.ok, str(last)
        stored = {number: record["FName"] for number, record in stage.customers().items()}
        assert stored == {n: t["buyerNick"] for n, t in stage.winners().items()}
        assert not refused, f"a create was sent for a customer that existed: {refused[:3]}"
    finally:
        stage.close()
