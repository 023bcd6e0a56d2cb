"""Where a run starts and ends, and the watermark it stores: no client I/O, only the state's.

A run fetches ``[start, end]``: ``start`` given, else the stored watermark (checked: a broken
state is an error, never a run that silently skips) less the state's overlap, else ``end``
less the scheme's 20 hours. When it ends, the watermark moves to the end of the last window
that, like every window before it, fully succeeded: never backwards, never past "now".
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from huke_client import to_epoch_ms

from ._errors import StateError, error_text
from ._options import SyncOptions
from ._state import State
from ._windows import DEFAULT_SPAN, ONE_MS, ms_to_datetime, split_windows, subdivide

#: A stored watermark at most this far ahead of the clock is a clock step: taken as "now".
WATERMARK_SKEW = timedelta(minutes=5)
#: No Huke trade is older than this: an earlier watermark is a broken state, not a position.
_EARLIEST_MS = 946_684_800_000  # 2000-01-01T00:00:00Z


@attrs.frozen
class RunRange:
    """The range a run fetches, in windows, and where its watermark stood."""

    start_ms: int
    end_ms: int
    resumed_from: datetime | None
    stored_ms: int | None
    #: "Now" when the fetch started: no watermark is stored beyond it, whatever ``end`` said.
    now_ms: int
    #: The windows fetched one after the other (or side by side, ``split`` apart).
    windows: list[tuple[int, int]]
    #: What the report should say about the range (a watermark ahead of the clock ...).
    notes: list[str]
    #: The stored watermark was ahead of the clock: it is replaced even by an earlier one.
    rewind: bool = False

    def store(
        self, state: State | None, good_until: int | None, errors: list[str]
    ) -> datetime | None:
        """Store the watermark the run reached (``good_until``, when it is any progress); the
        watermark stored, or None. A state that cannot be written is one more run error."""
        if good_until is None or state is None:
            return None
        # Trades stamped after the fetch started may still be arriving: never past that moment.
        good_until = min(good_until, self.now_ms)
        if not (self.stored_ms is None or good_until > self.stored_ms or self.rewind):
            return None
        moment = ms_to_datetime(good_until)
        try:
            state.save(moment)
        except Exception as exc:
            errors.append(f"could not store the watermark: {error_text(exc)}")
            return None
        return moment


def _check_watermark(stored_ms: int, now_ms: int, state: State, notes: list[str]) -> int:
    """The stored watermark, clamped to now when a clock step put it slightly ahead; a
    ``StateError`` when it cannot be a real position (never a run that silently skips)."""
    where = f" in {state!r}"
    fix = (
        "pass start= (huke-k3 sync --start) to choose where to resume, or delete the state to "
        "start from the default window"
    )
    if stored_ms < _EARLIEST_MS:
        raise StateError(
            f"the stored watermark{where} ({stored_ms} ms since the epoch) is before 2000: it "
            f"is not a position a sync could have reached; {fix}"
        )
    if stored_ms > now_ms + WATERMARK_SKEW // ONE_MS:
        raise StateError(
            f"the stored watermark{where} is {ms_to_datetime(stored_ms).isoformat()}, later "
            f"than now ({ms_to_datetime(now_ms).isoformat()}): resuming there would skip every "
            f"trade before it; {fix}"
        )
    if stored_ms > now_ms:
        notes.append(
            f"the stored watermark {ms_to_datetime(stored_ms).isoformat()} was ahead of the "
            f"clock ({ms_to_datetime(now_ms).isoformat()}); resumed from now instead"
        )
        return now_ms
    return stored_ms


def plan_range(options: SyncOptions, *, split: int = 1) -> RunRange:
    """The range ``options`` ask for, read against the clock and the stored watermark, in
    windows of ``options.window`` (each cut in ``split`` parts fetched side by side)."""
    state = options.state
    now_ms = int(options.clock() * 1000)
    end_ms = to_epoch_ms(options.end, "end") if options.end is not None else now_ms
    stored = state.load() if state is not None else None
    stored_ms = None if stored is None else to_epoch_ms(stored, "watermark")
    notes: list[str] = []
    rewind = False
    if stored_ms is not None and state is not None:
        checked = _check_watermark(stored_ms, now_ms, state, notes)
        rewind, stored_ms = checked != stored_ms, checked
    resumed_from = None
    if options.start is not None:
        start_ms = to_epoch_ms(options.start, "start")
        if start_ms > end_ms:
            raise ValueError(
                f"start {ms_to_datetime(start_ms).isoformat()} is after end "
                f"{ms_to_datetime(end_ms).isoformat()}"
            )
    elif stored_ms is not None and state is not None:
        start_ms = max(stored_ms - state.overlap // ONE_MS, 0)
        resumed_from = ms_to_datetime(start_ms)
    else:
        start_ms = max(end_ms - DEFAULT_SPAN // ONE_MS, 0)
    if start_ms > end_ms:
        # Only a stored watermark gets here (an explicit start after end is refused above).
        notes.append(
            f"nothing to fetch: the stored watermark {ms_to_datetime(start_ms).isoformat()} "
            f"(less its overlap) is after end {ms_to_datetime(end_ms).isoformat()}"
        )
    windows = split_windows(start_ms, end_ms, options.window) if start_ms <= end_ms else []
    if split > 1:
        windows = [part for a, b in windows for part in subdivide(a, b, split)]
    return RunRange(start_ms, end_ms, resumed_from, stored_ms, now_ms, windows, notes, rewind)
