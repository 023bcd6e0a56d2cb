"""6. Back-pressure: the async engine against a K/3 Cloud that takes ``CAPACITY`` calls at a time.

The K/3 simulator (in a child process) works on at most ``CAPACITY`` requests at once, each for
``SERVICE_TIME``; one more gets K/3 Cloud's rate-limit answer (MsgCode 14) at once. The clients
keep their default retry policy, as a user's would. ``async_sync_customers`` syncs the same
buyers at concurrency 4, 16 and 64 three ways:

- adaptive: the engine as it is (the limit adapts, rate-limited calls are retried);
- fixed: the same with the limit held at the configured concurrency;
- fixed, no engine retry: the engine before back-pressure (what the issue measured).

Target: adaptive at every concurrency ends with no failed row, at >= 0.9x the throughput of the
best fixed setting.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import anyio

from _harness import Table
from _serve import EPOCH_2024_MS, HUKE_APP_KEY, HUKE_APP_SECRET, FakeServer
from huke_client import AsyncHukeClient
from huke_client.testing import generate_trades
from huke_k3_bridge import _engine, _pressure, async_sync_customers
from k3cloud_client import AsyncK3CloudClient, RetryPolicy
from k3cloud_client.testing import TEST_ACCT_ID, TEST_APP_ID, TEST_APP_SECRET, TEST_USER_NAME

CAPACITY = 4
SERVICE_TIME = 0.020
CONCURRENCIES = (4, 16, 64)
TARGET = 0.9
SPAN_MS = 3_600_000
SEED = 5
BATCH_SIZE = 2  # many small calls: enough of them in flight for the concurrency to matter

_K3: dict[str, Any] = {
    "acct_id": TEST_ACCT_ID,
    "user_name": TEST_USER_NAME,
    "app_id": TEST_APP_ID,
    "app_secret": TEST_APP_SECRET,
}

#: The engine before back-pressure: no retry of its own after the client's.
_NO_ENGINE_RETRY = _pressure.RateLimitRetry(policy=RetryPolicy(max_retries=0))


class Mode(NamedTuple):
    name: str
    adaptive: bool
    engine_retry: bool


ADAPTIVE = Mode("adaptive", True, True)
FIXED = Mode("fixed", False, True)
BEFORE = Mode("fixed, no engine retry (before)", False, False)


@contextlib.contextmanager
def _mode(mode: Mode, limiters: list[_pressure.AdaptiveLimiter]) -> Iterator[None]:
    """The engine's limiter made with ``mode``'s switch (each one kept, to read its limit)."""
    make = _engine.AdaptiveLimiter
    retry = _pressure.ENGINE_RETRY

    def limiter(ceiling: int) -> _pressure.AdaptiveLimiter:
        made = functools.partial(make, adaptive=mode.adaptive)(ceiling)
        limiters.append(made)
        return made

    _engine.AdaptiveLimiter = limiter  # type: ignore[assignment,misc]
    if not mode.engine_retry:
        _pressure.ENGINE_RETRY = _NO_ENGINE_RETRY
    try:
        yield
    finally:
        _engine.AdaptiveLimiter = make  # type: ignore[misc]
        _pressure.ENGINE_RETRY = retry


def _one_run(
    mode: Mode, concurrency: int, trades: int, buyers: int, expected: int
) -> dict[str, Any]:
    """One sync into fresh simulators (each in its own process), its store checked."""
    with (
        FakeServer("huke", trades=trades, buyers=buyers, seed=SEED, span_ms=SPAN_MS) as huke_server,
        FakeServer("k3cloud", capacity=CAPACITY, service_time=SERVICE_TIME) as k3_server,
    ):
        limiters: list[_pressure.AdaptiveLimiter] = []

        async def main() -> Any:
            async with (
                AsyncHukeClient(
                    HUKE_APP_KEY, HUKE_APP_SECRET, base_url=f"{huke_server.url}/openapi"
                ) as huke,
                AsyncK3CloudClient(f"{k3_server.url}/k3cloud/", **_K3) as k3,
            ):
                return await async_sync_customers(
                    huke,
                    k3,
                    start=EPOCH_2024_MS,
                    end=EPOCH_2024_MS + SPAN_MS - 1,
                    batch_size=BATCH_SIZE,
                    concurrency=concurrency,
                    progress=False,
                )

        gc.collect()
        with _mode(mode, limiters):
            wall = time.perf_counter()
            report = anyio.run(main)
            wall = time.perf_counter() - wall
        k3_stats = k3_server.stats()
    result = {
        "wall": wall,
        "report": report,
        "k3": k3_stats,
        "limit": limiters[0].limit if limiters else None,
        "decreases": limiters[0].decreases if limiters else 0,
    }
    _check_store(result, expected)
    return result


def run(quick: bool) -> list[Table]:
    trades, buyers = (300, 250) if quick else (1200, 1000)
    repeat = 1 if quick else 3
    wire = generate_trades(
        trades, start=EPOCH_2024_MS, end=EPOCH_2024_MS + SPAN_MS - 1, buyers=buyers, seed=SEED
    )
    expected = len({t["buyerCid"] for t in wire})
    table = Table(
        f"6. Back-pressure: {expected} buyers into a K/3 Cloud taking {CAPACITY} calls at a time "
        f"({SERVICE_TIME * 1000:.0f} ms each; beyond that MsgCode 14), async engine",
        [
            "engine",
            "concurrency",
            "wall (s)",
            "wall, every run (s)",
            "customers/s",
            "failed rows",
            "created",
            "K/3 calls (lookup + save)",
            "turned away (MsgCode 14)",
            "limit at the end",
            "vs best fixed",
        ],
    )
    configs = [(mode, c) for c in CONCURRENCIES for mode in (ADAPTIVE, FIXED)]
    configs += [(BEFORE, max(CONCURRENCIES))]
    runs: dict[tuple[Mode, int], list[dict[str, Any]]] = {config: [] for config in configs}
    _one_run(ADAPTIVE, CONCURRENCIES[0], trades, buyers, expected)  # warm-up: imports, caches
    for _ in range(repeat):  # interleaved, so that a disturbance hits every setting alike
        for mode, concurrency in configs:
            runs[mode, concurrency].append(_one_run(mode, concurrency, trades, buyers, expected))
    # Per setting the best run of those that failed no row, else the best run.
    best = {
        config: min(
            results,
            key=lambda r: (r["report"].counts["failed"] > 0, r["wall"]),
        )
        for config, results in runs.items()
    }
    throughput = {config: expected / r["wall"] for config, r in best.items()}
    fixed = {c: throughput[FIXED, c] for c in CONCURRENCIES}
    best_fixed_c = max(fixed, key=lambda c: fixed[c])
    best_fixed = fixed[best_fixed_c]
    for mode, concurrency in configs:
        result = best[mode, concurrency]
        report = result["report"]
        counts = report.counts
        calls = result["k3"]["calls"]
        table.row(
            mode.name,
            str(concurrency),
            result["wall"],
            " / ".join(f"{r['wall']:.2f}" for r in runs[mode, concurrency]),
            f"{throughput[mode, concurrency]:.0f}",
            str(counts["failed"]),
            str(counts["created"]),
            f"{calls.get('ExecuteBillQuery', 0)} + {calls.get('BatchSave', 0)}",
            str(result["k3"]["turned_away"]),
            f"{result['limit']} ({result['decreases']} decrease(s))" if mode.adaptive else "-",
            f"{throughput[mode, concurrency] / best_fixed:.2f}x",
        )
    adaptive_failed = {c: best[ADAPTIVE, c]["report"].counts["failed"] for c in CONCURRENCIES}
    worst_failed = max(
        r["report"].counts["failed"] for c in CONCURRENCIES for r in runs[ADAPTIVE, c]
    )
    ratios = {c: throughput[ADAPTIVE, c] / best_fixed for c in CONCURRENCIES}
    worst = min(ratios, key=lambda c: ratios[c])
    met = worst_failed == 0 and ratios[worst] >= TARGET
    before = "/".join(str(r["report"].counts["failed"]) for r in runs[BEFORE, max(CONCURRENCIES)])
    table.note(
        f"Target: adaptive at concurrency {', '.join(map(str, CONCURRENCIES))}: 0 failed rows "
        f"and >= {TARGET}x the throughput of the best fixed setting (fixed {best_fixed_c}, "
        f"{best_fixed:.0f} customers/s). {'MET' if met else 'MISSED'}: failed rows "
        f"{', '.join(str(adaptive_failed[c]) for c in CONCURRENCIES)} (worst of every adaptive "
        f"run: {worst_failed}); throughput "
        f"{', '.join(f'{ratios[c]:.2f}x' for c in CONCURRENCIES)}. The engine before "
        f"back-pressure, at concurrency {max(CONCURRENCIES)}: {before} of {expected} rows failed "
        "(every run)."
    )
    table.note(
        f"Each run: {trades} trades of {expected} distinct buyers fetched from FakeHuke, looked "
        f"up and saved in BatchSave calls of {BATCH_SIZE} into a fresh FakeK3Cloud (each "
        f"simulator in its own child process, no added latency besides the {SERVICE_TIME * 1000:.0f}"
        " ms of service); customers/s = distinct customers created / the sync's wall time. Both "
        "clients keep their default `RetryPolicy` (2 retries, full jitter from 0.5 s). Best of "
        f"{repeat} interleaved run(s) per setting (runs with a failed row ranked last); after "
        "every run FakeK3Cloud held each created customer once (checked)."
    )
    table.note(
        "Fixed = `AdaptiveLimiter(adaptive=False)`: the engine's rate-limit retry on, the "
        "limit held at the concurrency; before = fixed with `ENGINE_RETRY` at 0 retries, as the "
        "engine was (a `CapacityLimiter(concurrency)`)."
    )
    table.verdict(
        "6",
        f"async engine at concurrency {'/'.join(map(str, CONCURRENCIES))} against a K/3 taking "
        f"{CAPACITY} calls at a time: 0 failures, >= {TARGET}x the best fixed throughput",
        f"failed rows {'/'.join(str(adaptive_failed[c]) for c in CONCURRENCIES)}; "
        f"{'/'.join(f'{ratios[c]:.2f}x' for c in CONCURRENCIES)} of fixed {best_fixed_c}",
        met,
        f"before: {before} of {expected} rows failed at concurrency {max(CONCURRENCIES)} "
        "(every run)",
    )
    return [table]


def _check_store(result: dict[str, Any], expected: int) -> None:
    k3 = result["k3"]
    if k3["customers"] != k3["distinct_numbers"]:
        raise AssertionError(f"FakeK3Cloud holds a number twice: {k3}")
    if result["report"].counts["created"] != k3["customers"] or k3["customers"] > expected:
        raise AssertionError(f"the report and FakeK3Cloud disagree: {result['report']!r}")
