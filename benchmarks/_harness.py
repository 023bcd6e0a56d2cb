"""What every benchmark shares: timing, peak memory, machine facts, and RESULTS.md."""

from __future__ import annotations

import datetime as dt
import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        cpu = model
    except (OSError, StopIteration):
        pass
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )


def git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def best_of(fn: Callable[[], Any], *, repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs (the least disturbed by the rest of the machine)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def median_of(fn: Callable[[], Any], *, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class Table:
    """A result table printed as it fills and appended to RESULTS.md at the end."""

    def __init__(self, title: str, columns: Sequence[str]) -> None:
        self.title = title
        self.columns = list(columns)
        self.rows: list[list[str]] = []
        self.notes: list[str] = []
        print(f"\n## {title}", flush=True)

    def row(self, *cells: object) -> None:
        text = [
            c if isinstance(c, str) else f"{c:.3f}" if isinstance(c, float) else str(c)
            for c in cells
        ]
        self.rows.append(text)
        print(
            "  " + " | ".join(f"{c}: {v}" for c, v in zip(self.columns, text, strict=False)),
            flush=True,
        )

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  -> {text}", flush=True)

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "---|" * len(self.columns))
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def append_results(tables: Sequence[Table]) -> None:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = f"\n## Run of {stamp} (commit {git_revision()})\n\nMachine: {machine()}\n\n"
    body = "\n".join(t.markdown() for t in tables)
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results\n\nAppended by `python benchmarks/run.py`; newest last. Every ratio is "
            "against a baseline measured in the same run on the same machine.\n"
        )
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(header + body)
    print(f"\nappended to {RESULTS}", file=sys.stderr)


def peak_rss_mb() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage / 1024 if sys.platform != "darwin" else usage / (1024 * 1024)
