"""Where time goes, by function, for the benchmark notes (cProfile: always available)."""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Callable
from pathlib import Path


def top_functions(
    fn: Callable[[], object],
    *,
    top: int = 6,
    cumulative: bool = False,
    within: str | None = None,
    exclude: str = "/benchmarks/",
) -> list[str]:
    """The ``top`` functions by self time (or time with callees) while running ``fn``, with
    their share of the total; ``within`` keeps only functions whose file path contains it, and
    functions of files whose path contains ``exclude`` (the benchmark's own loops) are left out.

    cProfile inflates call-heavy code; the shares rank hot spots, the benchmarks' own timings
    give their real cost.
    """
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    entries = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in entries.values()) or 1.0
    column = 3 if cumulative else 2
    ranked = sorted(entries.items(), key=lambda item: item[1][column], reverse=True)
    lines = []
    for (filename, line, name), (_, calls, self_time, with_callees, _) in ranked:
        if (within is not None and within not in filename) or exclude in filename:
            continue
        if "_lsprof" in name:  # the profiler's own switch-off
            continue
        where = "builtin" if filename == "~" else "/".join(Path(filename).parts[-2:]) + f":{line}"
        lines.append(
            f"`{where}` {name}: {100 * self_time / total:.0f}% self, "
            f"{100 * with_callees / total:.0f}% with callees ({calls} calls)"
        )
        if len(lines) == top:
            break
    return lines
