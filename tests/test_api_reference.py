"""The API reference as built: every docstring example is a code block, with no doctest noise.

Docstring examples written as doctest (``>>> ...  # doctest: +SKIP``) reach the mkdocs site as
nested quotes showing the directive; reST's ``text::`` literal blocks leave a stray ``::``; a
fence that is not at the docstring's own indentation stays as text. The site is built once, as
``scripts/test`` builds it, and every page under ``reference/`` is read for those patterns.
"""

from __future__ import annotations

import ast
import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

_PRE = re.compile(r"<pre\b.*?</pre>", re.DOTALL)
_INLINE_CODE = re.compile(r"<code\b.*?</code>", re.DOTALL)
_BLOCKQUOTE = re.compile(r"<blockquote>.*?</blockquote>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
#: Text of a docstring example that is not in a code block: a doctest prompt or continuation
#: line, a reST literal-block marker, a fence left as text.
_LOOSE_EXAMPLE = re.compile(r"&gt;&gt;&gt;|>>>|^\.\.\. |::</p>|```", re.MULTILINE)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The built site's reference pages: path under ``reference/`` -> HTML."""
    for module in ("mkdocs", "mkdocstrings", "material"):
        pytest.importorskip(module, reason=f"{module} is not installed (pip install '.[docs]')")
    site = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, f"mkdocs build failed:\n{built.stdout}\n{built.stderr}"
    pages = {
        page.relative_to(site / "reference").as_posix(): page.read_text(encoding="utf-8")
        for page in sorted((site / "reference").rglob("*.html"))
    }
    assert len(pages) >= 4, f"reference pages missing: {sorted(pages)}"
    return pages


def loose_examples(page: str) -> list[str]:
    """What on one page looks like a docstring example but is not in a code block."""
    problems = []
    if "doctest:" in page:
        problems.append("a doctest directive (doctest: +SKIP) is shown")
    for quote in _BLOCKQUOTE.findall(page):
        # Markdown reads a line's ">>>" as three nested quotes: what a doctest turns into.
        if "&gt;&gt;&gt;" in quote or re.match(r"<blockquote>\s*<blockquote>", quote):
            problems.append(f"a doctest rendered as a quote: {_text(quote)[:120]!r}")
    prose = _INLINE_CODE.sub("", _PRE.sub("", page))
    for found in _LOOSE_EXAMPLE.finditer(prose):
        around = prose[max(found.start() - 80, 0) : found.end() + 80]
        problems.append(f"{found[0]!r} outside a code block: {_text(around)!r}")
    return problems


def code_blocks(page: str) -> list[str]:
    """The text of every ``<pre>`` block of a page (highlighting removed)."""
    return [_text(block) for block in _PRE.findall(page)]


def _text(fragment: str) -> str:
    return html.unescape(_TAG.sub("", fragment))


def test_no_reference_page_shows_an_example_outside_a_code_block(
    reference: dict[str, str],
) -> None:
    problems = {name: found for name, page in reference.items() if (found := loose_examples(page))}
    assert not problems, problems


@pytest.mark.parametrize(
    ("page", "snippet"),
    [
        ("huke_client/index.html", "for trade in client.iter_trades(start=start, end=end):"),
        ("huke_client/index.html", "async for trade in client.iter_trades("),
        ("huke_client/index.html", "# '849685B5801196A6'"),
        ("huke_k3_bridge/index.html", 'state=FileState("huke-k3.json")'),
        ("huke_k3_bridge/index.html", 'raise SkipTrade("not paid yet")'),
        ("huke_k3_bridge/index.html", "transform = CustomerTransform(description=unique_ids)"),
        ("k3cloud_client/index.html", 'filters.eq("FForbidStatus", "A")'),
    ],
)
def test_docstring_examples_are_code_blocks(
    reference: dict[str, str], page: str, snippet: str
) -> None:
    blocks = code_blocks(reference[page])
    assert any(snippet in block for block in blocks), f"{snippet!r} in no code block of {page}"


def test_the_checks_catch_what_a_doctest_example_renders_as() -> None:
    """What the site showed for ``>>> ...  # doctest: +SKIP`` and for a reST ``::`` block."""
    doctest = (
        "<p>Synchronous client.</p>\n<blockquote>\n<blockquote>\n<blockquote>\n<p>with "
        "HukeClient() as client:  # doctest: +SKIP\n...     for trade in client.iter_trades():"
        "</p>\n</blockquote>\n</blockquote>\n</blockquote>"
    )
    assert len(loose_examples(doctest)) >= 3
    assert loose_examples("<p>&gt;&gt;&gt; quote('x')</p>")
    assert loose_examples("<p>return changed copies::</p>\n<div><pre><code>x</code></pre></div>")
    assert loose_examples("<p>```python\nx = 1\n```</p>")
    fenced = '<p>Example:</p><div class="highlight"><pre><code>&gt;&gt;&gt; x\n... y</code></pre>'
    assert loose_examples(fenced) == []
    assert code_blocks(fenced) == [">>> x\n... y"]


def _docstrings() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(
                node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
            ) and (doc := ast.get_docstring(node, clean=False)):
                line = getattr(node, "lineno", 1)
                found.append((path.relative_to(ROOT).as_posix(), line, doc))
    return found


def test_no_docstring_in_src_writes_an_example_as_doctest_or_rest() -> None:
    """Examples in docstrings are fenced ```python blocks, so that the site shows code (a check
    without building, naming the line, for docstrings the reference does not render too)."""
    doctest_line = re.compile(r"^\s*>>> |#\s*doctest:", re.MULTILINE)
    rest_block = re.compile(r"::\n\s*\n", re.MULTILINE)
    found = [
        f"{path}:{line}"
        for path, line, doc in _docstrings()
        if doctest_line.search(doc) or rest_block.search(doc)
    ]
    assert not found, f"docstring examples to write as ```python blocks: {found}"
