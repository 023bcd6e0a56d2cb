"""What the fleet needs on this machine; the one line saying why the fleet tests were skipped."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from .conftest import MISSING, REDIS_SERVER


def test_the_machine_has_a_redis_server_that_runs_the_fleet_s_scripts() -> None:
    if MISSING is not None:
        # CI installs redis-server (.ci/run): there the fleet tests must run, not skip.
        if os.environ.get("CI"):
            pytest.fail(f"{MISSING}; in CI the fleet tests must run")
        pytest.skip(MISSING)
    assert REDIS_SERVER is not None
    version = subprocess.run(
        [REDIS_SERVER, "--version"], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    found = re.search(r"v=(\d+)\.(\d+)", version)
    assert found is not None, version
    # The slots' Lua scripts read the server's clock (TIME) before writing: Redis >= 5.
    assert (int(found[1]), int(found[2])) >= (5, 0), version
