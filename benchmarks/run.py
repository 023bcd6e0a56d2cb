"""Run the benchmarks and append their tables to ``benchmarks/RESULTS.md``.

    .venv/bin/python benchmarks/run.py                 # all six, full size (~7 minutes)
    .venv/bin/python benchmarks/run.py --quick         # smoke sizes, well under a minute
    .venv/bin/python benchmarks/run.py --only models   # one (repeatable; a number works too)

Every server is a simulator on 127.0.0.1 (most in child processes); nothing leaves the machine.
A full run appends to RESULTS.md; a ``--quick`` run does not unless ``--save`` is given (smoke
sizes say nothing about the targets). A full-size run of all six, none failed, also rewrites the
summary of verdicts at the top of RESULTS.md. A benchmark that fails is reported and the others
still run; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from collections.abc import Sequence

from _harness import Table, append_results, machine

#: Short name -> module, in the issue's order.
BENCHMARKS = {
    "client_overhead": "bench_client_overhead",
    "vs_official_sdk": "bench_vs_official_sdk",
    "end_to_end": "bench_end_to_end",
    "memory": "bench_memory",
    "models": "bench_models",
    "backpressure": "bench_backpressure",
    "import": "bench_import",
    "fleet": "bench_fleet",
}


def _select(names: Sequence[str]) -> list[str]:
    chosen = []
    for name in names:
        key = name.removeprefix("bench_").removesuffix(".py")
        if key.isdigit() and 1 <= int(key) <= len(BENCHMARKS):
            key = list(BENCHMARKS)[int(key) - 1]
        if key not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        chosen.append(key)
    return chosen or list(BENCHMARKS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the huke-k3-bridge benchmarks.")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="repeatable")
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes")
    parser.add_argument("--save", action="store_true", help="append a --quick run too")
    args = parser.parse_args(argv)
    print(f"Machine: {machine()}", flush=True)
    tables: list[Table] = []
    failed = []
    for key in _select(args.only):
        started = time.perf_counter()
        try:
            module = importlib.import_module(BENCHMARKS[key])
            produced: list[Table] = module.run(args.quick)
        except Exception as exc:
            failed.append(key)
            traceback.print_exc()
            table = Table(f"{key}: FAILED", ["error"])
            table.row(f"{type(exc).__name__}: {exc}".replace("|", "/").replace("\n", " ")[:500])
            produced = [table]
        elapsed = time.perf_counter() - started
        for table in produced:
            if args.quick:
                table.notes.insert(0, "QUICK smoke run: reduced sizes; the verdicts do not count.")
            table.note(f"Benchmark `{key}` took {elapsed:.0f} s.")
        tables += produced
        print(f"[{key} done in {elapsed:.1f} s]", flush=True)
    if not args.quick or args.save:
        complete = not args.quick and not args.only and not failed
        append_results(tables, summarize=complete)
    else:
        print("\nquick run: not appended to RESULTS.md (pass --save to append)", file=sys.stderr)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
