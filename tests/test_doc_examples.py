"""Every Python example in README.md and docs/ runs as written, and prints what the page shows.

Blocks of one page run in order in one namespace, as a reader would paste them. A block right after
an HTML comment ``<!-- not run: reason -->`` is skipped (it needs real credentials or a network).
A ``text`` block right after a Python block is its output: what the block prints must be exactly
that.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
BLOCK = re.compile(
    r"(?P<skip><!-- not run:[^>]*-->\s*)?```python\n(?P<code>.*?)```"
    r"(?:[ \t]*\n(?:[ \t]*\n)*```text\n(?P<out>.*?)```)?",
    re.DOTALL,
)


def runnable_blocks(page: Path) -> list[tuple[str, str | None]]:
    """Each runnable block's code, and the output the page shows under it (``None``: none)."""
    text = page.read_text(encoding="utf-8")
    return [(m["code"], m["out"]) for m in BLOCK.finditer(text) if not m["skip"]]


#: Pages whose examples run a Celery fleet: they get a Redis server of their own.
NEEDS_REDIS = {"scheduling.md"}


@pytest.fixture(scope="session")
def redis_for_docs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port for the session (the examples' Celery clients
    keep connections open to their end); its URL."""
    directory = tmp_path_factory.mktemp("redis")
    server = shutil.which("redis-server")
    if server is None:
        reason = "redis-server not found (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: in CI the scheduling page's examples must run")
        pytest.skip(reason)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [server, *args, "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.parametrize("page", [p for p in PAGES if runnable_blocks(p)], ids=lambda p: p.name)
def test_page_examples_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.chdir(tmp_path)
    if page.name in NEEDS_REDIS:
        monkeypatch.setenv("HUKE_K3_BROKER_URL", request.getfixturevalue("redis_for_docs"))
    _run_page(page, tmp_path)


def _run_page(page: Path, tmp_path: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"doc_example_{page.stem}"}
    for number, (code, shown) in enumerate(runnable_blocks(page), 1):
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(code, f"{page.name}[block {number}]", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{page.name} block {number} failed: {type(exc).__name__}: {exc}\n{code}")
        if shown is not None:
            assert printed.getvalue() == shown, f"{page.name} block {number} printed otherwise"


def test_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    head = text.split("\n## ", 1)[0]
    assert "scripts/demo" in head
    assert "scripts/test" in head
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/test" in ci
