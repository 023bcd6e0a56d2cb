"""8. The fleet: tenants x windows through Celery workers vs the same work in one process.

Three shops (``huke_k3_bridge.celery.testing``: two share K/3 account A, one has account B), six
one-hour windows each, every K/3 request held 20 ms by the simulator. The same 18 windows run

- in one process: ``sync_customers`` window after window (what a cron job over the tenants does);
- on the fleet: a real ``redis-server`` and two ``celery worker`` processes (concurrency 2 each),
  ``dispatch`` sending the 18 tasks, with the default of one window at a time per K/3 account.

Each run has its own simulators (the same shops, empty K/3 accounts). The figures are wall time
and the most K/3 requests in flight per account, read by a meter around each account's simulator.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from _harness import Table
from huke_k3_bridge import sync_customers
from huke_k3_bridge.celery.testing import HOUR_MS, Simulators, start_simulators
from huke_k3_bridge.tenants import load_tenants

WINDOWS = 6
#: Trades and buyers per shop over its eight hours: windows of real work (hundreds of trades).
TRADES, BUYERS = 4000, 3000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout} s")
        time.sleep(0.05)


@contextlib.contextmanager
def _redis(directory: Path) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server not found (apt-get install redis-server)")
    port = _free_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([server, *args, "--dir", str(directory)], stdout=subprocess.DEVNULL)

    def answers() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    try:
        _wait_for(answers, 10, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait(timeout=10)


def _peaks(simulated: Simulators) -> str:
    return ", ".join(
        f"{name}: {account.meter.peak}" for name, account in simulated.accounts.items()
    )


def _most(peaks: str) -> int:
    return max(int(part.rpartition(": ")[2]) for part in peaks.split(", "))


def _one_process(directory: Path) -> tuple[float, str, int]:
    directory.mkdir(parents=True)
    with start_simulators(directory, bad_tenant=False, trades=TRADES, buyers=BUYERS) as simulated:
        tenants = load_tenants(simulated.tenants_path)
        created = 0
        started = time.perf_counter()
        for tenant in tenants.values():
            with (
                tenant.huke_client(environ=simulated.secrets) as huke,
                tenant.k3_client(environ=simulated.secrets) as k3,
            ):
                for hour in range(WINDOWS):
                    start = simulated.t0 + hour * HOUR_MS
                    report = sync_customers(
                        huke, k3, options=tenant.sync_options(start=start, end=start + HOUR_MS - 1)
                    )
                    assert report.ok, report
                    created += report.counts["created"]
        return time.perf_counter() - started, _peaks(simulated), created


def _fleet(directory: Path, redis_url: str) -> tuple[float, str, int]:
    directory.mkdir(parents=True)
    with start_simulators(directory, bad_tenant=False, trades=TRADES, buyers=BUYERS) as simulated:
        env = {
            **os.environ,
            **simulated.secrets,
            "HUKE_K3_BROKER_URL": redis_url,
            "HUKE_K3_TENANTS": str(simulated.tenants_path),
            "HUKE_K3_SLOT_WAIT": "0.2",
        }
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "huke_k3_bridge.celery", "worker",
                 "--concurrency", "2", "--hostname", f"bench{n}@%h", "--loglevel", "WARNING",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for n in (1, 2)
        ]  # fmt: skip
        try:
            from huke_k3_bridge.celery import dispatch, make_app

            app = make_app(env)
            _wait_for(lambda: len(app.control.ping(timeout=0.5) or []) >= 2, 60, "two workers")
            started = time.perf_counter()
            sent = dispatch(app=app, start=simulated.t0, end=simulated.t0 + WINDOWS * HOUR_MS - 1)
            summaries = [window.result.get(timeout=300) for window in sent]
            wall = time.perf_counter() - started
            assert all(summary["ok"] for summary in summaries), summaries
            created = sum(summary["counts"]["created"] for summary in summaries)
            return wall, _peaks(simulated), created
        finally:
            for worker in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=30)


def run(quick: bool) -> list[Table]:
    table = Table(
        f"8: the fleet vs one process, 3 tenants x 6 windows ({TRADES} trades per tenant, "
        "20 ms per K/3 request)",
        ["run", "wall (s)", "windows", "customers created", "most K/3 requests in flight"],
    )
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        one_wall, one_peaks, one_created = _one_process(root / "one")
        table.row("one process, window after window", one_wall, 3 * WINDOWS, one_created, one_peaks)
        with _redis(root) as redis_url:
            wall, peaks, created = _fleet(root / "fleet", redis_url)
        table.row(
            "fleet: 2 workers x concurrency 2, 1 window per K/3 account", wall, 3 * WINDOWS,
            created, peaks,
        )  # fmt: skip
    table.note(
        f"The fleet took {wall / one_wall:.2f}x the one process's wall time "
        f"({one_wall / wall:.2f}x as fast). The most requests in flight on one K/3 account: "
        f"{_most(peaks)} on the fleet, {_most(one_peaks)} in one process. With one slot per "
        "account, the two accounts bound the fleet's speed-up at about 2x here; the fleet also "
        "pays per window for broker round trips and task start."
    )
    return [table]
