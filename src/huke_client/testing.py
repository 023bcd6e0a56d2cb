"""``FakeHuke``: a strict simulator of Huke's open API, for tests and benchmarks.

Use it in-process (``httpx.Client(transport=fake.transport())``, or simply ``fake.client()``) or
behind a real socket on 127.0.0.1 (``with fake.serve() as server: ... server.url``).

It checks what the real service is known to check, with the real algorithm, and answers with the
``{"code", "msg", "data"}`` envelope over HTTP 200. It serves only
``POST /openapi/<module>/<action>`` (the documented base URL ``https://huke.163.com/openapi`` plus
the endpoint) and answers any other path with HTTP 404, so a wrong base URL fails in tests as in
production; a body that is not strict JSON (``NaN``, ``Infinity``, nesting deeper than
``MAX_JSON_DEPTH``) gets a ``BAD_REQUEST`` envelope. Huke's own error codes are not public: the
codes in ``SimCode`` are **the simulator's own**, chosen to be distinct; do not rely on them against
the real service. Where Huke's behaviour is unknown the simulator picks one documented behaviour:

* trades are matched on an epoch-millisecond field per ``timeType`` (``"1"`` -> ``createTime`` by
  default; ``time_field=`` changes it), the range is inclusive at both ends, and results are in
  ascending time order (stable for equal times, in the order trades were added);
* ``pageSize`` must be 1..``max_page_size`` (default 100; the real maximum is unknown);
* exactly one ``timeRanges`` entry is supported; ``source`` and ``dealerList`` are validated but
  do not filter (their real semantics are unknown);
* ``data`` is ``{items_key: [...], total_key: n}`` (``data_shape="object"``), the same without the
  total (``"object_no_total"``) or a bare list (``"list"``).

The store may change between two pages, as the real one does while a client pages through it:
``fake.on_page(hook)`` runs ``hook(served)`` after each ``trade/searchTrades`` page is made and
before it is answered, and ``fake.remove_trades(...)`` / ``fake.add_trades(...)`` change the store.

A page may also be misreported: ``fake.listing_fault(kind, page=2)`` answers matching pages with
no ``data``, a null one, no trades, one trade short, or another total (see ``ListingFault``),
until it has struck ``times`` pages or is cancelled.

Faults come from the shared machinery: ``fake.inject(Fault.http_status(503))``,
``fake.inject(envelope_error(40100, "rate limited"))`` and so on.
"""

from __future__ import annotations

import bisect
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from enum import Enum, IntEnum
from operator import itemgetter
from typing import Any

import attrs
import httpx

from _huke_k3_core import RetryPolicy, dumps, mask
from _huke_k3_core.testing import (
    MAX_JSON_DEPTH,
    Fault,
    FaultInjectingSimulator,
    LoopbackServer,
    json_too_deep,
)

from ._auth import _checksum_with_key, body_sign, derive_key
from ._client import AsyncHukeClient, HukeClient, to_epoch_ms

__all__ = [
    "DATA_SHAPES",
    "LISTING_FAULT_KINDS",
    "MAX_JSON_DEPTH",
    "NO_DATA",
    "FakeHuke",
    "Fault",
    "ListingFault",
    "LoopbackServer",
    "ServedPage",
    "SimCode",
    "envelope",
    "envelope_error",
    "fake_trade",
    "generate_trades",
]

#: The shapes ``FakeHuke`` can give the ``data`` of a ``trade/searchTrades`` reply.
DATA_SHAPES = ("object", "object_no_total", "list")

_SIGNING_HEADERS = ("ur-appkey", "ur-sign", "ur-curtime", "ur-checksum")
#: The only paths served: ``/openapi/<module>/<action>``, as the client builds them from the
#: documented base URL ``https://huke.163.com/openapi``.
_ROUTE = re.compile(r"/openapi/(?P<module>[A-Za-z0-9_]+)/(?P<action>[A-Za-z0-9_]+)")
#: Deepest JSON nesting a body may have (the simulator's own limit; Huke's is not documented): a
#: real request needs four levels, and a much deeper one would exhaust Python's recursion.


class SimCode(IntEnum):
    """Envelope codes of the simulator. 200 is Huke's success code; the others are the
    simulator's own (Huke's real error codes are not public)."""

    OK = 200
    NOT_FOUND = 404
    METHOD_NOT_ALLOWED = 405
    BAD_REQUEST = 40000
    MISSING_HEADER = 40001
    UNKNOWN_APP_KEY = 40002
    SIGN_MISMATCH = 40003
    BAD_CHECKSUM = 40004
    CURTIME_SKEW = 40005
    WRONG_EID = 40006


class _Rejected(Exception):
    def __init__(self, code: SimCode, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def envelope(code: int, msg: str, data: Any = None) -> bytes:
    """The bytes of a Huke envelope."""
    return dumps({"code": code, "msg": msg, "data": data})


def envelope_error(code: int, msg: str, *, status: int = 200, data: Any = None) -> Fault:
    """A fault that answers with an error envelope (HTTP 200 by default, like Huke)."""
    return Fault.reply(envelope(code, msg, data), status=status)


Route = Callable[[dict[str, Any]], Any]


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


class FakeHuke(FaultInjectingSimulator):
    """A strict, in-memory Huke: verifies signatures, validates bodies, serves trades.

    ``clock`` is the server's clock, against which ``ur-curtime`` may be off by ``max_skew``
    seconds. ``eid``, when set, must be sent in the ``eid`` header. Trades are wire dicts; each
    needs an int epoch-ms value under the time field of the ``timeType`` it is searched by.
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
        super().__init__()
        if data_shape not in DATA_SHAPES:
            raise ValueError(
                f"data_shape must be one of {', '.join(DATA_SHAPES)}, not {data_shape!r}"
            )
        if max_page_size < 1:
            raise ValueError("max_page_size must be >= 1")
        self.app_key = app_key
        self._app_secret = app_secret
        self._key = derive_key(app_secret)
        self.clock = clock
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

    def _misreport(
        self, served: ServedPage, items: list[dict[str, Any]], total: int
    ) -> tuple[list[dict[str, Any]], int] | _Absent | None:
        for fault in list(self._listing_faults):
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
        path = _ROUTE.fullmatch(request.url.path)
        if path is None:
            shown = request.url.path[:80] + ("..." if len(request.url.path) > 80 else "")
            return httpx.Response(
                404,
                text=f"404 Not Found: {shown}",
                headers={"Content-Type": "text/plain; charset=utf-8"},
                request=request,
            )
        try:
            if request.method != "POST":
                raise _Rejected(
                    SimCode.METHOD_NOT_ALLOWED, f"{request.method} not allowed: Huke takes POST"
                )
            self._check_signature(request)
            route = self._routes.get(f"{path['module']}/{path['action']}")
            if route is None:
                raise _Rejected(SimCode.NOT_FOUND, f"no such API: {request.url.path}")
            body = _loads(request.content or b"{}")
            if not isinstance(body, dict):
                raise _Rejected(SimCode.BAD_REQUEST, "request body must be a JSON object")
            data = route(body)
        except _Rejected as rejected:
            return self._reply(request, envelope(rejected.code, rejected.msg))
        if data is NO_DATA:
            return self._reply(request, dumps({"code": SimCode.OK, "msg": "success"}))
        return self._reply(request, envelope(SimCode.OK, "success", data))

    @staticmethod
    def _reply(request: httpx.Request, content: bytes) -> httpx.Response:
        return httpx.Response(
            200,
            content=content,
            headers={"Content-Type": "application/json;charset=UTF-8"},
            request=request,
        )

    def _check_signature(self, request: httpx.Request) -> None:
        headers = request.headers
        for name in _SIGNING_HEADERS:
            if not headers.get(name):
                raise _Rejected(SimCode.MISSING_HEADER, f"missing header {name}")
        app_key = headers["ur-appkey"]
        if app_key != self.app_key:
            raise _Rejected(SimCode.UNKNOWN_APP_KEY, f"unknown app key {app_key!r}")
        if self.eid is not None and headers.get("eid") != self.eid:
            raise _Rejected(SimCode.WRONG_EID, f"eid {headers.get('eid')!r} is not this app's")
        sign, curtime = headers["ur-sign"], headers["ur-curtime"]
        expected = _checksum_with_key(self._key, app_key, sign, curtime)
        # One public client sends lower-case hex and works: compare case-insensitively.
        if headers["ur-checksum"].upper() != expected:
            raise _Rejected(SimCode.BAD_CHECKSUM, "ur-checksum does not verify")
        if sign.lower() != body_sign(request.content):
            raise _Rejected(SimCode.SIGN_MISMATCH, "ur-sign is not the MD5 of the body received")
        # ASCII digits only (``str.isdigit`` also takes "²"), and few enough to be a time: an
        # int of hundreds of digits overflows when compared with the float clock.
        if not (curtime.isascii() and curtime.isdigit() and len(curtime) <= 15):
            raise _Rejected(
                SimCode.CURTIME_SKEW, f"ur-curtime {curtime[:40]!r} is not Unix seconds"
            )
        skew = int(curtime) - self.clock()
        if abs(skew) > self.max_skew:
            raise _Rejected(
                SimCode.CURTIME_SKEW,
                f"ur-curtime {curtime} is {skew:+.0f}s from server time (allowed ±{self.max_skew:g}s)",
            )

    def _search_trades(self, body: dict[str, Any]) -> Any:
        _text(body, "source", "source")
        dealers = body.get("dealerList")
        if not isinstance(dealers, list) or not all(isinstance(d, str) for d in dealers):
            raise _Rejected(SimCode.BAD_REQUEST, "dealerList must be a list of strings")
        ranges = body.get("timeRanges")
        if not isinstance(ranges, list) or not ranges:
            raise _Rejected(SimCode.BAD_REQUEST, "timeRanges must be a non-empty list")
        if len(ranges) != 1:
            raise _Rejected(SimCode.BAD_REQUEST, "the simulator supports one timeRanges entry")
        entry = ranges[0]
        if not isinstance(entry, dict):
            raise _Rejected(SimCode.BAD_REQUEST, "timeRanges[0] must be an object")
        time_type = _text(entry, "timeType", "timeRanges[0].timeType")
        field = self.time_fields.get(time_type)
        if field is None:
            known = ", ".join(sorted(self.time_fields))
            raise _Rejected(SimCode.BAD_REQUEST, f"unknown timeType {time_type!r} (known: {known})")
        start = _digits(entry, "startTime")
        end = _digits(entry, "endTime")
        page = _digits(entry, "page")
        size = _digits(entry, "pageSize")
        if page < 1:
            raise _Rejected(SimCode.BAD_REQUEST, "timeRanges[0].page must be >= 1")
        if not 1 <= size <= self.max_page_size:
            raise _Rejected(
                SimCode.BAD_REQUEST,
                f"timeRanges[0].pageSize must be 1..{self.max_page_size}, got {size}",
            )
        if start > end:
            raise _Rejected(SimCode.BAD_REQUEST, "timeRanges[0].startTime is after endTime")
        keys, items = self._sorted_by(field)
        low, high = bisect.bisect_left(keys, start), bisect.bisect_right(keys, end)
        first = low + (page - 1) * size
        found = items[first : min(first + size, high)] if first < high else []
        total = high - low
        if self._page_hooks or self._listing_faults:
            served = ServedPage(start, end, page, size, total, tuple(dict(t) for t in found))
            for hook in list(self._page_hooks):
                hook(served)
            if self._listing_faults:
                misreported = self._misreport(served, found, total)
                if misreported is None or misreported is NO_DATA:
                    return misreported
                found, total = misreported
        if self.data_shape == "list":
            return found
        if self.data_shape == "object_no_total":
            return {self.items_key: found}
        return {self.items_key: found, self.total_key: total}


def _refuse_constant(name: str) -> Any:
    raise _Rejected(SimCode.BAD_REQUEST, f"request body is not JSON: {name} is not a number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999 overflows to infinity
        raise _Rejected(
            SimCode.BAD_REQUEST, f"request body is not JSON: {text[:40]} is out of range"
        )
    return number


def _loads(content: bytes) -> Any:
    """The body as a strict JSON reader takes it (no ``NaN``/``Infinity``, no number beyond a
    double, at most ``MAX_JSON_DEPTH`` deep); anything else is rejected with an envelope."""
    too_deep = f"request body is not JSON: nested deeper than {MAX_JSON_DEPTH}"
    try:
        value = json.loads(content, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise _Rejected(SimCode.BAD_REQUEST, too_deep) from None
    except ValueError:  # also UnicodeDecodeError, and ints past the digit limit
        raise _Rejected(SimCode.BAD_REQUEST, "request body is not JSON") from None
    if type(value) in (dict, list) and json_too_deep(value):
        raise _Rejected(SimCode.BAD_REQUEST, too_deep)
    return value


def _text(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _Rejected(SimCode.BAD_REQUEST, f"{where} is required and must be a string")
    return value


def _digits(entry: Mapping[str, Any], key: str) -> int:
    value = _text(entry, key, f"timeRanges[0].{key}")
    if not value.isdigit() or not value.isascii():
        raise _Rejected(
            SimCode.BAD_REQUEST, f"timeRanges[0].{key} must be a string of digits, got {value!r}"
        )
    return int(value)


# -- synthetic trades ----------------------------------------------------------------------------

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余杜叶程"
_GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华玉兰红梅琳晨欣怡佳悦子涵宇轩浩然思雨"
_NICKNAMES = (
    "快乐的小猫",
    "清风徐来",
    "追梦人",
    "Lily",
    "阳光宝贝",
    "大白兔",
    "简单生活",
    "海阔天空",
    "小鱼儿",
    "Tony老师",
    "一只柠檬",
    "岁月静好",
)
_SUFFIXES = ("", "", "", "🌸", "😊", "~", "_88", "（南京）", " 🍀")
_PRODUCTS = (
    "有机绿茶礼盒 250g",
    "蚕丝被 春秋款",
    "智能保温杯 500ml",
    "儿童护眼台灯",
    "纯棉四件套 1.8m",
    "东北五常大米 10kg",
    "无线降噪耳机",
    "手工牛轧糖 礼盒装",
)
_STATUSES = ("已付款", "已发货", "已完成", "已退款")


def _buyer(index: int, seed: int) -> tuple[str, str]:
    """Nickname and customer id of buyer ``index``: cheap, deterministic, ids unique per seed."""
    mix = (index * 0x9E3779B1 + seed * 0x85EBCA77 + 0x165667B1) & 0xFFFFFFFF
    suffix = _SUFFIXES[(mix >> 20) % len(_SUFFIXES)]
    if mix % 3:
        surname = _SURNAMES[mix % len(_SURNAMES)]
        given = _GIVEN[(mix >> 6) % len(_GIVEN)]
        if mix % 2:
            given += _GIVEN[(mix >> 12) % len(_GIVEN)]
        nick = surname + given + suffix
    else:
        nick = _NICKNAMES[(mix >> 4) % len(_NICKNAMES)] + suffix
    # An odd multiplier is a bijection modulo 2**48: distinct buyers never share an id.
    cid = f"wm{((index + 1) * 0x5DEECE66D + seed) & 0xFFFFFFFFFFFF:012x}"
    return nick, cid


def fake_trade(
    *,
    create_time: datetime | int,
    tid: str | None = None,
    buyer_nick: str | None = "张三",
    buyer_cid: str | None = "wm000000000001",
    payment: str = "99.00",
    source: str = "2",
    **extra: Any,
) -> dict[str, Any]:
    """One wire trade: ``tid``, ``source``, ``buyerNick``, ``buyerCid``, ``createTime`` (epoch
    ms), ``payment``, plus ``extra`` fields as given. ``None`` leaves a field out."""
    ms = to_epoch_ms(create_time, "create_time")
    trade: dict[str, Any] = {
        "tid": tid if tid is not None else f"T{ms}",
        "source": source,
        "buyerNick": buyer_nick,
        "buyerCid": buyer_cid,
        "createTime": ms,
        "payment": payment,
    }
    trade.update(extra)
    return {k: v for k, v in trade.items() if v is not None}


def generate_trades(
    n: int,
    *,
    start: datetime | int,
    end: datetime | int,
    buyers: int | None = None,
    seed: int = 0,
    missing_cid_every: int | None = None,
) -> Iterator[dict[str, Any]]:
    """``n`` realistic synthetic wire trades, lazily (stream a million without holding them).

    Deterministic for a given ``seed``. Buyers (``buyers`` distinct ones, default ``n // 4``, at
    least 1) have Chinese names or nicknames and repeat, a few far more often than others.
    ``createTime`` is uniform in ``[start, end]`` (epoch ms, inclusive); ``tid`` is unique.
    Every ``missing_cid_every``-th trade has no ``buyerCid`` (the key is absent).
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    low, high = to_epoch_ms(start, "start"), to_epoch_ms(end, "end")
    if low > high:
        raise ValueError(f"start ({low}) is after end ({high})")
    pool = max(1, buyers if buyers is not None else n // 4)
    regulars = max(1, pool // 20)
    rng = random.Random(seed)
    for number in range(1, n + 1):
        # About a third of trades come from the most loyal 5% of buyers.
        buyer = rng.randrange(regulars) if rng.random() < 0.3 else rng.randrange(pool)
        nick, cid = _buyer(buyer, seed)
        created = rng.randint(low, high)
        trade: dict[str, Any] = {
            "tid": f"HK{seed % 1000:03d}{number:010d}",
            "source": "2",
            "buyerNick": nick,
            "buyerCid": cid,
            "createTime": created,
            "payTime": created + rng.randrange(600_000),
            "payment": f"{rng.randrange(990, 1_000_000) / 100:.2f}",
            "num": rng.randint(1, 5),
            "title": _PRODUCTS[rng.randrange(len(_PRODUCTS))],
            "status": _STATUSES[rng.randrange(len(_STATUSES))],
        }
        if missing_cid_every and number % missing_cid_every == 0:
            del trade["buyerCid"]
        yield trade
