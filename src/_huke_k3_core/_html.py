"""Small HTML for notebooks' ``_repr_html_``: a summary, a table of the first rows, details.

Everything given as a value is text and is escaped (received data, messages, numbers alike);
only what these functions return (an ``Html``) is inserted as markup. So a trade whose buyer is
called ``<script>`` shows that name, and never runs it. Long cells are cut, so a table's size
depends on its row count, not on what the rows hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ._text import one_line, plural

__all__ = ["CELL_LIMIT", "Html", "block", "details", "escape", "pairs", "paragraph", "table"]

#: Characters of one table cell shown by default; the rest is cut with ``…``.
CELL_LIMIT = 120
_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}  # as html.escape
)


class Html(str):
    """Markup these functions made: inserted as is where any other value is escaped."""

    __slots__ = ()


def escape(value: object, limit: int | None = None) -> Html:
    """``value`` as HTML text: ``None`` is empty, markup stays plain (``<`` -> ``&lt;``); an
    ``Html`` is kept as it is. With ``limit``, the text is put on one line and cut to it."""
    if isinstance(value, Html):
        return value
    text = "" if value is None else str(value)
    if limit is not None:
        text = one_line(text, limit)
    # Not html.escape: importing the html package loads its table of entities, and these models
    # are imported by programs that never render HTML.
    return Html(text.translate(_ESCAPES))


def block(*parts: object) -> Html:
    """Pieces one after the other, one per line (text escaped, ``None`` left out)."""
    return Html("\n".join(escape(part) for part in parts if part is not None))


def paragraph(text: object, *, bold: object = None) -> Html:
    """``<p>``: ``bold`` first (in bold), then ``text``."""
    head = f"<b>{escape(bold)}</b> " if bold is not None else ""
    return Html(f"<p>{head}{escape(text)}</p>")


def table(
    headers: Sequence[object],
    rows: Iterable[Sequence[object]],
    *,
    caption: object = None,
    more: int = 0,
    more_hint: object = None,
    limit: int = CELL_LIMIT,
) -> Html:
    """A table of ``rows`` under ``headers``, each cell escaped and cut to ``limit`` characters
    (an ``Html`` cell is inserted whole).

    ``caption`` is a line above it. ``more`` counts rows the caller left out: the table ends
    with "N more rows not shown", then ``more_hint`` (e.g. where the rest are).
    """
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell, limit)}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    parts = ["<table>"]
    if caption is not None:
        parts.append(f"<caption>{escape(caption)}</caption>")
    parts.append(f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody>")
    if more > 0:
        note = f"{more} more {plural(more, 'row', counted=False)} not shown"
        if more_hint is not None:
            note += f": {escape(more_hint)}"
        parts.append(f'<tfoot><tr><td colspan="{max(len(headers), 1)}">{note}</td></tr></tfoot>')
    parts.append("</table>")
    return Html("".join(parts))


def pairs(items: Iterable[tuple[object, object]], *, limit: int = CELL_LIMIT) -> Html:
    """A two-column table of names and values, one pair a row (a summary's figures)."""
    rows = "".join(
        f"<tr><th>{escape(name)}</th><td>{escape(value, limit)}</td></tr>" for name, value in items
    )
    return Html(f"<table>{rows}</table>")


def details(summary: object, body: object, *, open: bool = False) -> Html:
    """A part the reader unfolds: ``summary`` always shown, ``body`` (text or ``Html``) on a
    click (at once with ``open=True``)."""
    flag = " open" if open else ""
    return Html(f"<details{flag}><summary>{escape(summary)}</summary>{escape(body)}</details>")
