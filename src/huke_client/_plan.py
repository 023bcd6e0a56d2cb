"""Which page to fetch next, across windows, and when a window's listing is complete.

A window is complete only when its listing ends consistently: on a page shorter than the page
size and, when the replies carry a total, once the trades delivered by this reading of the window
reach it. A full page always asks for the next one, whatever the total says. Anything else is an
inconsistency, and ``PagePlan`` reads the window again from page 1 (at most ``max_restarts``
times, then ``HukeConsistencyError``):

* the total drops between two pages: trades were removed, and a trade removed from the part
  already read would otherwise shift a later one out of sight (``"dropped"``);
* a short or empty page while the total says more has arrived (``"short"``): a page was lost or
  cut short;
* the trades delivered exceed the total (``"overfull"``): the pages or the total are wrong, and
  stopping at the total would drop what follows;
* a page holds more trades than the page size page 1 showed (``"oversized"``, below).

A total that grows is followed: an insertion can only shift a trade into a later page (seen twice,
never lost), and on a busy shop a window that ends "now" grows all the time, so restarting on
growth would never finish. Without a total only the page sizes can be judged: a short page ends
the window.

A server may cap the page size below what was asked. Page 1 shows it: a short page 1 (not empty)
whose total says more is taken as the server's page size, the size later pages of that reading
are judged by. A short page anywhere else, while the total says more, is a lost page. (A page 1
cut short by a fault is caught too, later: the listing then ends short of its total, or a later
page holds more than page 1 did.)
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

import attrs

from _huke_k3_core import plural, split_range

from ._errors import HukeConsistencyError, HukePageLimitError
from .pagination import TRADE_ID_KEYS

__all__ = [
    "DEFAULT_MAX_RESTARTS",
    "RESTART_KINDS",
    "PagePlan",
    "Restart",
    "check_limits",
    "describe_window",
    "search_ranges",
]

#: How many of the latest pages of a reading are remembered to spot a page served again: a
#: stale or ignored page number repeats a recent page (or page 1, which is within reach while
#: it matters). Bounded, so that memory stays flat however long the window.
REPEAT_MEMORY_PAGES = 8


#: Default cap on how many times one window is read again because its listing was inconsistent.
DEFAULT_MAX_RESTARTS = 3
#: Why a window is read again (``Restart.kind``, ``HukeConsistencyError.kind``); see the module.
RESTART_KINDS = ("dropped", "short", "overfull", "oversized", "repeated")


def search_ranges(start_ms: int, end_ms: int, window_ms: int | None) -> Iterator[tuple[int, int]]:
    """The windows a search reads one after the other: ``[start_ms, end_ms]`` split into
    consecutive inclusive ranges ``window_ms`` long (``None``: the whole range at once).

    Unlike ``split_range``, a start after the end is an error here: a search of nothing is
    a caller's mistake, not an empty result.
    """
    if start_ms > end_ms:
        raise ValueError(f"start ({start_ms}) is after end ({end_ms})")
    return split_range(start_ms, end_ms, window_ms)


def check_limits(max_pages: int, max_restarts: int) -> None:
    """``ValueError`` for a ``max_pages`` or ``max_restarts`` no search can run with."""
    if max_pages < 1:
        raise ValueError(f"max_pages must be >= 1, got {max_pages}")
    if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
        raise ValueError(f"max_restarts must be an int >= 0, got {max_restarts!r}")


def describe_window(start_ms: int, end_ms: int) -> str:
    """``[start_ms, end_ms] ms (<UTC start> .. <UTC end>)``: a window as messages name it."""

    def utc(ms: int) -> str:
        moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    return f"[{start_ms}, {end_ms}] ms ({utc(start_ms)} .. {utc(end_ms)})"


@attrs.frozen
class Restart:
    """A window is read again from page 1 because page ``page`` showed its listing inconsistent.
    This is restart ``number`` of at most ``max_restarts`` for the window.

    ``kind`` (one of ``RESTART_KINDS``) says what was wrong, and what ``before`` and ``after`` are:

    * ``"dropped"``: the total fell from ``before`` to ``after``;
    * ``"short"``: the listing ended after ``after`` trades while its total said ``before``;
    * ``"overfull"``: the pages delivered ``after`` trades, more than the total ``before``;
    * ``"oversized"``: the page held ``after`` trades, more than the ``before`` of page 1 (taken
      as the server's page size);
    * ``"repeated"``: ``after`` trades came again in this reading, more than the ``before`` the
      total grew by (an insertion repeats a trade; a page served twice repeats a page).
    """

    window: tuple[int, int]
    page: int
    before: int
    after: int
    number: int
    max_restarts: int
    kind: str = "dropped"

    def problem(self) -> str:
        """What page ``page`` showed, in words."""
        return _problem(self.kind, self.page, self.before, self.after)

    def message(self) -> str:
        """Why the window is read again, for a log line."""
        return (
            f"trade/searchTrades {describe_window(*self.window)}: {self.problem()}; reading "
            f"the window again from page 1 (restart {self.number} of at most "
            f"{self.max_restarts}); trades already yielded may repeat"
        )


def _problem(kind: str, page: int, before: int, after: int) -> str:
    if kind == "dropped":
        return (
            f"the total dropped from {before} to {after} by page {page}, so trades were removed "
            "while the window was read and its later pages shifted"
        )
    if kind == "short":
        return (
            f"the listing ended on page {page} after {plural(after, 'trade')} while its total says "
            f"{before}, so a page was lost or cut short"
        )
    if kind == "overfull":
        return (
            f"the pages delivered {plural(after, 'trade')} by page {page}, more than the total of "
            f"{before}, so the pages or the total are wrong and stopping at the total could "
            "drop trades"
        )
    if kind == "repeated":
        return (
            f"by page {page}, {plural(after, 'trade')} came a second time while the total grew "
            f"by only {before}, so a page was served again in place of another and counting to the total "
            "would end the window on trades never seen"
        )
    return (
        f"page {page} held {plural(after, 'trade')}, more than the {before} of page 1 (taken "
        "as the server's page size), so page 1 was cut short or the server's pages are inconsistent"
    )


class PagePlan:
    """Which (range, page) to fetch next, across windows, and when to stop.

    Drive it with ``next_call()`` then ``record(...)`` for each page fetched. ``next_call`` raises
    ``HukePageLimitError`` rather than exceed ``max_pages`` when more pages are needed.

    A window is complete only when its listing ends consistently (see the module docstring); on
    an inconsistency ``record`` returns a ``Restart`` and the window is read again from page 1.
    After ``max_restarts`` such restarts of one window, ``record`` raises
    ``HukeConsistencyError``. A growing total is followed, not restarted for.
    """

    def __init__(
        self,
        ranges: Iterable[tuple[int, int]],
        *,
        max_pages: int,
        max_restarts: int = DEFAULT_MAX_RESTARTS,
    ) -> None:
        check_limits(max_pages, max_restarts)
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
        # Trade identities delivered by this reading, repeats seen, and how far the total grew:
        # every repeat must be explained by an insertion (which shifts a trade into a later page).
        self._recent: dict[Any, dict[str, Any]] = {}
        self._recent_pages: collections.deque[dict[Any, dict[str, Any]]] = collections.deque()
        self._repeats = 0
        self._grown = 0
        # Items delivered by this reading of the window, the page being recorded included.
        self._seen = 0
        # The highest total this reading of the window has seen; a lower one means trades left.
        self._pass_total: int | None = None
        # The server's page size when page 1 showed it caps below what was asked.
        self._cap: int | None = None

    def next_call(self) -> tuple[int, int, int] | None:
        """``(start_ms, end_ms, page)`` of the next request, or ``None`` when all is fetched."""
        if self._current is None:
            return None
        if self.pages_fetched >= self.max_pages:
            start, end = self._current
            raise HukePageLimitError(
                f"trade/searchTrades needs more than max_pages={plural(self.max_pages, 'page')} "
                f"(next: page {self._page} of range [{start}, {end}] ms); raise max_pages or "
                "narrow the range (window=) so that nothing is silently left out",
                max_pages=self.max_pages,
            )
        return (*self._current, self._page)

    def record(
        self,
        *,
        count: int,
        page_size: int,
        total: int | None,
        items: Sequence[Any] | None = None,
    ) -> Restart | None:
        """Account for the page just fetched (``count`` items; ``total`` if the server said;
        ``items``, the page's wire objects, to spot a page served again).

        Returns a ``Restart`` when the page shows the window's listing inconsistent (the next
        call is then page 1 of the same window), else ``None``. Raises ``HukeConsistencyError``
        instead when the window was already restarted ``max_restarts`` times.
        """
        self.pages_fetched += 1
        if total is not None:
            if not self._totals or self._totals[-1] != total:
                self._totals.append(total)
            if self._pass_total is not None and total < self._pass_total:
                return self._restart("dropped", before=self._pass_total, after=total)
            if self._pass_total is not None:
                self._grown += total - self._pass_total
            self._pass_total = total
        repeats, distinct = self._repeated(items) if items else (0, 0)
        if repeats:
            self._repeats += repeats
            # A page served again in place of the next one would reach the total with trades
            # never seen. With a total, each repeat must be matched by growth; without one, only
            # a page of nothing but repeats is surely wrong (an insertion repeats some).
            if self._repeats > self._grown if total is not None else repeats == distinct:
                return self._restart("repeated", before=self._grown, after=self._repeats)
        self._seen += count
        # A page without a total is judged by the latest total of its window, if any: a reply
        # that stops carrying one (a null page 1, say) must not end the window unjudged.
        known = self._pass_total
        if known is None and self._totals:
            known = self._totals[-1]
        # Offset pages over an honest listing never deliver more than its total, not even when
        # it changes (an insertion raises the total as it shifts a trade into a later page).
        if known is not None and self._seen > known:
            return self._restart("overfull", before=known, after=self._seen)
        if self._cap is not None and count > self._cap:
            return self._restart("oversized", before=self._cap, after=count)
        if count >= (page_size if self._cap is None else self._cap):
            self._page += 1  # full: only the next page shows where the listing ends
            return None
        if known is None or self._seen >= known:
            self._current = next(self._ranges, None)
            self._open_window()
            return None
        if self._page == 1 and count > 0:
            # Short but the total says more: the server serves at most ``count`` per page.
            self._cap = count
            self._page += 1
            return None
        return self._restart("short", before=known, after=self._seen)

    def _repeated(self, items: Sequence[Any]) -> tuple[int, int]:
        """How many of ``items`` (wire trades) a recent page of this reading already served, and
        how many distinct ids the page holds. A trade is the same when its id (the first of
        ``TRADE_ID_KEYS`` the page uses), buyer and creation time are; ids alone are unique per
        shop only. A page holding one trade twice is no repeat: only earlier pages count."""
        first = items[0]
        if type(first) is not dict:
            return 0, 0
        key = next((k for k in TRADE_ID_KEYS if k in first), None)
        if key is None:
            return 0, 0
        # Every page of every window passes here: the loops over a page's trades run in C (a
        # dict comprehension, set operations); Python looks only at ids already seen.
        try:
            page = {item.get(key): item for item in items}
        except (AttributeError, TypeError):  # not objects, or unhashable ids: cannot be told
            return 0, 0
        page.pop(None, None)
        recent = self._recent
        repeats = 0
        for ident in page.keys() & recent.keys():
            before, item = recent[ident], page[ident]
            if before.get("buyerCid") == item.get("buyerCid") and before.get(
                "createTime"
            ) == item.get("createTime"):
                repeats += 1
        recent.update(page)
        self._recent_pages.append(page)
        if len(self._recent_pages) > REPEAT_MEMORY_PAGES:
            for ident in self._recent_pages.popleft().keys() - page.keys():
                recent.pop(ident, None)
        return repeats, len(page)

    def _restart(self, kind: str, *, before: int, after: int) -> Restart:
        assert self._current is not None  # record() follows a next_call() that returned a call
        if self._window_restarts >= self.max_restarts:
            raise self._give_up(kind, before=before, after=after)
        self._window_restarts += 1
        self.restarts += 1
        restart = Restart(
            window=self._current,
            page=self._page,
            before=before,
            after=after,
            number=self._window_restarts,
            max_restarts=self.max_restarts,
            kind=kind,
        )
        self._begin_pass()
        return restart

    def _give_up(self, kind: str, *, before: int, after: int) -> HukeConsistencyError:
        assert self._current is not None
        window = describe_window(*self._current)
        totals = ", ".join(str(t) for t in self._totals) or "none"
        if kind == "dropped":
            message = (
                f"trade/searchTrades {window}: the listing kept changing while it was read "
                f"(totals seen: {totals}), even after reading it again "
                f"max_restarts={plural(self.max_restarts, 'time')}; offset pages over a changing "
                "listing can skip trades, so this stops rather than lose one silently; retry later, or "
                "narrow the range (window=)"
            )
        else:
            message = (
                f"trade/searchTrades {window}: the listing did not end consistently: "
                f"{_problem(kind, self._page, before, after)} (totals seen: {totals}), even "
                f"after reading it again max_restarts={plural(self.max_restarts, 'time')}; this "
                "stops rather than end the window on trades never seen; retry later, or narrow the "
                "range (window=)"
            )
        return HukeConsistencyError(
            message,
            window=self._current,
            totals_seen=tuple(self._totals),
            max_restarts=self.max_restarts,
            kind=kind,
        )
