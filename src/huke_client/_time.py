"""Points in time as Huke's wire takes them: Unix epoch milliseconds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

__all__ = ["TimeLike", "to_epoch_ms", "window_ms"]

#: A point in time: a ``datetime`` (naive = local time) or Unix epoch milliseconds.
TimeLike = datetime | int

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)


def to_epoch_ms(value: TimeLike, name: str = "time") -> int:
    """Unix epoch milliseconds for a ``datetime`` (naive means local time, as
    ``datetime.timestamp()`` assumes) or an ``int`` that already is epoch milliseconds."""
    if isinstance(value, datetime):
        aware = value if value.utcoffset() is not None else value.astimezone()
        return (aware - _EPOCH) // _ONE_MS
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{name} must be epoch milliseconds >= 0, got {value}")
        return value
    raise TypeError(
        f"{name} must be a datetime or epoch milliseconds (int), not {type(value).__name__}"
    )


def window_ms(window: timedelta | None) -> int | None:
    """A window's length in whole milliseconds (``None``: no window, the range at once)."""
    return None if window is None else window // _ONE_MS
