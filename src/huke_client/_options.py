"""``SearchOptions``: what a trade search asks for, each option declared once.

``search_trades``, ``iter_trade_pages`` and ``iter_trades`` (sync and async) take these as keyword
arguments (typed by ``SearchKwargs``) or whole, as ``options=SearchOptions(...)``; either way the
call builds one ``SearchOptions``, validated once, and every page of the search reads it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import attrs
from typing_extensions import TypedDict

from _huke_k3_core import FrozenDict, plural

from ._models import SearchTradesRequest, TimeRange
from ._plan import DEFAULT_MAX_RESTARTS, check_limits
from ._time import TimeLike, to_epoch_ms, window_ms

__all__ = [
    "DEFAULT_MAX_PAGES",
    "PAGE_KEYS",
    "PageKwargs",
    "SearchKwargs",
    "SearchOptions",
    "search_body",
    "search_options",
]

#: Default cap on the pages one ``iter_trades`` / ``iter_trade_pages`` call may fetch.
DEFAULT_MAX_PAGES = 100_000
#: Wire fields the search builds itself from its options: ``extra`` may not replace them.
_BUILT_FIELDS = frozenset({"source", "dealerList", "timeRanges"})


class PageKwargs(TypedDict, total=False):
    """The keyword options of ``search_trades`` (one page): ``SearchOptions`` fields."""

    page_size: int
    source: str
    time_type: str
    dealer_list: Iterable[str]
    items_key: str | None
    extra: Mapping[str, Any]


class SearchKwargs(PageKwargs, total=False):
    """The keyword options of ``iter_trade_pages`` and ``iter_trades``: ``SearchOptions`` fields."""

    window: timedelta | None
    max_pages: int
    max_restarts: int


def _dealer_ids(dealers: Iterable[str]) -> tuple[str, ...]:
    if isinstance(dealers, str):
        raise TypeError("dealer_list must be a collection of ids, not one string")
    return tuple(str(d) for d in dealers)


def _check_page_size(_options: object, _field: object, page_size: int) -> None:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise ValueError(f"page_size must be an int >= 1, got {page_size!r}")


def _check_window(_options: object, _field: object, window: timedelta | None) -> None:
    if window is not None and not isinstance(window, timedelta):
        raise TypeError(f"window must be a timedelta, not {type(window).__name__}")


def _wire_fields(extra: Mapping[str, Any]) -> Mapping[str, Any]:
    fields = FrozenDict(extra)
    clash = sorted(_BUILT_FIELDS.intersection(fields))
    if clash:
        raise ValueError(
            f"extra {plural(len(clash), 'field', counted=False)} {', '.join(clash)} would "
            "replace what search_trades builds; "
            "use its keyword arguments (source=, dealer_list=, start=/end=/page=) instead"
        )
    return fields


@attrs.frozen(kw_only=True)
class SearchOptions:
    """The options of a ``trade/searchTrades`` search: pass them as keyword arguments
    (``client.iter_trades(start=..., end=..., page_size=50)``) or as one object
    (``options=SearchOptions(page_size=50)``; keyword arguments given too override its fields).

    A keyword argument that is none of these is an undeclared wire field: it joins ``extra``, as
    ``extra={"shopId": "S9"}`` does. ``search_trades`` (one page) reads the page options only:
    ``window``, ``max_pages`` and ``max_restarts`` are for the iterators (as keyword arguments of
    ``search_trades`` they are wire fields). Invalid values raise ``ValueError`` or ``TypeError``
    when the options are built, before any request.
    """

    #: ``pageSize``: trades per page (at least 1).
    page_size: int = attrs.field(default=100, validator=_check_page_size)
    #: ``source``: the order source (``"2"`` in the integration scheme).
    source: str = attrs.field(default="2", converter=str)
    #: ``timeType``: which timestamp of a trade ``start`` / ``end`` filter on (``"1"`` in the
    #: scheme).
    time_type: str = attrs.field(default="1", converter=str)
    #: ``dealerList``: ids of the employees who closed the deal (empty = all).
    dealer_list: tuple[str, ...] = attrs.field(default=(), converter=_dealer_ids)
    #: The key of ``data`` that holds the trades, when Huke answers in a shape the client does
    #: not detect (see ``huke_client.pagination``).
    items_key: str | None = None
    #: Split ``[start, end]`` into consecutive, non-overlapping ranges this long (millisecond
    #: granularity), paginated in turn; ``None`` reads the range at once.
    window: timedelta | None = attrs.field(default=None, validator=_check_window)
    #: How many pages one call may fetch before ``HukePageLimitError`` (at least 1).
    max_pages: int = DEFAULT_MAX_PAGES
    #: How many times one window is read again because its listing was inconsistent before
    #: ``HukeConsistencyError`` (0 never reads it again).
    max_restarts: int = DEFAULT_MAX_RESTARTS
    #: Top-level wire fields added to the body as given (not ``source``, ``dealerList`` or
    #: ``timeRanges``: the options above build those).
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_wire_fields, hash=False)

    def __attrs_post_init__(self) -> None:
        check_limits(self.max_pages, self.max_restarts)

    # The body of every page but its time range, and the time range but its bounds and page:
    # built once from the wire models, so a page costs two dict copies, not two models.
    @functools.cached_property
    def _body(self) -> dict[str, Any]:
        request = SearchTradesRequest(source=self.source, dealer_list=self.dealer_list)
        return {**request.to_wire(), **self.extra}

    @functools.cached_property
    def _time_range(self) -> dict[str, Any]:
        time_range = TimeRange(
            time_type=self.time_type, start_time="", end_time="", page_size=str(self.page_size)
        )
        return time_range.to_wire()

    @property
    def window_ms(self) -> int | None:
        """``window`` in whole milliseconds (``None`` without a window)."""
        return window_ms(self.window)

    def body(self, start: TimeLike, end: TimeLike, page: int = 1) -> dict[str, Any]:
        """The wire body of ``trade/searchTrades`` asking for page ``page`` of the trades in
        ``[start, end]``, byte for byte what ``search_trades`` sends: to send through
        ``HukeClient.request`` and read with ``huke_client.pagination.read_page``."""
        return search_body(self, to_epoch_ms(start, "start"), to_epoch_ms(end, "end"), page)


_DEFAULTS = SearchOptions()
#: The keyword options of ``search_trades``; the iterators take every ``SearchOptions`` field.
PAGE_KEYS = frozenset(PageKwargs.__required_keys__ | PageKwargs.__optional_keys__)
_SEARCH_KEYS = frozenset(SearchKwargs.__required_keys__ | SearchKwargs.__optional_keys__)


def search_options(
    given: Mapping[str, Any],
    base: SearchOptions | None = None,
    *,
    keys: frozenset[str] = _SEARCH_KEYS,
) -> SearchOptions:
    """The options of one call: ``base`` (default: every default) with the keyword options
    ``given`` applied. A key of ``given`` not in ``keys`` is an undeclared wire field: it joins
    ``extra`` (after ``base.extra`` and ``given["extra"]``), in the order given."""
    if base is not None and not isinstance(base, SearchOptions):
        raise TypeError(f"options= takes a SearchOptions, not {type(base).__name__}")
    if not given:
        return _DEFAULTS if base is None else base
    fields: dict[str, Any] = {}
    loose: dict[str, Any] = {}
    for key, value in given.items():
        (fields if key in keys else loose)[key] = value
    if loose or base is not None:
        extra = fields.get("extra", {})
        fields["extra"] = {**(base.extra if base is not None else {}), **extra, **loose}
    return SearchOptions(**fields) if base is None else attrs.evolve(base, **fields)


def search_body(options: SearchOptions, start_ms: int, end_ms: int, page: int) -> dict[str, Any]:
    """The body asking for page ``page`` of the trades in ``[start_ms, end_ms]``: the wire
    models' ``to_wire()`` with ``options.extra`` added, byte for byte."""
    body = options._body.copy()
    body["timeRanges"] = [
        {
            **options._time_range,
            "startTime": str(start_ms),
            "endTime": str(end_ms),
            "page": str(page),
        }
    ]
    return body
