"""The doctor's Huke checks: one small page of ``trade/searchTrades``, and what it shows.

The page is asked for once (``HukeClient.request``, with the body ``search_trades`` sends) and
read the way the sync reads it (``huke_client.pagination.read_page``); when the client cannot read
it, the reply is described: what came back and where the trades are. Every text a check shows
passes through the client's redactor, and every value of a trade is masked: a report is pasted
into tickets and chats.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from _huke_k3_core import (
    ELLIPSIS,
    WireFieldError,
    json_type,
    one_line,
    plural,
    safe_url,
    shorten,
)
from huke_client import (
    HukeAPIError,
    HukeClient,
    HukeConnectionError,
    HukeError,
    HukeHTTPError,
    HukeResponseError,
    HukeTimeoutError,
    SearchOptions,
    Trade,
    TradePage,
)
from huke_client.pagination import LIST_KEYS, TOTAL_KEYS, read_page

from ._doctor_redact import scrub_checks
from ._doctor_report import Check
from ._doctor_sample import (
    CHECKS,
    OUTLINE_KEYS,
    WIDER_FIX,
    array_outline,
    buyer_check,
    fields_check,
    make_check,
    mask_keys,
    outline,
    sample_check,
)

__all__ = ["huke_checks"]

SEARCH_TRADES = "trade/searchTrades"
_AUTH_FIX = (
    "check HUKE_APP_KEY / HUKE_APP_SECRET (or the tenant's entry in the tenants file) and this "
    "machine's clock (the network clock check): Huke signs every request with both"
)
#: An error envelope came back: the request reached Huke, which proves nothing about the key.
_REFUSED_FIX = (
    "the request reached Huke and was refused (no proof of bad credentials): read the msg; if "
    f"it is about the key, the signature or the time, {_AUTH_FIX}"
)
#: Huke's error codes are unknown: a msg about the page size is known by its words.
_PAGE_SIZE = re.compile(r"page[_ ]?size|每页|条数", re.IGNORECASE)
_NOT_RUN_AUTH = "not run: Huke authentication failed"
_NOT_RUN_NO_LIST = "not run: no list of trades was found in Huke's reply"
#: Where trade-like lists are looked for below ``data`` (``data.result.rows`` is 2 deep).
_SEARCH_DEPTH = 3
_BUYER_FIELDS = ("buyerNick", "buyerCid")


def huke_checks(
    huke: HukeClient,
    *,
    start: datetime,
    end: datetime,
    page_size: int = 20,
    search: SearchOptions | None = None,
) -> tuple[list[Check], list[Trade]]:
    """The checks of section ``huke`` (``huke.auth``, ``huke.shape``, ``huke.fields``,
    ``huke.buyer``, ``huke.sample``) from page 1 of ``trade/searchTrades`` over
    ``[start, end]``, ``page_size`` trades at most; and the trades of that page, for the K/3
    dry run (``[]`` when none could be read)."""
    options = attrs.evolve(search if search is not None else SearchOptions(), page_size=page_size)
    window = f"between {_when(start)} and {_when(end)}"
    started = time.perf_counter()
    try:
        data = huke.request(SEARCH_TRADES, options.body(start, end), idempotent=True)
    except HukeError as exc:
        return list(scrub_checks(_refused(exc, huke, page_size), huke.auth.redactor)), []
    elapsed = time.perf_counter() - started

    items: list[Any] | None
    try:
        page = read_page(
            data,
            page_size=page_size,
            items_key=options.items_key,
            null_is_empty=huke.null_first_page_is_empty,
            redact=huke.auth.redactor,
        )
    except HukeResponseError as exc:
        shape, items = _shape_failed(data, options, exc)
        trades = _trades_of(items or [])
    else:
        shape = _shape_passed(data, options, page)
        # The client read it: a list, or a null page 1 it was told is an empty window.
        items = _as_list(data, options) or []
        trades = list(page.trades)
    auth = make_check(
        "huke.auth",
        "pass",
        f"{SEARCH_TRADES} accepted the app key: page 1 of the trades {window} "
        f"({plural(page_size, 'trade')} a page) answered in {elapsed:.2f}s",
        details={"base_url": safe_url(huke.base_url), "elapsed_s": round(elapsed, 3)},
    )
    if items is None:
        rest = _skipped(_NOT_RUN_NO_LIST, after="huke.shape")
    else:
        wire = [item for item in items if isinstance(item, Mapping)]
        tz = start.tzinfo if start.utcoffset() is not None else None
        rest = [
            fields_check(wire, window),
            buyer_check(wire, window),
            sample_check(wire, window, tz),
        ]
    # What the server sent was redacted by the client already, but the shape's keys and paths
    # were read from raw data.
    return list(scrub_checks([auth, shape, *rest], huke.auth.redactor)), trades


# -- the call ---------------------------------------------------------------------------------


def _skipped(why: str, *, after: str) -> list[Check]:
    """The checks that come after ``after``, not run for ``why``."""
    ids = list(CHECKS)
    return [make_check(i, "skip", why) for i in ids[ids.index(after) + 1 :]]


def _refused(exc: HukeError, huke: HukeClient, page_size: int) -> list[Check]:
    """``huke.auth`` failed for ``exc`` (to a request for ``page_size`` trades), and the checks
    it leaves unrun."""
    url = safe_url(huke.base_url)
    details: dict[str, Any] = {"error": type(exc).__name__, "base_url": url}
    if isinstance(exc, HukeAPIError):
        code = one_line(str(exc.code), 40)
        details.update(code=code, msg=one_line(exc.msg, 500))
        summary = (
            f"Huke refused {SEARCH_TRADES}: code {code}, msg {one_line(exc.msg, 120)!r} "
            "(Huke's error codes are not documented: read the msg)"
        )
        if _PAGE_SIZE.search(exc.msg or ""):
            fix = (
                f"Huke refused the page size ({page_size} trades): run with a smaller --sample "
                "(sample_size= in doctor()); Huke's maximum is not documented"
            )
        else:
            fix = _REFUSED_FIX
    elif isinstance(exc, HukeHTTPError):
        details.update(status=exc.status_code)
        summary = f"{url} answered HTTP {exc.status_code}: {one_line(exc.body, 120, none='')!r}"
        if exc.status_code in (404, 405):
            fix = (
                f"check HUKE_BASE_URL ({url} now): Huke's open API is https://huke.163.com/openapi"
            )
        elif exc.status_code in (401, 403):
            fix = _AUTH_FIX
        else:
            fix = "Huke or a proxy before it failed: try again later; if it lasts, check HUKE_BASE_URL"
    elif isinstance(exc, HukeConnectionError):
        what = "timed out" if isinstance(exc, HukeTimeoutError) else "failed"
        summary = f"the request to {url} {what}: {one_line(str(exc), 160)}"
        fix = "check HUKE_BASE_URL and the network checks above (DNS, TCP, TLS, proxy)"
    elif isinstance(exc, HukeResponseError):
        summary = f"the reply is not Huke's {{code, msg, data}} envelope: {_not_envelope(exc)}"
        fix = f"check HUKE_BASE_URL ({url} now): what answered is not Huke's open API"
    else:
        summary = f"{SEARCH_TRADES} failed: {type(exc).__name__}: {one_line(str(exc), 160)}"
        fix = _AUTH_FIX
    auth = make_check("huke.auth", "fail", summary, fix, details)
    return [auth, *_skipped(_NOT_RUN_AUTH, after="huke.auth")]


def _not_envelope(exc: HukeResponseError) -> str:
    """What came back instead of the envelope: the start of a body that is not JSON (an error
    page), or the outline of JSON (its values may be trades: not quoted)."""
    if exc.transient:
        return f"a body that is not JSON, starting {shorten(exc.body, 100)!r}"
    try:
        value = json.loads(exc.body)
    except ValueError:
        return "JSON of another shape (too long to outline)"
    return f"JSON {outline(value)}"


def _trades_of(items: Iterable[Any]) -> list[Trade]:
    """The wire objects among ``items`` as ``Trade``s, as the client would have made them (one
    whose declared field is unreadable keeps it only in ``raw``, as the client's page does)."""
    trades = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        try:
            trades.append(Trade.from_wire(item))
        except WireFieldError:
            trades.append(Trade(raw=item))
    return trades


# -- the reply's shape ------------------------------------------------------------------------


def _list_key(data: Mapping[str, Any], options: SearchOptions) -> str | None:
    """The key of ``data`` the client read the trades from (its documented order)."""
    candidates = (options.items_key,) if options.items_key is not None else LIST_KEYS
    return next((k for k in candidates if isinstance(data.get(k), list)), None)


def _total_key(data: Mapping[str, Any]) -> str | None:
    return next((k for k in TOTAL_KEYS if data.get(k) is not None), None)


def _as_list(data: Any, options: SearchOptions) -> list[Any] | None:
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping):
        key = _list_key(data, options)
        return data[key] if key is not None else None
    return None


def _key_origin(options: SearchOptions) -> str:
    """Why the client looked under the key it read the trades from."""
    if options.items_key is not None:
        return "the configured items_key"
    return "one of huke_client.pagination.LIST_KEYS"


def _shape_passed(data: Any, options: SearchOptions, page: TradePage) -> Check:
    """``huke.shape`` for a page the client read."""
    details: dict[str, Any] = {"data": json_type(data), "items": len(page.trades)}
    lines: list[str] = []
    if data is None:
        summary = (
            "data is null, read as an empty window (the client has null_first_page_is_empty=True)"
        )
    elif isinstance(data, list):
        summary = (
            f"data is a bare list ({plural(len(data), 'trade')}); "
            "no total: pagination ends on a short page"
        )
        details.update(list_key=None, total_key=None)
    else:
        key = _list_key(data, options) or ""
        total_key = _total_key(data)
        rest = [(k, v) for k, v in data.items() if k not in (key, total_key)]
        head = rest[:OUTLINE_KEYS]
        others = {
            name: outline(v, 0)
            for name, (_, v) in zip(mask_keys(k for k, _ in head), head, strict=True)
        }
        total = (
            f"the total under {total_key!r} ({page.total})"
            if total_key is not None
            else "no total: pagination ends on a short page"
        )
        other = ", ".join(f"{k} ({t})" for k, t in list(others.items())[:8]) or "none"
        if len(rest) > 8:
            other += f", {ELLIPSIS} {plural(len(rest) - 8, 'more key')}"
        summary = (
            f"data is an object with the trades under {key!r} ({_key_origin(options)}), "
            f"{total}; other keys: {other}"
        )
        details.update(
            list_key=key,
            list_key_origin=_key_origin(options),
            total_key=total_key,
            total=page.total,
            other_keys=others,
        )
        lines = [f"data.{k}: {t}" for k, t in others.items()]
        if len(rest) > len(others):
            lines.append(f"{ELLIPSIS} {plural(len(rest) - len(others), 'more key')}")
    if lines:
        details["lines"] = lines
    return make_check("huke.shape", "pass", summary, details=details)


def _trade_lists(value: Any, path: str, depth: int) -> Iterable[tuple[str, list[Any]]]:
    """Every list of objects at or below ``value`` (objects walked ``depth`` levels down)."""
    if isinstance(value, list):
        if any(isinstance(v, Mapping) for v in value):
            yield path, value
        return
    if isinstance(value, Mapping) and depth >= 0:
        for name, inner in zip(mask_keys(value), value.values(), strict=True):
            yield from _trade_lists(inner, f"{path}.{name}", depth - 1)


def _looks_like_trades(items: Sequence[Any]) -> bool:
    return any(isinstance(v, Mapping) and any(f in v for f in _BUYER_FIELDS) for v in items)


def _best_list(data: Any) -> tuple[str, list[Any]] | None:
    """Where the trades most likely are: a list of objects with buyer fields, else any list of
    objects, the shallowest first."""
    found = list(_trade_lists(data, "data", _SEARCH_DEPTH))
    found.sort(key=lambda pair: (not _looks_like_trades(pair[1]), pair[0].count(".")))
    return found[0] if found else None


def _shape_failed(
    data: Any, options: SearchOptions, exc: HukeResponseError
) -> tuple[Check, list[Any] | None]:
    """``huke.shape`` for a reply the client could not read (for ``exc``), and the list of trades
    found in it (``None`` when there is none)."""
    details: dict[str, Any] = {"data": json_type(data)}
    # What the client said was wrong, without the data it quoted (trades are personal data).
    reason = None if exc.reason is None else one_line(exc.reason, 240)
    if reason is not None:
        details["client_error"] = reason
    if isinstance(data, Mapping):
        shown = list(data.items())[:OUTLINE_KEYS]
        keys = {
            name: outline(v)
            for name, (_, v) in zip(mask_keys(k for k, _ in shown), shown, strict=True)
        }
        details["keys"] = keys
        details["lines"] = [f"data.{k}: {t}" for k, t in keys.items()]
        if len(data) > len(keys):
            details["lines"].append(f"{ELLIPSIS} {plural(len(data) - len(keys), 'more key')}")
        named = ", ".join(map(repr, list(keys)[:8])) + (f", {ELLIPSIS}" if len(data) > 8 else "")
        received = f"data is an object with keys {named}"
    elif isinstance(data, list):
        received = f"data is a list: {array_outline(data)}"
    elif data is None:
        received = "data is null or missing"
    else:
        received = f"data is {outline(data)}, not a list or an object"
    best = _best_list(data)
    items: list[Any] | None = None
    if data is None:
        summary = f"{received}: the client reads that as a lost page, not an empty window"
        fix = (
            f"{WIDER_FIX}; if Huke answers an empty window with null data, make the client with "
            "HukeClient(..., null_first_page_is_empty=True)"
        )
    elif best is None:
        summary = f"{received}; no list of objects (trades) in it"
        fix = "report this shape (the lines below) to the huke-k3-bridge maintainers"
    else:
        path, items = best
        details["trades_at"] = path
        where = f"{received}; {array_outline(items)} at {path}"
        key = path.removeprefix("data.")
        readable = isinstance(data, Mapping) and _list_key(data, options) == key
        if path == "data" or readable:
            # The client found the list itself: something else in it is unreadable.
            found = received if path == "data" else f"{received}; trades at {path}"
            summary = f"{found}, which the client could not read" + (
                f": {reason}" if reason else ""
            )
            fix = "report this shape (the lines below) to the huke-k3-bridge maintainers"
        elif "." not in key and key in data:  # not a masked key: one the client can be told
            details["items_key"] = key
            summary = f"{where}: the client looks under {_looked_under(options)}"
            fix = (
                f"pass items_key={key!r} (huke-k3 sync --items-key {key}; "
                f"SyncOptions(search=SearchOptions(items_key={key!r})))"
            )
        elif "." not in key:
            summary = f"{where}, under a key that is no field name (masked here)"
            fix = "report this shape (the lines below) to the huke-k3-bridge maintainers"
        else:
            summary = f"{where}: the client looks only directly under data"
            fix = (
                f"items_key cannot reach {path} (a key directly under data only): report this "
                "shape (the lines below) to the huke-k3-bridge maintainers"
            )
    return make_check("huke.shape", "fail", summary, fix, details), items


def _looked_under(options: SearchOptions) -> str:
    if options.items_key is not None:
        return f"the configured items_key {options.items_key!r}"
    return "one of " + ", ".join(LIST_KEYS) + " (huke_client.pagination.LIST_KEYS)"


def _when(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="minutes")
