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
from typing import Any, NamedTuple

RESULTS = Path(__file__).with_name("RESULTS.md")
_REPO = Path(__file__).resolve().parent.parent
_HEADING = (
    "# Benchmark results\n\nAppended by `python benchmarks/run.py`; newest last. Every ratio is "
    "against a baseline measured in the same run on the same machine.\n"
)
_SUMMARY_START = "<!-- summary: rewritten by every full run of benchmarks/run.py -->"
_SUMMARY_END = "<!-- end of summary -->"


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
    """``HEAD``'s short hash, and whether the measured code (``src/``) differs from it."""
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=_REPO,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
            cwd=_REPO,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{revision} + uncommitted changes in src/" if changed else revision


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


class Verdict(NamedTuple):
    """One target of the issue and how the run did against it (for the summary table)."""

    key: str
    target: str
    figure: str
    met: bool
    gap: str


class Table:
    """A result table printed as it fills and appended to RESULTS.md at the end."""

    def __init__(self, title: str, columns: Sequence[str]) -> None:
        self.title = title
        self.columns = list(columns)
        self.rows: list[list[str]] = []
        self.notes: list[str] = []
        self.verdicts: list[Verdict] = []
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

    def verdict(self, key: str, target: str, figure: str, met: bool, gap: str = "") -> None:
        """Record the verdict on a target: ``figure`` is the latest measurement, ``gap`` one line
        on what remains (or on the margin) for the summary at the top of RESULTS.md."""
        self.verdicts.append(Verdict(key, target, figure, met, gap))

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "---|" * len(self.columns))
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _summary(verdicts: Sequence[Verdict], stamp: str, revision: str) -> str:
    lines = [
        _SUMMARY_START,
        "",
        f"## Summary: latest full run ({stamp}, commit {revision})",
        "",
        "| # | target | latest figure | verdict | gap / margin |",
        "|---|---|---|---|---|",
    ]
    for v in verdicts:
        verdict = "MET" if v.met else "**MISSED**"
        cells = (v.key, v.target, v.figure, verdict, v.gap or "-")
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "Each run's tables and notes follow, oldest first.", ""]
    return "\n".join(lines) + _SUMMARY_END + "\n"


def append_results(tables: Sequence[Table], *, summarize: bool = False) -> None:
    """Append the run's tables; with ``summarize`` (a full run of every benchmark) also
    rewrite the summary of verdicts at the top of the file."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    revision = git_revision()
    header = f"\n## Run of {stamp} (commit {revision})\n\nMachine: {machine()}\n\n"
    body = "\n".join(t.markdown() for t in tables)
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else _HEADING
    if summarize:
        summary = _summary([v for t in tables for v in t.verdicts], stamp, revision)
        if _SUMMARY_START in text and _SUMMARY_END in text:
            before, rest = text.split(_SUMMARY_START, 1)
            after = rest.split(_SUMMARY_END, 1)[1].lstrip("\n")
        else:  # first summary: right after the file's heading, before the first run
            before, sep, after = text.partition("\n## ")
            before, after = before.rstrip("\n") + "\n\n", sep.lstrip("\n") + after
        text = before + summary + ("\n" + after if after else "")
    RESULTS.write_text(text.rstrip("\n") + "\n" + header + body, encoding="utf-8")
    print(f"\nappended to {RESULTS}", file=sys.stderr)


def peak_rss_mb() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage / 1024 if sys.platform != "darwin" else usage / (1024 * 1024)
