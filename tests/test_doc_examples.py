"""Every Python example in README.md and docs/ runs as written, and prints what the page shows.

Blocks of one page run in order in one namespace, as a reader would paste them. A block right after
an HTML comment ``<!-- not run: reason -->`` is skipped (it needs real credentials or a network).
A ``text`` block right after a Python block is its output: what the block prints must be exactly
that.
"""

from __future__ import annotations

import contextlib
import io
import re
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


@pytest.mark.parametrize("page", [p for p in PAGES if runnable_blocks(p)], ids=lambda p: p.name)
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
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
