"""A run's options: one frozen object, checked once, built from the keywords users write.

``sync_customers(huke, k3, batch_size=100)`` and
``sync_customers(huke, k3, options=SyncOptions(batch_size=100))`` are the same run: the keywords
are typed once (:class:`SyncKwargs`, PEP 692) and become a :class:`SyncOptions`, which is
what the engine, the watermark planning and the ledger read. A new option is a field here and a
key there, and nothing in between.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

import attrs
import httpx
from typing_extensions import TypedDict

from _huke_k3_core import FrozenDict
from huke_client import SearchOptions

from ._progress import ProgressArg
from ._state import State
from ._transform import SCHEME_SAVE_FLAGS, Transform, check_save_options, trade_to_customer
from ._windows import DEFAULT_WINDOW, ONE_MS

OnExisting = Literal["skip", "update"]
#: Seconds an uncertain save is given to land before it counts as not saved, when neither
#: ``confirm_timeout`` nor the K/3 client's read timeout says.
DEFAULT_CONFIRM_FOR = 30.0


class SyncKwargs(TypedDict, total=False):
    """The keyword options of :func:`sync_customers`, as typed ``**keywords`` (PEP 692): the
    fields of :class:`SyncOptions` the sync engine reads."""

    start: datetime | int | None
    end: datetime | int | None
    transform: Transform
    on_existing: OnExisting
    batch_size: int
    dry_run: bool
    state: State | None
    progress: ProgressArg
    window: timedelta | None
    form_id: str
    page_size: int
    order_by: Callable[[Any], Any] | None
    clock: Callable[[], float]
    confirm_timeout: float | None
    case_sensitive_numbers: bool
    search: SearchOptions | None


class AsyncSyncKwargs(SyncKwargs, total=False):
    """The keyword options of :func:`async_sync_customers`: :class:`SyncKwargs` and the two
    that bound its concurrency."""

    concurrency: int
    fetch_concurrency: int


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


@attrs.frozen(kw_only=True)
class SyncOptions:
    """The options of one run of :func:`sync_customers` or :func:`async_sync_customers`.

    Both take them as keywords (``batch_size=100``) or as ``options=SyncOptions(...)``, the same
    either way; they are checked when made (a ``ValueError`` or ``TypeError`` names the option),
    before any request. ``attrs.evolve(options, dry_run=True)`` is a changed copy.

    Attributes:
        start: range start (``datetime``, naive = local time, or epoch milliseconds). Default:
            the stored watermark minus its overlap when ``state`` has one, else ``end`` − 20 h.
        end: range end, inclusive. Default: now.
        transform: ``trade -> Customer``; raise ``SkipTrade`` for trades that cannot become one.
        on_existing: ``"skip"`` reports existing customers as ``existed``; ``"update"`` saves
            them again (with ``FCUSTID`` and ``NeedUpDateFields``: the model's fields except the
            number and the organisations). Whether K/3 Cloud lets an audited customer be changed
            depends on its configuration; a refusal is reported per trade.
        batch_size: customers per ``BatchSave`` call.
        dry_run: fetch, transform and look up, but save nothing (and store no watermark).
        state: where the watermark lives (e.g. ``FileState("sync.json")``); advanced only over
            windows that fully succeeded.
        progress: a callback receiving ``ProgressEvent``, ``True``/``False`` to force a bar on or
            off, ``None`` for a bar only on a terminal or in a notebook.
        window: longest time range fetched in one go.
        form_id: the form saved to.
        page_size: trades per Huke page.
        order_by: ``trade -> key`` deciding which trade of a buyer wins (the largest key);
            default: the later one in Huke's stream.
        clock: the time source, for "now".
        confirm_timeout: how long (seconds) a save whose outcome is unknown (its reply timed out
            or was lost) is given to land, looked up with growing pauses, before it is sent
            again. Default: the K/3 client's read timeout — a commit still running when the
            client gave up lands within about that long.
        case_sensitive_numbers: whether customer numbers differing only in case ("ABC",
            "abc") are different customers. Default False, as K/3 Cloud's database compares
            them on the usual SQL Server collation: they are one customer (one is kept, the
            others merged into it) and a lookup finds it whatever its case. Set True for a
            database with a case-sensitive collation.
        search: the Huke search options (``huke_client.SearchOptions``) of every window's
            ``iter_trade_pages`` call: ``items_key=`` for a reply shape the client does not
            detect, ``source=``, ``time_type=``, ``dealer_list=``, ``extra=`` wire fields,
            ``max_pages=``, ``max_restarts=``. The run's own ``page_size`` and ``window`` win
            where they overlap: a ``search.page_size`` other than its default that differs from
            ``page_size``, or any ``search.window``, is refused (``ValueError``) rather than
            ignored. Default: the client's defaults.
        concurrency: ``async_sync_customers`` only: the ceiling of K/3 Cloud calls in
            flight; the limit in use adapts to what the server takes.
        fetch_concurrency: ``async_sync_customers`` only: sub-windows fetched side by side.
        save_flags: the run's ``BatchSave`` options, not given but derived: the scheme's, then
            those of the transform's ``save_flags``.
    """

    start: datetime | int | None = None
    end: datetime | int | None = None
    transform: Transform = trade_to_customer
    on_existing: OnExisting = "skip"
    batch_size: int = 400
    dry_run: bool = False
    state: State | None = None
    progress: ProgressArg = None
    window: timedelta | None = DEFAULT_WINDOW
    form_id: str = "BD_Customer"
    page_size: int = 100
    order_by: Callable[[Any], Any] | None = None
    clock: Callable[[], float] = time.time
    confirm_timeout: float | None = None
    case_sensitive_numbers: bool = False
    search: SearchOptions | None = None
    concurrency: int = 8
    fetch_concurrency: int = 4

    def __attrs_post_init__(self) -> None:
        # Checked here, before any request or lock: a bad page_size would otherwise surface as
        # a fetch failure of the first window, and a bad window as a TypeError from a comparison.
        _check_count("concurrency", self.concurrency)
        _check_count("fetch_concurrency", self.fetch_concurrency)
        timeout = self.confirm_timeout
        # Not a number, NaN and infinity (an endless wait; it overflowed the rounds' bound) alike.
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 <= timeout < math.inf
        ):
            raise ValueError(f"confirm_timeout must be finite seconds >= 0, got {timeout!r}")
        if self.on_existing not in ("skip", "update"):
            raise ValueError(f"on_existing must be 'skip' or 'update', not {self.on_existing!r}")
        _check_count("batch_size", self.batch_size)
        _check_count("page_size", self.page_size)
        if not callable(self.transform):
            raise TypeError(f"transform must be callable, not {type(self.transform).__name__}")
        if self.window is not None and not isinstance(self.window, timedelta):
            raise ValueError(f"window must be a timedelta (or None), got {self.window!r}")
        if self.window is not None and self.window < ONE_MS:
            raise ValueError(f"window must be at least 1 ms, got {self.window!r}")
        check_save_options(self.save_flags, f"{type(self.transform).__name__}.save_flags")
        _check_search(self.search, self.page_size)

    @functools.cached_property
    def huke_search(self) -> SearchOptions:
        """What every window's ``iter_trade_pages`` call is given: ``search`` with the run's
        ``page_size``, and no window of its own (the run's windows are the windows)."""
        base = SearchOptions() if self.search is None else self.search
        return attrs.evolve(base, page_size=self.page_size, window=None)

    @functools.cached_property
    def save_flags(self) -> Mapping[str, Any]:
        """The run's ``BatchSave`` options, derived, not given: the scheme's, then those of the
        transform's ``save_flags``."""
        return FrozenDict({**SCHEME_SAVE_FLAGS, **getattr(self.transform, "save_flags", {})})

    def confirm_for(self, k3: object) -> float:
        """Seconds an uncertain save is looked for before it is sent again: ``confirm_timeout``,
        else ``k3``'s read timeout (a commit still running when the client gave up lands
        within about that long)."""
        if self.confirm_timeout is not None:
            return float(self.confirm_timeout)
        timeout = getattr(k3, "timeout", None)
        read = timeout.read if isinstance(timeout, httpx.Timeout) else None
        return float(read) if read is not None else DEFAULT_CONFIRM_FOR


_SEARCH_PAGE_SIZE = attrs.fields(SearchOptions).page_size.default


def _check_search(search: object, page_size: int) -> None:
    """``search`` is a ``SearchOptions`` that does not contradict the run's own options."""
    if search is None:
        return
    if not isinstance(search, SearchOptions):
        raise TypeError(
            f"search must be a huke_client.SearchOptions (or None), not {type(search).__name__}"
        )
    if search.page_size not in (page_size, _SEARCH_PAGE_SIZE):
        raise ValueError(
            f"search.page_size={search.page_size} contradicts page_size={page_size}: the run's "
            f"page_size sets the page size; give page_size={search.page_size} instead"
        )
    if search.window is not None:
        raise ValueError(
            f"search.window={search.window!r} is not used: the run's window= cuts the range "
            f"into windows; give window={search.window!r} instead"
        )


#: The keywords each public function takes.
_KEYWORDS: Mapping[str, frozenset[str]] = {
    "sync_customers": frozenset(SyncKwargs.__optional_keys__),
    "async_sync_customers": frozenset(AsyncSyncKwargs.__optional_keys__),
}


def options_of_call(
    function: str, options: SyncOptions | None, keywords: Mapping[str, Any]
) -> SyncOptions:
    """The options of a call of ``function`` (``"sync_customers"`` or
    ``"async_sync_customers"``): ``options`` (or the defaults) with the ``keywords`` given beside
    it. A keyword the function does not take is a ``TypeError``, worded as Python words it."""
    allowed = _KEYWORDS[function]
    for name in keywords:
        if name not in allowed:
            raise TypeError(f"{function}() got an unexpected keyword argument {name!r}")
    if options is None:
        return SyncOptions(**keywords)
    if not isinstance(options, SyncOptions):
        raise TypeError(f"options must be a SyncOptions, not {type(options).__name__}")
    return attrs.evolve(options, **keywords) if keywords else options
