"""Time-window arithmetic: how a range of epoch milliseconds is cut into the windows fetched.

Kept apart from the ledger and the engine because it is pure arithmetic on milliseconds that both
use (the ledger to describe a window in an error, the engine to plan and report the range), and
``split_windows`` is public for callers who schedule their own windows.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo

from _huke_k3_core import split_range

#: The scheme's window: trades of the last 72,000 seconds (20 hours).
DEFAULT_SPAN = timedelta(seconds=72_000)
#: Longer ranges are fetched as consecutive windows of at most this length.
DEFAULT_WINDOW = timedelta(days=1)
ONE_MS = timedelta(milliseconds=1)


def ms_to_datetime(ms: int, zone: tzinfo | None = None) -> datetime:
    """Epoch milliseconds as an aware datetime in ``zone`` (default: local time), exactly (no
    float rounding)."""
    utc = datetime.fromtimestamp(ms // 1000, tz=timezone.utc) + timedelta(milliseconds=ms % 1000)
    return utc.astimezone(zone)


def zone_of(*moments: object) -> tzinfo | None:
    """The time zone a range was given in: that of the first aware ``datetime`` among
    ``moments``; ``None`` (local time) when each is naive, epoch milliseconds or absent."""
    for moment in moments:
        if isinstance(moment, datetime) and moment.utcoffset() is not None:
            return moment.tzinfo
    return None


def split_windows(start_ms: int, end_ms: int, window: timedelta | None) -> list[tuple[int, int]]:
    """Consecutive inclusive ``[a, b]`` ranges covering ``[start_ms, end_ms]``, each at most
    ``window`` long (the same split as ``huke_client``'s ``window=``)."""
    if window is None:
        return [(start_ms, end_ms)]
    width = window // ONE_MS
    if width < 1:
        raise ValueError(f"window must be at least 1 ms, got {window!r}")
    return list(split_range(start_ms, end_ms, width))


def subdivide(start_ms: int, end_ms: int, parts: int) -> list[tuple[int, int]]:
    """``[start_ms, end_ms]`` cut into at most ``parts`` consecutive inclusive ranges of (nearly)
    equal length, for fetching them side by side."""
    width = end_ms - start_ms + 1
    parts = max(1, min(parts, width))
    bounds = [start_ms + width * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(parts)]
