"""Durations written as text (``"90s"``, ``"10m"``, ``"6h"``, ``"1d12h"``), read one way everywhere.

The CLI's ``--since``/``--window``/``--wait`` and the tenants file's ``window``/``overlap`` share
this parser, so a duration a user writes in one place means the same in the other.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``"20h"``, ``"90m"``, ``"1d12h"``, ``"30s"``, ``"2w"`` as a ``timedelta``; a
    ``ValueError`` saying how to write one for any other text, and for a duration that is not
    positive."""
    compact = text.strip().replace(" ", "")
    if not compact or _DURATION.sub("", compact):
        raise ValueError(
            f"{text!r} is not a duration; use a number and a unit: 30s, 90m, 20h, 2d, 1w, 1d12h"
        )
    seconds = sum(float(n) * _UNITS[u.lower()] for n, u in _DURATION.findall(compact))
    if seconds <= 0:
        raise ValueError(f"{text!r}: the duration must be positive")
    return timedelta(seconds=seconds)
