"""How ``FakeHuke`` reports a ``trade/searchTrades`` page, and how it can misreport one: the
page as served (``ServedPage``, what ``on_page`` hooks see) and ``ListingFault``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

import attrs

__all__ = [
    "LISTING_FAULT_KINDS",
    "NO_DATA",
    "ListingFault",
    "PageHook",
    "ServedPage",
    "misreport",
]


@attrs.frozen
class ServedPage:
    """A ``trade/searchTrades`` page the fake has just made, as its ``on_page`` hooks see it.

    ``total`` is the number of trades in the range when the page was made (also for the data
    shapes that do not send it); ``trades`` are the page's wire trades (copies).
    """

    start_ms: int
    end_ms: int
    page: int
    page_size: int
    total: int
    trades: tuple[dict[str, Any], ...]

    @property
    def tids(self) -> list[Any]:
        """The ``tid`` of each trade on the page (``None`` where a trade has none)."""
        return [t.get("tid") for t in self.trades]


PageHook = Callable[[ServedPage], object]

#: What ``ListingFault`` can do to a page (see its docstring).
LISTING_FAULT_KINDS = ("no_data", "null_data", "empty", "short", "total")


class _Absent(Enum):
    NO_DATA = "NO_DATA"

    def __repr__(self) -> str:
        return "NO_DATA"


#: What a route returns for a success envelope without a ``data`` key at all.
NO_DATA = _Absent.NO_DATA


class ListingFault:
    """A way ``FakeHuke`` misreports ``trade/searchTrades`` pages; made by
    ``FakeHuke.listing_fault``. It strikes each page that matches (``page``, ``when``) until it has
    struck ``times`` pages (``None``: no limit) or is ``cancel()``-ed. ``kind`` is one of:

    * ``"no_data"``: a success envelope without a ``data`` key;
    * ``"null_data"``: a success envelope whose ``data`` is null;
    * ``"empty"``: the page holds no trades (the total, if sent, is the true one);
    * ``"short"``: the page holds one trade less than it should (its last one is left out);
    * ``"total"``: the total sent is ``total`` (an int, or a function of the ``ServedPage``)
      instead of the true one; visible only with ``data_shape="object"``.

    Faults strike in the order they were added; a page with no ``data`` ends that order.
    """

    def __init__(
        self,
        kind: str,
        *,
        page: int | None = None,
        times: int | None = None,
        when: Callable[[ServedPage], bool] | None = None,
        total: int | Callable[[ServedPage], int] | None = None,
    ) -> None:
        if kind not in LISTING_FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(LISTING_FAULT_KINDS)}, not {kind!r}")
        if (kind == "total") != (total is not None):
            raise ValueError('total= is required by kind="total" and only by it')
        if page is not None and page < 1:
            raise ValueError(f"page must be >= 1 (or None for every page), got {page}")
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 (or None for no limit), got {times}")
        self.kind = kind
        self.page = page
        self.times = times
        self.when = when
        self.total = total
        #: The pages struck so far, as they were made (before the fault).
        self.struck: list[ServedPage] = []
        self._cancelled = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"ListingFault({self.kind!r}, page={self.page!r}, times={self.times!r}, "
            f"struck={len(self.struck)}, active={self.active})"
        )

    @property
    def active(self) -> bool:
        """Whether it may still strike."""
        return not self._cancelled and (self.times is None or len(self.struck) < self.times)

    def cancel(self) -> None:
        """Strike no more pages."""
        self._cancelled = True

    def _strikes(self, served: ServedPage) -> bool:
        if self.page is not None and served.page != self.page:
            return False
        if self.when is not None and not self.when(served):
            return False
        with self._lock:
            if not self.active:
                return False
            self.struck.append(served)
        return True

    def _total_for(self, served: ServedPage) -> int:
        assert self.total is not None  # checked in __init__
        return self.total(served) if callable(self.total) else self.total


def misreport(
    faults: Iterable[ListingFault], served: ServedPage, items: list[dict[str, Any]], total: int
) -> tuple[list[dict[str, Any]], int] | _Absent | None:
    """What page ``served`` (``items`` of ``total``) becomes under ``faults``, in order: the
    items and total to send, ``NO_DATA`` (no ``data`` key) or ``None`` (a null ``data``)."""
    for fault in faults:
        if not fault._strikes(served):
            continue
        if fault.kind == "no_data":
            return NO_DATA
        if fault.kind == "null_data":
            return None
        if fault.kind == "empty":
            items = []
        elif fault.kind == "short":
            items = items[:-1]
        else:
            total = fault._total_for(served)
    return items, total
