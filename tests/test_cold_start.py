"""``import huke_k3_bridge`` loads no module that only some programs need (issue 10, item 7).

Each of these costs milliseconds at import and is needed only on one path: ``anyio`` by async
code, ``cryptography`` by Huke's request signing, ``configparser`` by ``conf.ini`` reading,
``statistics`` by nothing any more. Benchmark 7 (``benchmarks/bench_import.py``) measures the time.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

DEFERRED = ("anyio", "cryptography", "configparser", "statistics", "tqdm", "celery")


def _loaded_after(statement: str) -> set[str]:
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return {name.partition(".")[0] for name in json.loads(out)}


@pytest.mark.parametrize(
    "statement",
    [
        "import huke_k3_bridge",
        "from huke_k3_bridge import sync_customers, FileState",
        "import huke_client, k3cloud_client",
    ],
)
def test_importing_loads_no_module_only_some_paths_need(statement: str) -> None:
    # What httpx itself loads is not ours to defer (httpcore before 1.0.3 imports anyio).
    ours = _loaded_after(statement) - _loaded_after("import httpx")
    assert not ours & set(DEFERRED)


def test_each_deferred_module_is_loaded_when_its_path_runs() -> None:
    """The lazily loaded paths work: signing loads cryptography, an async retry loads anyio."""
    loaded = _loaded_after(
        "from huke_client.signing import checksum\n"
        "checksum('k', 's', 1, 'secret')\n"
        "from _huke_k3_core import _transport\n"
        "import asyncio\n"
        "asyncio.run(_transport._async_sleep(0))"
    )
    assert {"cryptography", "anyio"} <= loaded
