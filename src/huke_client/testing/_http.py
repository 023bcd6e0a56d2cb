"""``FakeHuke``'s HTTP surface: the routes it serves, the envelope it answers in, the signature
and body checks a request passes before any route sees it.

Huke's own error codes are not public: the codes in ``SimCode`` are **the simulator's own**,
chosen to be distinct; do not rely on them against the real service.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import Any

import attrs
import httpx

from _huke_k3_core import dumps, shorten
from _huke_k3_core.testing import MAX_JSON_DEPTH, Fault, json_too_deep
from huke_client.signing import body_sign, checksum_with_key

from ._listing import NO_DATA

__all__ = [
    "Rejected",
    "Route",
    "SearchQuery",
    "SimCode",
    "answer",
    "check_signature",
    "envelope",
    "envelope_error",
    "read_search",
]

_SIGNING_HEADERS = ("ur-appkey", "ur-sign", "ur-curtime", "ur-checksum")
#: The only paths served: ``/openapi/<module>/<action>``, as the client builds them from the
#: documented base URL ``https://huke.163.com/openapi``.
_ROUTE = re.compile(r"/openapi/(?P<module>[A-Za-z0-9_]+)/(?P<action>[A-Za-z0-9_]+)")

#: An endpoint: the request body in, the envelope's ``data`` out (or ``NO_DATA``).
Route = Callable[[dict[str, Any]], Any]


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


class Rejected(Exception):
    """A request the simulator refuses: answered with an error envelope of ``code``."""

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


def answer(
    request: httpx.Request,
    routes: Mapping[str, Route],
    check_signature: Callable[[httpx.Request], None],
) -> httpx.Response:
    """Answer one request: check it, route it, wrap the result. A path that is not
    ``/openapi/<module>/<action>`` gets HTTP 404, as from the real gateway."""
    path = _ROUTE.fullmatch(request.url.path)
    if path is None:
        return httpx.Response(
            404,
            text=f"404 Not Found: {shorten(request.url.path, 80)}",
            headers={"Content-Type": "text/plain; charset=utf-8"},
            request=request,
        )
    try:
        if request.method != "POST":
            raise Rejected(
                SimCode.METHOD_NOT_ALLOWED, f"{request.method} not allowed: Huke takes POST"
            )
        check_signature(request)
        route = routes.get(f"{path['module']}/{path['action']}")
        if route is None:
            raise Rejected(SimCode.NOT_FOUND, f"no such API: {request.url.path}")
        body = _loads(request.content or b"{}")
        if not isinstance(body, dict):
            raise Rejected(SimCode.BAD_REQUEST, "request body must be a JSON object")
        data = route(body)
    except Rejected as rejected:
        return _reply(request, envelope(rejected.code, rejected.msg))
    if data is NO_DATA:
        return _reply(request, dumps({"code": SimCode.OK, "msg": "success"}))
    return _reply(request, envelope(SimCode.OK, "success", data))


def _reply(request: httpx.Request, content: bytes) -> httpx.Response:
    return httpx.Response(
        200,
        content=content,
        headers={"Content-Type": "application/json;charset=UTF-8"},
        request=request,
    )


def check_signature(
    request: httpx.Request,
    *,
    app_key: str,
    key: bytes,
    eid: str | None,
    clock: Callable[[], float],
    max_skew: float,
) -> None:
    """``Rejected`` unless ``request`` carries the four signing headers of ``app_key`` (AES
    ``key``), over its exact body, at most ``max_skew`` seconds from ``clock()``, and ``eid``
    when one is set."""
    headers = request.headers
    for name in _SIGNING_HEADERS:
        if not headers.get(name):
            raise Rejected(SimCode.MISSING_HEADER, f"missing header {name}")
    sent_key = headers["ur-appkey"]
    if sent_key != app_key:
        raise Rejected(SimCode.UNKNOWN_APP_KEY, f"unknown app key {sent_key!r}")
    if eid is not None and headers.get("eid") != eid:
        raise Rejected(SimCode.WRONG_EID, f"eid {headers.get('eid')!r} is not this app's")
    sign, curtime = headers["ur-sign"], headers["ur-curtime"]
    expected = checksum_with_key(key, sent_key, sign, curtime)
    # One public client sends lower-case hex and works: compare case-insensitively.
    if headers["ur-checksum"].upper() != expected:
        raise Rejected(SimCode.BAD_CHECKSUM, "ur-checksum does not verify")
    if sign.lower() != body_sign(request.content):
        raise Rejected(SimCode.SIGN_MISMATCH, "ur-sign is not the MD5 of the body received")
    # ASCII digits only (``str.isdigit`` also takes "²"), and few enough to be a time: an
    # int of hundreds of digits overflows when compared with the float clock.
    if not (curtime.isascii() and curtime.isdigit() and len(curtime) <= 15):
        raise Rejected(SimCode.CURTIME_SKEW, f"ur-curtime {curtime[:40]!r} is not Unix seconds")
    skew = int(curtime) - clock()
    if abs(skew) > max_skew:
        raise Rejected(
            SimCode.CURTIME_SKEW,
            f"ur-curtime {curtime} is {skew:+.0f}s from server time (allowed ±{max_skew:g}s)",
        )


@attrs.frozen
class SearchQuery:
    """What a valid ``trade/searchTrades`` body asks for: page ``page`` of ``size`` trades whose
    ``field`` (epoch ms) is in ``[start, end]``."""

    field: str
    start: int
    end: int
    page: int
    size: int


def read_search(
    body: Mapping[str, Any], time_fields: Mapping[str, str], max_page_size: int
) -> SearchQuery:
    """The query of a ``trade/searchTrades`` body; ``Rejected`` for anything the simulator does
    not take (``time_fields`` maps each ``timeType`` to the trade field it filters on)."""
    _text(body, "source", "source")
    dealers = body.get("dealerList")
    if not isinstance(dealers, list) or not all(isinstance(d, str) for d in dealers):
        raise Rejected(SimCode.BAD_REQUEST, "dealerList must be a list of strings")
    ranges = body.get("timeRanges")
    if not isinstance(ranges, list) or not ranges:
        raise Rejected(SimCode.BAD_REQUEST, "timeRanges must be a non-empty list")
    if len(ranges) != 1:
        raise Rejected(SimCode.BAD_REQUEST, "the simulator supports one timeRanges entry")
    entry = ranges[0]
    if not isinstance(entry, dict):
        raise Rejected(SimCode.BAD_REQUEST, "timeRanges[0] must be an object")
    time_type = _text(entry, "timeType", "timeRanges[0].timeType")
    field = time_fields.get(time_type)
    if field is None:
        known = ", ".join(sorted(time_fields))
        raise Rejected(SimCode.BAD_REQUEST, f"unknown timeType {time_type!r} (known: {known})")
    start = _digits(entry, "startTime")
    end = _digits(entry, "endTime")
    page = _digits(entry, "page")
    size = _digits(entry, "pageSize")
    if page < 1:
        raise Rejected(SimCode.BAD_REQUEST, "timeRanges[0].page must be >= 1")
    if not 1 <= size <= max_page_size:
        raise Rejected(
            SimCode.BAD_REQUEST, f"timeRanges[0].pageSize must be 1..{max_page_size}, got {size}"
        )
    if start > end:
        raise Rejected(SimCode.BAD_REQUEST, "timeRanges[0].startTime is after endTime")
    return SearchQuery(field, start, end, page, size)


def _refuse_constant(name: str) -> Any:
    raise Rejected(SimCode.BAD_REQUEST, f"request body is not JSON: {name} is not a number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999 overflows to infinity
        raise Rejected(
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
        raise Rejected(SimCode.BAD_REQUEST, too_deep) from None
    except ValueError:  # also UnicodeDecodeError, and ints past the digit limit
        raise Rejected(SimCode.BAD_REQUEST, "request body is not JSON") from None
    if type(value) in (dict, list) and json_too_deep(value):
        raise Rejected(SimCode.BAD_REQUEST, too_deep)
    return value


def _text(obj: Mapping[str, Any], key: str, where: str) -> str:
    # Strings only, as the scheme sends them: unlike ``wire_text``, a number is refused here.
    value = obj.get(key)
    if not isinstance(value, str):
        raise Rejected(SimCode.BAD_REQUEST, f"{where} is required and must be a string")
    return value


def _digits(entry: Mapping[str, Any], key: str) -> int:
    value = _text(entry, key, f"timeRanges[0].{key}")
    if not value.isdigit() or not value.isascii():
        raise Rejected(
            SimCode.BAD_REQUEST, f"timeRanges[0].{key} must be a string of digits, got {value!r}"
        )
    return int(value)
