"""``FakeHuke``: the simulated service, its store of trades and its endpoints.

What it serves over HTTP (routing, envelope, signature and body checks) is in ``_http``; how a page
can be misreported in ``_listing``.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from typing import Any

import httpx

from _huke_k3_core import RetryPolicy, mask
from _huke_k3_core.testing import FaultInjectingSimulator
from huke_client._client import AsyncHukeClient, HukeClient
from huke_client.signing import derive_key

from ._http import Route, answer, check_signature, read_search
from ._listing import NO_DATA, ListingFault, PageHook, ServedPage, misreport

__all__ = ["DATA_SHAPES", "FakeHuke"]

#: The shapes ``FakeHuke`` can give the ``data`` of a ``trade/searchTrades`` reply.
DATA_SHAPES = ("object", "object_no_total", "list")


class FakeHuke(FaultInjectingSimulator):
    """A strict, in-memory Huke: verifies signatures, validates bodies, serves trades.

    ``clock`` is the server's clock, against which ``ur-curtime`` may be off by ``max_skew``
    seconds, and what every reply's ``Date`` header says. ``eid``, when set, must be sent in the
    ``eid`` header. Trades are wire dicts; each needs an int epoch-ms value under the time field
    of the ``timeType`` it is searched by.
    """

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        *,
        trades: Iterable[Mapping[str, Any]] = (),
        clock: Callable[[], float] = time.time,
        max_skew: float = 300,
        eid: str | None = None,
        data_shape: str = "object",
        items_key: str = "list",
        total_key: str = "total",
        time_field: str | Mapping[str, str] = "createTime",
        max_page_size: int = 100,
    ) -> None:
        super().__init__(clock=clock)
        if data_shape not in DATA_SHAPES:
            raise ValueError(
                f"data_shape must be one of {', '.join(DATA_SHAPES)}, not {data_shape!r}"
            )
        if max_page_size < 1:
            raise ValueError("max_page_size must be >= 1")
        self.app_key = app_key
        self._app_secret = app_secret
        self._key = derive_key(app_secret)
        self.max_skew = max_skew
        self.eid = eid
        self.data_shape = data_shape
        self.items_key = items_key
        self.total_key = total_key
        self.max_page_size = max_page_size
        #: ``timeType`` -> the trade field (epoch ms) that type filters on.
        self.time_fields: dict[str, str] = (
            {"1": time_field} if isinstance(time_field, str) else dict(time_field)
        )
        self._lock = threading.Lock()
        self._trades: list[dict[str, Any]] = []
        # Per time field: trades having it, sorted by it (stably), and their sort keys for bisect.
        self._index: dict[str, tuple[list[int], list[dict[str, Any]]]] = {}
        self._routes: dict[str, Route] = {"trade/searchTrades": self._search_trades}
        self._page_hooks: list[PageHook] = []
        self._listing_faults: list[ListingFault] = []
        self.add_trades(trades)

    def __repr__(self) -> str:
        return (
            f"FakeHuke(app_key={self.app_key!r}, app_secret={mask('')}, "
            f"trades={len(self._trades)}, data_shape={self.data_shape!r})"
        )

    # -- data ---------------------------------------------------------------------------------

    def add_trades(self, trades: Iterable[Mapping[str, Any]]) -> None:
        """Add wire trades (dicts are copied). A time field, where present, must be an int."""
        fresh = [dict(t) for t in trades]
        for trade in fresh:
            for field in self.time_fields.values():
                value = trade.get(field)
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise ValueError(f"trade field {field!r} must be epoch ms (int), got {value!r}")
        with self._lock:
            self._trades.extend(fresh)
            self._index.clear()

    def remove_trades(
        self, *tids: str, where: Callable[[Mapping[str, Any]], bool] | None = None
    ) -> int:
        """Remove the trades whose ``tid`` is one of ``tids``, and those for which ``where(trade)``
        is true; return how many were removed. Later pages of a search shift as on a real
        service: offsets are counted over the trades held when each page is made."""
        wanted = set(tids)
        if not wanted and where is None:
            raise ValueError("remove_trades needs tids, where=, or both")

        def doomed(trade: Mapping[str, Any]) -> bool:
            return trade.get("tid") in wanted or (where is not None and bool(where(trade)))

        with self._lock:
            kept = [t for t in self._trades if not doomed(t)]
            removed = len(self._trades) - len(kept)
            if removed:
                self._trades = kept
                self._index.clear()
        return removed

    def on_page(self, hook: PageHook) -> PageHook:
        """Run ``hook(served)`` (a ``ServedPage``) after each ``trade/searchTrades`` page is made,
        before it is answered: a hook that changes the store changes the pages that follow.
        Hooks run in the order added, on the thread serving the request; returns ``hook`` (so it
        can decorate). Faulted requests never reach the hooks."""
        self._page_hooks.append(hook)
        return hook

    def listing_fault(
        self,
        kind: str,
        *,
        page: int | None = None,
        times: int | None = None,
        when: Callable[[ServedPage], bool] | None = None,
        total: int | Callable[[ServedPage], int] | None = None,
    ) -> ListingFault:
        """Misreport the ``trade/searchTrades`` pages numbered ``page`` (``None``: every page) for
        which ``when(served)`` holds, as ``kind`` says (see ``ListingFault``), ``times`` pages at
        most (``None``: until cancelled). The store is untouched: a page read again without the
        fault is the true one. Faulted requests (``inject``) never reach it."""
        fault = ListingFault(kind, page=page, times=times, when=when, total=total)
        self._listing_faults.append(fault)
        return fault

    @property
    def trades(self) -> list[dict[str, Any]]:
        """A copy of the list of trades held, in the order they were added."""
        with self._lock:
            return list(self._trades)

    def add_route(self, endpoint: str, handler: Route) -> None:
        """Serve ``endpoint`` (e.g. ``"customer/fields"``): ``handler(body)`` returns ``data``."""
        self._routes[endpoint.strip("/")] = handler

    def _sorted_by(self, field: str) -> tuple[list[int], list[dict[str, Any]]]:
        with self._lock:
            index = self._index.get(field)
            if index is None:
                pairs = [(t[field], t) for t in self._trades if isinstance(t.get(field), int)]
                pairs.sort(key=itemgetter(0))  # stable: equal times keep insertion order
                index = ([p[0] for p in pairs], [p[1] for p in pairs])
                self._index[field] = index
            return index

    # -- convenience clients ---------------------------------------------------------------------

    def _client_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options.setdefault("clock", self.clock)
        options.setdefault("eid", self.eid)
        options.setdefault("retry", RetryPolicy(initial_delay=0, max_delay=0, max_retry_after=0))
        return options

    def client(self, **options: Any) -> HukeClient:
        """A ``HukeClient`` wired to this fake in-process, sharing its clock and credentials.
        Retries are instant unless ``retry=`` says otherwise."""
        http = httpx.Client(transport=self.transport())
        client = HukeClient(
            self.app_key, self._app_secret, http_client=http, **self._client_options(options)
        )
        client._owns_http = True  # made here for this client alone: closing the client closes it
        return client

    def async_client(self, **options: Any) -> AsyncHukeClient:
        """Like ``client()``, for ``AsyncHukeClient``."""
        http = httpx.AsyncClient(transport=self.transport())
        client = AsyncHukeClient(
            self.app_key, self._app_secret, http_client=http, **self._client_options(options)
        )
        client._owns_http = True
        return client

    # -- serving -------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (faults aside): check it, route it, wrap the result. A path that
        is not ``/openapi/<module>/<action>`` gets HTTP 404, as from the real gateway."""
        return answer(request, self._routes, self._check_signature)

    def _check_signature(self, request: httpx.Request) -> None:
        check_signature(
            request,
            app_key=self.app_key,
            key=self._key,
            eid=self.eid,
            clock=self.clock,
            max_skew=self.max_skew,
        )

    def _search_trades(self, body: dict[str, Any]) -> Any:
        query = read_search(body, self.time_fields, self.max_page_size)
        start, end, page, size = query.start, query.end, query.page, query.size
        keys, items = self._sorted_by(query.field)
        low, high = bisect.bisect_left(keys, start), bisect.bisect_right(keys, end)
        first = low + (page - 1) * size
        found = items[first : min(first + size, high)] if first < high else []
        total = high - low
        if self._page_hooks or self._listing_faults:
            served = ServedPage(start, end, page, size, total, tuple(dict(t) for t in found))
            for hook in list(self._page_hooks):
                hook(served)
            if self._listing_faults:
                misreported = misreport(list(self._listing_faults), served, found, total)
                if misreported is None or misreported is NO_DATA:
                    return misreported
                found, total = misreported
        if self.data_shape == "list":
            return found
        if self.data_shape == "object_no_total":
            return {self.items_key: found}
        return {self.items_key: found, self.total_key: total}
