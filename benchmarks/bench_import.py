"""Benchmark 7: cold start. ``import huke_k3_bridge`` against ``import httpx`` (target <= 2x).

Each import runs in a fresh interpreter (``python -X importtime``; the figure is the top-level
module's cumulative time), alternating the two, and the medians are compared. The bytecode of
``src/`` is compiled first, as an installed wheel's is (this workplace sets
``PYTHONDONTWRITEBYTECODE``, which would otherwise make every run compile our sources while httpx's
site-packages bytecode is cached): the comparison is like for like. A second row shows the same
without our bytecode, for reference. Heavy or optional modules (``anyio``, ``cryptography``,
``configparser``, ``statistics``, ``tqdm``) are loaded on first use, not on import; the test
``tests/test_cold_start.py`` keeps it so.
"""

from __future__ import annotations

import compileall
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from _harness import Table

SRC = Path(__file__).resolve().parent.parent / "src"
TARGET = 2.0


def _import_ms(statement: str, module: str, env: dict[str, str]) -> float:
    """The cumulative import time of ``module`` (ms) when a fresh interpreter runs ``statement``."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stderr
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == module:
            return int(parts[1]) / 1000
    raise AssertionError(f"{module} not in the import times of {statement!r}")


def _clear_bytecode() -> None:
    for cache in SRC.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


def _medians(rounds: int, env: dict[str, str]) -> tuple[float, float, float]:
    httpx_ms, bridge_ms, engine_ms = [], [], []
    for _ in range(rounds):
        httpx_ms.append(_import_ms("import httpx", "httpx", env))
        bridge_ms.append(_import_ms("import huke_k3_bridge", "huke_k3_bridge", env))
        engine_ms.append(
            _import_ms("from huke_k3_bridge import sync_customers", "huke_k3_bridge", env)
        )
    return (
        statistics.median(httpx_ms),
        statistics.median(bridge_ms),
        statistics.median(engine_ms),
    )


def run(quick: bool) -> list[Table]:
    rounds = 5 if quick else 21
    env = dict(os.environ)
    table = Table(
        "7: cold start, `import huke_k3_bridge` vs `import httpx` (fresh interpreter each)",
        ["bytecode of src/", "import httpx (ms)", "import huke_k3_bridge (ms)", "ratio"],
    )
    try:
        compileall.compile_dir(str(SRC), quiet=1)
        httpx_ms, bridge_ms, engine_ms = _medians(rounds, env)
        ratio = bridge_ms / httpx_ms
        table.row("compiled (as installed)", httpx_ms, bridge_ms, f"{ratio:.2f}x")
        _clear_bytecode()
        env_no_pyc = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
        cold_httpx, cold_bridge, _ = _medians(max(3, rounds // 3), env_no_pyc)
        table.row(
            "none (every import compiles src/)",
            cold_httpx,
            cold_bridge,
            f"{cold_bridge / cold_httpx:.2f}x",
        )
    finally:
        _clear_bytecode()
    table.note(
        f"Medians of {rounds} fresh interpreters per figure, alternating. "
        f"`from huke_k3_bridge import sync_customers` (what a program imports to run a sync): "
        f"{engine_ms:.1f} ms: nothing a sync run needs is deferred, so the figure is honest."
    )
    table.verdict(
        "7",
        f"`import huke_k3_bridge` <= {TARGET:.0f}x `import httpx`",
        f"{ratio:.2f}x ({bridge_ms:.0f} vs {httpx_ms:.0f} ms)",
        ratio <= TARGET,
        f"margin {TARGET - ratio:+.2f}x",
    )
    return [table]
