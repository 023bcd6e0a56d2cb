"""Text for messages and reports, and wire values read as text: the one home of both.

Every message the SDK builds from data it received (a body, a value, a path, an id) is cut to a
bounded length here, the same way: whitespace runs become one space and a cut ends in ``…``.
"""

from __future__ import annotations

import math
from typing import Any

ELLIPSIS = "…"


def shorten(text: str, limit: int) -> str:
    """``text`` as is when it has at most ``limit`` characters, else cut to ``limit`` with ``…``."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + ELLIPSIS


def one_line(text: str | bytes | None, limit: int, *, none: str = "") -> str:
    """``text`` on one line (whitespace runs collapsed) and at most ``limit`` characters; bytes
    are decoded as UTF-8 with replacement, ``None`` gives ``none``."""
    if text is None:
        return none
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return shorten(" ".join(text.split()), limit)


def short_repr(value: Any, limit: int) -> str:
    """``repr(value)`` cut to ``limit`` characters, for one line of a message."""
    return shorten(repr(value), limit)


def wire_text(value: Any) -> str | None:
    """A wire value as text: text as is, integers and finite floats in decimal, else ``None``.

    Ids arrive as text or numbers depending on the endpoint; booleans, lists and objects are not
    identifiers or names, so they do not silently become ``"True"`` or ``"[1, 2]"``; nor do the
    non-finite floats a lenient JSON parser reads from ``NaN`` / ``Infinity`` become ``"nan"``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(value)
    return None


def plural(count: int, word: str, many: str | None = None, *, counted: bool = True) -> str:
    """``count`` and ``word`` in the form the count takes: ``"1 row"``, ``"0 rows"``, ``"2 rows"``.

    ``many`` is the plural when it is not ``word + "s"`` (``plural(n, "entry", "entries")``);
    ``counted=False`` gives the word alone, for text that names the items instead of counting
    them (``f"missing {plural(len(names), 'setting', counted=False)} {', '.join(names)}"``).
    """
    form = word if count == 1 else many if many is not None else word + "s"
    return f"{count} {form}" if counted else form
