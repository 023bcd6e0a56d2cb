"""A simulator in a child process, so that the client under test has this process to itself.

The benchmarks run on a 2-core machine. With the simulator's HTTP server in the benchmark's own
process its request parsing, signature checks and JSON encoding would share the GIL with the
client being measured (and be counted as client time). Here it runs in a child process
(``python benchmarks/_serve.py '<json options>'``) that prints ``{"url": ...}`` once listening,
then answers ``stats`` and ``ranges`` lines on stdin with one JSON line each. It exits at
``quit`` or when stdin closes (the parent died), so no server outlives its benchmark.

The server is the core's ``LoopbackServer`` on 127.0.0.1 (what ``fake.serve()`` builds), with the
same ``latency``/``connect_latency`` model, its handler wrapped to note when the last reply was
ready.
"""

from __future__ import annotations

import contextlib
import json
import select
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, overload

from _huke_k3_core.testing import LoopbackServer

#: Huke credentials shared by the fake and the clients of the benchmarks (not secrets).
HUKE_APP_KEY = "bench-app-key"
HUKE_APP_SECRET = "bench-app-secret"
#: 2024-01-01 00:00:00 UTC in epoch ms: the start of every synthetic trade range.
EPOCH_2024_MS = 1_704_067_200_000
_STARTUP_TIMEOUT = 60.0
_REPLY_TIMEOUT = 60.0


# -- child side ----------------------------------------------------------------------------------


class SyntheticTrades(Sequence[dict[str, Any]]):
    """Trade ``i`` of ``n`` made on demand (``createTime = start_ms + i``): a million trades served
    without holding a million dicts. Built from a small pool of realistic templates."""

    def __init__(self, n: int, start_ms: int, templates: Sequence[dict[str, Any]]) -> None:
        self._n = n
        self._start = start_ms
        self._templates = templates

    def __len__(self) -> int:
        return self._n

    def _make(self, i: int) -> dict[str, Any]:
        created = self._start + i
        trade = dict(self._templates[i % len(self._templates)])
        trade.update(tid=f"HK{i:012d}", createTime=created, payTime=created + 60_000)
        return trade

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._make(i) for i in range(*index.indices(self._n))]
        if not -self._n <= index < self._n:
            raise IndexError(index)
        return self._make(index % self._n)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self._make(i) for i in range(self._n))


def _huke_fake(options: dict[str, Any]) -> Any:
    from huke_client.testing import FakeHuke, generate_trades

    start = EPOCH_2024_MS
    end = start + int(options.get("span_ms", 30 * 86_400_000)) - 1
    max_page_size = int(options.get("max_page_size", 100))
    synthetic = int(options.get("synthetic", 0))
    if synthetic:
        templates = list(generate_trades(1000, start=start, end=end, seed=7))

        class SyntheticFakeHuke(FakeHuke):
            # FakeHuke pages over a sorted (keys, trades) index; handing it lazy sequences keeps
            # its validation and paging exactly as they are while holding no trades at all.
            def _sorted_by(self, field: str) -> Any:
                return range(start, start + synthetic), SyntheticTrades(synthetic, start, templates)

        return SyntheticFakeHuke(HUKE_APP_KEY, HUKE_APP_SECRET, max_page_size=max_page_size)
    trades = generate_trades(
        int(options.get("trades", 0)),
        start=start,
        end=end,
        buyers=options.get("buyers"),
        seed=int(options.get("seed", 0)),
    )
    return FakeHuke(HUKE_APP_KEY, HUKE_APP_SECRET, trades=trades, max_page_size=max_page_size)


def _k3_fake() -> Any:
    from k3cloud_client.testing import (
        TEST_ACCT_ID,
        TEST_APP_ID,
        TEST_APP_SECRET,
        TEST_USER_NAME,
        FakeK3Cloud,
    )

    return FakeK3Cloud(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
    )


def _pages_by_range(fake: Any) -> dict[str, Any]:
    """searchTrades requests per ``[startTime, endTime]`` range, from the requests received."""
    counts: dict[str, int] = {}
    for request in list(fake.received):
        try:
            entry = json.loads(request.content)["timeRanges"][0]
            key = f"{entry['startTime']}-{entry['endTime']}"
        except (ValueError, KeyError, IndexError, TypeError):
            key = "unreadable"
        counts[key] = counts.get(key, 0) + 1
    return {"pages_by_range": counts, "complete": fake.request_count <= len(fake.received)}


def _stats(kind: str, fake: Any, server: Any, clock: list[float]) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "requests": fake.request_count,
        "connections": server.connections_opened,
        "last_answer_at": clock[0],  # time.time() when the last reply was ready
        "cpu": time.process_time() - clock[1],  # the simulator's CPU time since it was ready
        "turned_away": fake.turned_away,  # requests beyond ``capacity``
        "peak_in_flight": fake.peak_in_flight,
    }
    if kind == "k3cloud":
        records = fake.records("BD_Customer")
        stats["customers"] = len(records)
        stats["distinct_numbers"] = len({r.get("FNumber") for r in records})
        stats["calls"] = dict(fake.calls)
    return stats


def main(argv: Sequence[str]) -> int:
    options: dict[str, Any] = json.loads(argv[0])
    kind = options["kind"]
    fake = _huke_fake(options) if kind == "huke" else _k3_fake()
    if options.get("capacity"):  # a server that takes that many requests at a time
        fake.limit_capacity(
            int(options["capacity"]), service_time=float(options.get("service_time", 0.0))
        )
    # [time.time() of the last reply, this process's CPU time when it began serving]
    clock = [0.0, 0.0]

    def handler(request: Any) -> Any:
        try:
            return fake(request)
        finally:
            clock[0] = time.time()

    server = LoopbackServer(
        handler,
        latency=float(options.get("latency", 0.0)),
        connect_latency=float(options.get("connect_latency", 0.0)),
    )
    clock[1] = time.process_time()
    try:
        print(json.dumps({"url": server.url}), flush=True)
        for line in sys.stdin:  # ends when the parent closes stdin
            command = line.strip()
            if command == "quit":
                break
            if command == "stats":
                print(json.dumps(_stats(kind, fake, server, clock)), flush=True)
            elif command == "ranges" and kind == "huke":
                print(json.dumps(_pages_by_range(fake)), flush=True)
            else:
                print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)
    finally:
        server.close()
    return 0


# -- parent side ---------------------------------------------------------------------------------


class FakeServer:
    """A simulator served from a child process: ``url``, ``stats()``, and a clean shutdown.

    ``kind`` is ``"huke"`` (options: ``trades``, ``buyers``, ``seed``, ``span_ms`` (trades'
    ``createTime`` lie in ``[EPOCH_2024_MS, EPOCH_2024_MS + span_ms)``), ``synthetic``,
    ``max_page_size``) or ``"k3cloud"``; every kind takes ``latency`` and ``connect_latency``,
    and ``capacity`` with ``service_time`` (``limit_capacity``: more requests at once than that
    get the simulator's rate-limit reply).
    """

    def __init__(self, kind: str, **options: Any) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__)), json.dumps({"kind": kind, **options})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            reply = self._read(_STARTUP_TIMEOUT)
        except BaseException:
            self.close()
            raise
        self.url: str = reply["url"]
        if not self.url.startswith("http://127.0.0.1:"):
            self.close()
            raise RuntimeError(f"the simulator must listen on 127.0.0.1, not {self.url}")

    @property
    def pid(self) -> int:
        return self._process.pid

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self._process.stdout is not None
        deadline = time.monotonic() + timeout
        ready, _, _ = select.select([self._process.stdout], [], [], max(0.0, timeout))
        line = self._process.stdout.readline() if ready else ""
        if not line:
            waited = timeout - max(0.0, deadline - time.monotonic())
            raise RuntimeError(
                f"the simulator process {self._process.pid} gave no answer in {waited:.0f}s "
                f"(exit code {self._process.poll()})"
            )
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"simulator process: {reply['error']}")
        return reply

    def stats(self) -> dict[str, Any]:
        """Requests and connections the server saw (and, for K/3 Cloud, what it stores)."""
        return self._ask("stats")

    def pages_by_range(self) -> dict[str, int]:
        """Huke only: searchTrades requests per time range (of the last 10,000 received)."""
        reply = self._ask("ranges")
        if not reply["complete"]:
            raise RuntimeError("more requests than the simulator's log keeps")
        counts: dict[str, int] = reply["pages_by_range"]
        return counts

    def _ask(self, command: str) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        return self._read(_REPLY_TIMEOUT)

    def close(self) -> None:
        """Ask the child to stop (closing its server), and kill it if it does not."""
        stdin = self._process.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError):  # a child that already exited closed the pipe
                stdin.write("quit\n")
                stdin.flush()
            with contextlib.suppress(OSError):
                stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
