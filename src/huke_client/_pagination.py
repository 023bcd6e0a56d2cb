"""Where the trades are in a page, when to ask for the next one, and how a range is split.

The shape of ``data`` in a ``trade/searchTrades`` reply is not public, so it is detected: a bare
list, or an object holding the list under one of ``LIST_KEYS`` (optionally with a total under one
of ``TOTAL_KEYS``). Nothing here does I/O; the sync and async clients both drive ``PagePlan``.

Pages are offsets into a listing that may change while it is read. When the replies carry a
total and it drops between two pages of one window, ``PagePlan`` reads that window again from
page 1 (at most ``max_restarts`` times, then ``HukeConsistencyError``): a trade removed from the
part already read would otherwise shift a later one out of sight. A total that grows is accepted:
an insertion can only shift a trade into a later page (seen twice, never lost), and on a busy shop
a window that ends "now" grows all the time, so restarting on growth would never finish. Without
a total no change can be seen, and none is acted on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from _huke_k3_core import dumps, snippet

from ._errors import HukeConsistencyError, HukePageLimitError, HukeResponseError

__all__ = [
    "DEFAULT_MAX_RESTARTS",
    "LIST_KEYS",
    "TOTAL_KEYS",
    "PageData",
    "PagePlan",
    "Restart",
    "describe_window",
    "extract_page",
    "has_next",
    "windows",
]

#: Keys that may hold the list of trades inside an object ``data``, tried in this order.
LIST_KEYS = ("list", "trades", "records", "rows", "items", "data")
#: Keys that may hold the total number of matching trades, tried in this order.
TOTAL_KEYS = ("total", "totalCount", "count")
#: Default cap on how many times one window is read again because its listing changed.
DEFAULT_MAX_RESTARTS = 3


@attrs.frozen
class PageData:
    """The items of one page and, when the server said, the total across all pages."""

    items: list[Any]
    total: int | None


def _shape_error(where: str, data: Any, reason: str, redact: Callable[[str], str]) -> Exception:
    body = redact(snippet(dumps(data)))
    return HukeResponseError(f"{where}: {reason}; received: {body}", body=body)


def _total(data: Mapping[str, Any], where: str, redact: Callable[[str], str]) -> int | None:
    for key in TOTAL_KEYS:
        if key not in data or data[key] is None:
            continue
        value = data[key]
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise _shape_error(
            where, data, f"data[{key!r}] should be a non-negative count, not {value!r}", redact
        )
    return None


def extract_page(
    data: Any,
    *,
    where: str,
    items_key: str | None = None,
    redact: Callable[[str], str] = str,
) -> PageData:
    """The list of items (and the total, if any) in a reply's ``data``.

    ``None`` counts as an empty page: a successful envelope with no data carries no trades.
    Raises ``HukeResponseError`` naming the keys it saw when the shape is anything else.
    """
    if data is None:
        return PageData([], None)
    if isinstance(data, list):
        return PageData(data, None)
    if isinstance(data, Mapping):
        candidates = (items_key,) if items_key is not None else LIST_KEYS
        for key in candidates:
            if isinstance(data.get(key), list):
                return PageData(data[key], _total(data, where, redact))
        keys = ", ".join(repr(k) for k in data) or "none"
        wanted = (
            f"a list under {items_key!r} (items_key)"
            if items_key is not None
            else f"a list, or an object with a list under one of {', '.join(LIST_KEYS)} "
            "(pass items_key= to name another key)"
        )
        raise _shape_error(
            where,
            data,
            f"cannot find the items in data: expected {wanted}; its keys: {keys}",
            redact,
        )
    raise _shape_error(
        where, data, f"data should be a list or an object, not {type(data).__name__}", redact
    )


def has_next(*, count: int, page_size: int, total: int | None, seen: int) -> bool:
    """Whether to ask for the next page after one that held ``count`` items.

    ``seen`` counts the items received in this range so far, this page included. An empty page
    ends the range. With a known ``total`` the range ends once ``seen`` reaches it; a short page
    before that does not end it (the server may cap page sizes below what was asked, and stopping
    there would lose trades; the cost is at most one extra, empty, request). Without a total, a
    short page ends the range. A full page never does.
    """
    if count == 0:
        return False
    if total is not None:
        return seen < total
    return count >= page_size


def windows(start_ms: int, end_ms: int, window_ms: int | None) -> Iterator[tuple[int, int]]:
    """Consecutive, non-overlapping, inclusive ``[a, b]`` ranges covering ``[start_ms, end_ms]``.

    Each is ``window_ms`` long (``[a, a + w - 1]``) except the last, which ends at ``end_ms``.
    """
    if start_ms > end_ms:
        raise ValueError(f"start ({start_ms}) is after end ({end_ms})")
    if window_ms is None:
        yield start_ms, end_ms
        return
    if window_ms < 1:
        raise ValueError(f"window must be at least 1 ms, got {window_ms} ms")
    low = start_ms
    while low <= end_ms:
        high = min(low + window_ms - 1, end_ms)
        yield low, high
        low = high + 1


def describe_window(start_ms: int, end_ms: int) -> str:
    """``[start_ms, end_ms] ms (<UTC start> .. <UTC end>)``: a window as messages name it."""

    def utc(ms: int) -> str:
        moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    return f"[{start_ms}, {end_ms}] ms ({utc(start_ms)} .. {utc(end_ms)})"


@attrs.frozen
class Restart:
    """A window is read again from page 1: its total dropped from ``before`` to ``after`` on
    page ``page``. This is restart ``number`` of at most ``max_restarts`` for the window."""

    window: tuple[int, int]
    page: int
    before: int
    after: int
    number: int
    max_restarts: int

    def message(self) -> str:
        """Why the window is read again, for a log line."""
        return (
            f"trade/searchTrades {describe_window(*self.window)}: the total dropped from "
            f"{self.before} to {self.after} by page {self.page}, so trades were removed while "
            "the window was read and its later pages shifted; reading the window again "
            f"from page 1 (restart {self.number} of at most {self.max_restarts}); trades "
            "already yielded may repeat"
        )


class PagePlan:
    """Which (range, page) to fetch next, across windows, and when to stop.

    Drive it with ``next_call()`` then ``record(...)`` for each page fetched. ``next_call`` raises
    ``HukePageLimitError`` rather than exceed ``max_pages`` when more pages are needed.

    A window whose total drops between two of its pages is read again from page 1 (``record``
    returns a ``Restart``); after ``max_restarts`` such restarts of one window, ``record`` raises
    ``HukeConsistencyError``. A growing total is followed, not restarted for (see the module
    docstring). Pages without a total are never compared.
    """

    def __init__(
        self,
        ranges: Iterable[tuple[int, int]],
        *,
        max_pages: int,
        max_restarts: int = DEFAULT_MAX_RESTARTS,
    ) -> None:
        if max_pages < 1:
            raise ValueError(f"max_pages must be >= 1, got {max_pages}")
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"max_restarts must be an int >= 0, got {max_restarts!r}")
        self.max_pages = max_pages
        self.max_restarts = max_restarts
        self.pages_fetched = 0
        #: Restarts so far, across every window.
        self.restarts = 0
        self._ranges = iter(ranges)
        self._current = next(self._ranges, None)
        self._open_window()

    def _open_window(self) -> None:
        self._window_restarts = 0
        # Each total reported by the current window, consecutive repeats once.
        self._totals: list[int] = []
        self._begin_pass()

    def _begin_pass(self) -> None:
        self._page = 1
        self._seen = 0
        # The highest total this reading of the window has seen; a lower one means trades left.
        self._pass_total: int | None = None

    def next_call(self) -> tuple[int, int, int] | None:
        """``(start_ms, end_ms, page)`` of the next request, or ``None`` when all is fetched."""
        if self._current is None:
            return None
        if self.pages_fetched >= self.max_pages:
            start, end = self._current
            raise HukePageLimitError(
                f"trade/searchTrades needs more than max_pages={self.max_pages} pages (next: page "
                f"{self._page} of range [{start}, {end}] ms); raise max_pages or narrow the range "
                "(window=) so that nothing is silently left out",
                max_pages=self.max_pages,
            )
        return (*self._current, self._page)

    def record(self, *, count: int, page_size: int, total: int | None) -> Restart | None:
        """Account for the page just fetched (``count`` items; ``total`` if the server said).

        Returns a ``Restart`` when the total is lower than this reading of the window has seen
        (the next call is then page 1 of the same window), else ``None``. Raises
        ``HukeConsistencyError`` instead when the window was already restarted ``max_restarts``
        times.
        """
        self.pages_fetched += 1
        if total is not None:
            if not self._totals or self._totals[-1] != total:
                self._totals.append(total)
            if self._pass_total is not None and total < self._pass_total:
                return self._restart(before=self._pass_total, after=total)
            self._pass_total = total
        self._seen += count
        if has_next(count=count, page_size=page_size, total=total, seen=self._seen):
            self._page += 1
        else:
            self._current = next(self._ranges, None)
            self._open_window()
        return None

    def _restart(self, *, before: int, after: int) -> Restart:
        assert self._current is not None  # record() follows a next_call() that returned a call
        if self._window_restarts >= self.max_restarts:
            totals = ", ".join(str(t) for t in self._totals)
            raise HukeConsistencyError(
                f"trade/searchTrades {describe_window(*self._current)}: the listing kept "
                f"changing while it was read (totals seen: {totals}), even after reading it again "
                f"max_restarts={self.max_restarts} times; offset pages over a changing listing "
                "can skip trades, so this stops rather than lose one silently; retry later, or "
                "narrow the range (window=)",
                window=self._current,
                totals_seen=tuple(self._totals),
                max_restarts=self.max_restarts,
            )
        self._window_restarts += 1
        self.restarts += 1
        restart = Restart(
            window=self._current,
            page=self._page,
            before=before,
            after=after,
            number=self._window_restarts,
            max_restarts=self.max_restarts,
        )
        self._begin_pass()
        return restart
