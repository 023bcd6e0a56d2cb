"""Where the trades are in a page, when to ask for the next one, and how a range is split.

The shape of ``data`` in a ``trade/searchTrades`` reply is not public, so it is detected: a bare
list, or an object holding the list under one of ``LIST_KEYS`` (optionally with a total under one
of ``TOTAL_KEYS``). Nothing here does I/O; the sync and async clients both drive ``PagePlan``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs

from _huke_k3_core import dumps, snippet

from ._errors import HukePageLimitError, HukeResponseError

__all__ = ["LIST_KEYS", "TOTAL_KEYS", "PageData", "PagePlan", "extract_page", "has_next", "windows"]

#: Keys that may hold the list of trades inside an object ``data``, tried in this order.
LIST_KEYS = ("list", "trades", "records", "rows", "items", "data")
#: Keys that may hold the total number of matching trades, tried in this order.
TOTAL_KEYS = ("total", "totalCount", "count")


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


class PagePlan:
    """Which (range, page) to fetch next, across windows, and when to stop.

    Drive it with ``next_call()`` then ``record(...)`` for each page fetched. ``next_call`` raises
    ``HukePageLimitError`` rather than exceed ``max_pages`` when more pages are needed.
    """

    def __init__(self, ranges: Iterable[tuple[int, int]], *, max_pages: int) -> None:
        if max_pages < 1:
            raise ValueError(f"max_pages must be >= 1, got {max_pages}")
        self.max_pages = max_pages
        self.pages_fetched = 0
        self._ranges = iter(ranges)
        self._current = next(self._ranges, None)
        self._page = 1
        self._seen = 0

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

    def record(self, *, count: int, page_size: int, total: int | None) -> None:
        """Account for the page just fetched (``count`` items; ``total`` if the server said)."""
        self.pages_fetched += 1
        self._seen += count
        if has_next(count=count, page_size=page_size, total=total, seen=self._seen):
            self._page += 1
        else:
            self._current = next(self._ranges, None)
            self._page = 1
            self._seen = 0
