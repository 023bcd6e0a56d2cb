"""4. Memory: iterate up to 1,000,000 synthetic trades through ``HukeClient.iter_trades``; peak RSS
stays flat (< 150 MB) and independent of N.

The client runs in a fresh child process per N (``python bench_memory.py --child ...``) that
reports its own peak RSS; the simulator runs in yet another process, so neither the parent's
memory nor the fake's counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _harness import Table, peak_rss_mb
from _serve import EPOCH_2024_MS, HUKE_APP_KEY, HUKE_APP_SECRET, FakeServer

TARGET_MB = 150.0
PAGE_SIZE = 1000
_CHILD_TIMEOUT = 900.0


def _peak_rss_mb() -> float:
    """This process's peak RSS since it started.

    ``VmHWM`` belongs to the process's own address space, which ``exec`` replaces; the
    ``ru_maxrss`` of ``getrusage`` survives ``exec``, so a child started from a big parent would
    report the parent's peak instead of its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()  # not Linux: the best there is


def child(url: str, n: int, page_size: int) -> dict[str, Any]:
    """Iterate ``n`` trades, checking each arrives once and in order; report memory and time."""
    import psutil

    from huke_client import HukeClient

    with HukeClient(HUKE_APP_KEY, HUKE_APP_SECRET, base_url=f"{url}/openapi") as client:
        rss_ready = psutil.Process().memory_info().rss / 2**20
        started = time.perf_counter()
        count = 0
        trades = client.iter_trades(
            start=EPOCH_2024_MS, end=EPOCH_2024_MS + n - 1, page_size=page_size
        )
        for trade in trades:
            # Constant-memory proof that nothing is lost, repeated or reordered.
            if trade["tid"] != f"HK{count:012d}" or trade.buyer_cid is None:
                raise AssertionError(f"trade #{count} is {trade['tid']}")
            count += 1
        wall = time.perf_counter() - started
    if count != n:
        raise AssertionError(f"iterated {count} trades, expected {n}")
    return {"trades": count, "rss_ready": rss_ready, "peak": _peak_rss_mb(), "wall": wall}


def _measure(server: FakeServer, n: int, page_size: int) -> dict[str, Any]:
    before = server.stats()["requests"]
    completed = subprocess.run(
        [sys.executable, str(Path(__file__)), "--child", server.url, str(n), str(page_size)],
        capture_output=True,
        text=True,
        timeout=_CHILD_TIMEOUT,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"memory child failed for N={n}: {completed.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    result["requests"] = server.stats()["requests"] - before
    return result


def run(quick: bool) -> list[Table]:
    sizes = [1_000, 10_000, 50_000] if quick else [1_000, 100_000, 1_000_000]
    largest = sizes[-1]
    table = Table(
        f"4. Memory: iter_trades over up to {largest:,} trades (pages of {PAGE_SIZE})",
        ["N trades", "pages", "RSS ready (MB)", "peak RSS (MB)", "peak - ready (MB)", "wall (s)"],
    )
    results = {}
    # The fake makes trade i on demand, so one server serves every N without holding them.
    with FakeServer("huke", synthetic=largest, max_page_size=PAGE_SIZE) as server:
        for n in sizes:
            result = _measure(server, n, PAGE_SIZE)
            results[n] = result
            table.row(
                f"{n:,}",
                result["requests"],
                result["rss_ready"],
                result["peak"],
                result["peak"] - result["rss_ready"],
                result["wall"],
            )
    peak = max(r["peak"] for r in results.values())
    growth = round(results[largest]["peak"] - results[sizes[-2]]["peak"], 1) + 0.0  # no "-0.0"
    verdict = "MET" if peak < TARGET_MB else "MISSED"
    table.note(
        f"Target: peak RSS < {TARGET_MB:.0f} MB and independent of N. {verdict}: highest peak "
        f"{peak:.1f} MB; from N={sizes[-2]:,} to N={largest:,} ({largest // sizes[-2]}x the "
        f"trades) the peak moved by {growth:+.1f} MB."
    )
    table.verdict(
        "4",
        f"`iter_trades` over {largest:,} trades: peak RSS < {TARGET_MB:.0f} MB, flat in N",
        f"highest peak {peak:.1f} MB; {growth:+.1f} MB from N={sizes[-2]:,} to N={largest:,}",
        peak < TARGET_MB,
        f"margin {TARGET_MB - peak:.0f} MB; {results[sizes[0]]['peak']:.0f} MB of it is the "
        "interpreter and libraries at N=1,000",
    )
    table.note(
        "Baseline in the same run: N=1,000 (one page) is the cost of the interpreter, httpx, "
        "cryptography and the SDK, plus one page. Each N runs in a fresh child process that "
        "reports its own peak (`VmHWM`; `ru_maxrss` would carry the parent's peak over "
        "`exec`); the simulator runs in another process (it makes trade i on demand, "
        "1,000 templates from `generate_trades`, so it serves a million without holding them)."
    )
    table.note(
        "Each child checks every trade arrives once, in order (`tid` sequence), with its buyer; "
        f"`pages` is the request count the server saw (N / {PAGE_SIZE}, plus none: the total "
        "ends the range). Page size 1,000 with the fake's `max_page_size` raised to match."
    )
    return [table]


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    else:
        sys.exit("usage: bench_memory.py --child URL N PAGE_SIZE (run by benchmarks/run.py)")
