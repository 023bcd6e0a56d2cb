"""The fleet on real parts: a real ``redis-server`` on a free loopback port, real ``celery worker``
processes, the simulators behind real sockets served by this process.

Skipped as a whole, with one line saying how to enable it, where ``redis-server`` or Celery is
missing. Every wait is bounded; every process started here is killed by its fixture.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .simulated import Shop, Simulators, start_simulators

REDIS_SERVER = shutil.which("redis-server")


def _missing() -> str | None:
    """Why the fleet tests cannot run here, or ``None``."""
    if REDIS_SERVER is None:
        return "fleet tests skipped: redis-server not found (apt-get install redis-server)"
    if importlib.util.find_spec("celery") is None or importlib.util.find_spec("redis") is None:
        return "fleet tests skipped: celery not installed (pip install -e '.[celery]')"
    return None


#: Why the fleet tests are skipped here: test_requirements.py reports it, once; the other
#: modules (they import Celery) are not collected.
MISSING = _missing()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if MISSING is not None and collection_path.name != "test_requirements.py":
        return collection_path.name.startswith("test_") or None
    return None


#: Short, so a killed worker's task comes back within seconds (Redis: visibility timeout).
VISIBILITY_TIMEOUT = 4
#: The fleet's settings for the tests: short slots, waits and backoff.
FLEET_ENV = {
    "HUKE_K3_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
    "HUKE_K3_SLOT_TTL": "2",
    "HUKE_K3_SLOT_WAIT": "0.3",
    "HUKE_K3_RETRY_BACKOFF": "0.2",
    "HUKE_K3_RETRY_BACKOFF_MAX": "1",
    "HUKE_K3_MAX_RETRIES": "2",
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """``condition()``'s first true value, polled; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes], *, group: bool) -> None:
    """Kill ``process`` (its whole process group when ``group``) and reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway ``redis-server`` on a free loopback port, nothing saved to disk."""
    import redis

    assert REDIS_SERVER is not None
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_timeout=1)

        def answers() -> bool:
            with contextlib.suppress(redis.ConnectionError):
                return bool(client.ping())
            return False

        wait_until(answers, 10, "redis-server to answer")
        client.close()
        yield url
    finally:
        _stop(process, group=False)


@pytest.fixture(scope="session")
def simulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulators]:
    """The shops' Huke accounts and the two K/3 Cloud accounts, behind loopback sockets, and
    the tenants file naming them."""
    with start_simulators(tmp_path_factory.mktemp("tenants")) as running:
        yield running


@pytest.fixture(scope="session")
def fleet_env(redis_url: str, simulators: Simulators) -> dict[str, str]:
    """The environment of the workers (and of this process's dispatcher): broker, tenants file,
    the shops' secrets, the short test settings."""
    return {
        "HUKE_K3_BROKER_URL": redis_url,
        "HUKE_K3_TENANTS": str(simulators.tenants_path),
        **FLEET_ENV,
        **simulators.secrets,
    }


@pytest.fixture(scope="session")
def fleet_app(fleet_env: dict[str, str]) -> Iterator[Any]:
    """This process's Celery app, configured as the workers' is."""
    from huke_k3_bridge.celery import make_app

    app = make_app(fleet_env)
    yield app
    # A result unsubscribes from Redis when collected: now, while Redis answers (Celery 5.4
    # would retry each one for minutes once it is gone).
    gc.collect()
    app.close()


class Workers:
    """``celery -A huke_k3_bridge.celery worker`` processes, each in its own process group (so
    a SIGKILL takes its pool with it, as when its machine dies)."""

    def __init__(self, app: Any, env: dict[str, str], logs: Path) -> None:
        self._app = app
        self._env = {**os.environ, **env}
        self._logs = logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, *names: str) -> None:
        for name in names:
            log = open(self._logs / f"{name}.log", "ab")  # noqa: SIM115 - the process owns it
            self.processes[name] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "huke_k3_bridge.celery",
                    "worker",
                    "--pool",
                    "prefork",
                    "--concurrency",
                    "2",
                    "--hostname",
                    name,
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel",
                    "INFO",
                ],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
        wait_until(lambda: self._answering(names), 30, f"workers {names} to answer a ping")

    def _answering(self, names: tuple[str, ...]) -> bool:
        replies = self._app.control.ping(destination=list(names), timeout=0.5) or []
        answered = {name for reply in replies for name in reply}
        return answered >= set(names)

    def stop_consuming(self, name: str) -> None:
        """Make the worker take no more messages, and let its last fetch finish.

        kombu's Redis transport pops a message (BRPOP) before it records it as unacknowledged: a
        message on its way into a worker killed at that instant is lost, whatever the task's
        settings (celery/kombu#305). The fleet covers that with its progress (the window is not
        completed, so the next since-last dispatch plans it again); this test is about
        redelivery, so its kill does not race the fetches."""
        self._app.control.cancel_consumer("celery", destination=[name], reply=True, timeout=2)
        time.sleep(1.5)  # kombu's BRPOP waits at most 1 s

    def kill(self, name: str) -> None:
        """SIGKILL the worker and its pool processes."""
        _stop(self.processes.pop(name), group=True)

    def logs(self) -> str:
        """The end of every worker's log, to tell why a test failed."""
        return "\n".join(
            f"== {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self._logs.glob("*.log"))
        )

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.kill(name)


@pytest.fixture(scope="session")
def workers(
    fleet_app: Any, fleet_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workers]:
    """Two workers, concurrency 2 each."""
    running = Workers(fleet_app, fleet_env, tmp_path_factory.mktemp("workers"))
    try:
        running.start("w1@fleet", "w2@fleet")
        yield running
    finally:
        running.stop_all()


__all__ = ["Shop", "Simulators", "Workers", "wait_until"]
