"""One ``trade/searchTrades`` reply read into a ``TradePage``: where its trades are, and each
trade structured.

A missing or null ``data`` is not a page shape: it is a lost page (a ``HukeResponseError``, retried
like a body cut short); only a client made with ``null_first_page_is_empty=True`` reads it on page
1 as an empty window (see ``extract_page``). The shapes detected are described in ``pagination``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from _huke_k3_core import WireFieldError, dumps, json_kind, snippet, structure_lenient
from _huke_k3_core._models import wire_name

from ._errors import HukeResponseError
from ._models import Trade, TradePage, converter
from .pagination import LIST_KEYS, TOTAL_KEYS

__all__ = ["PageData", "extract_page", "has_next", "trade_page"]

logger = logging.getLogger("huke_client")

#: Resolved once: the converter's dispatch per trade shows up on every page.
_structure_trade = converter.get_structure_hook(Trade)


@functools.cache
def _trade_fields() -> dict[str, str]:
    """Each declared ``Trade`` field by its wire key: ``Trade.buyer_nick (wire key 'buyerNick',
    text or a number)``, what a warning names (built on the first warning)."""
    return {
        wire_name(field): f"Trade.{field.name} (wire key {wire_name(field)!r}, "
        # Text fields take numbers too (ids arrive as either).
        + (
            "text or a number"
            if field.type in (str, str | None)
            else f"declared {getattr(field.type, '__name__', field.type)}"
        )
        + ")"
        for field in attrs.fields(attrs.resolve_types(Trade))
        if field.name != "raw"
    }


@attrs.frozen
class PageData:
    """The items of one page and, when the server said, the total across all pages."""

    items: list[Any]
    total: int | None


def _shape_error(
    where: str, data: Any, reason: str, redact: Callable[[str], str], *, reply: str | None = None
) -> HukeResponseError:
    """``data`` is not a page, for ``reason`` (kept as the error's ``reason``); the message
    quotes ``reply`` (the whole body) when given, else ``data``. A missing ``data`` (``None``) is
    a lost page: transient."""
    body = redact(snippet(dumps(data) if reply is None else reply))
    error = HukeResponseError(
        f"{where}: {reason}; received: {body}", body=body, transient=data is None
    )
    error.reason = reason
    return error


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
    null_is_empty: bool = False,
    reply: str | None = None,
) -> PageData:
    """The list of items (and the total, if any) in a reply's ``data``.

    A missing or null ``data`` (``None``) is a ``HukeResponseError`` marked ``transient``, so that
    reads retry it like a body cut short: a success that carries no list is a lost page, and
    counting it as an empty one would end the window on trades never seen. ``null_is_empty=True``
    (the client passes it for page 1 only, see ``trade_page``) accepts it as an empty page
    without a total instead. ``reply`` (the whole body, when known) is what the error quotes.
    Raises ``HukeResponseError`` naming the keys it saw when the shape is anything else.
    """
    if data is None:
        if null_is_empty:
            return PageData([], None)
        raise _shape_error(
            where,
            None,
            "the reply says success but its data is missing or null, where a list of trades (or "
            "an object holding one) was expected; a page that holds nothing is a lost page, not "
            "an empty one",
            redact,
            reply=reply,
        )
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
    """Whether another page may hold trades, judged from one page that held ``count`` items.

    ``seen`` counts the items received in this range so far, this page included. A full page
    always may (even when ``seen`` reached the total: only the next page shows where the listing
    ends). An empty page does not. A short page does only while a known ``total`` says more (the
    server may cap page sizes below what was asked). ``PagePlan`` judges a whole reading of a
    window more strictly: there a short page while the total says more is an inconsistency,
    unless it is page 1 (see ``_plan``).
    """
    if count >= page_size:
        return True
    if count == 0 or total is None:
        return False
    return seen < total


def trade_page(
    data: Any,
    *,
    page: int,
    page_size: int,
    items_key: str | None,
    null_is_empty: bool,
    where: str,
    redact: Callable[[str], str],
    reply: str | None = None,
) -> TradePage:
    """Page ``page`` of a search for ``page_size`` trades a page, from its reply's ``data``.

    A trade with an odd field is kept (see below); an item that is not an object is a
    ``HukeResponseError``. ``null_is_empty`` and ``reply`` are ``extract_page``'s.
    """
    found = extract_page(
        data,
        where=where,
        items_key=items_key,
        redact=redact,
        null_is_empty=null_is_empty,
        reply=reply,
    )
    structure = _structure_trade
    trades: list[Trade] = []
    for index, item in enumerate(found.items):
        try:
            trades.append(structure(item, Trade))
            continue
        except WireFieldError:
            pass
        if not isinstance(item, Mapping):
            body = redact(snippet(dumps(item)))
            raise HukeResponseError(
                f"{where}: trade #{index} of page {page} is not a JSON object: {body}",
                body=body,
            )
        # One odd field must not cost the page (and every page after it): the trade is kept
        # whole in ``raw``, its unreadable declared fields left unset, for the caller to judge.
        trade, problems = structure_lenient(converter, item, Trade)
        for problem in problems:
            # What the value is, never the value: a trade holds personal data (names, phone
            # numbers), and this goes to stderr at the default level.
            logger.warning(
                "%s page %d trade #%d: %s received %s; left unset, kept in trade.raw",
                where,
                page,
                index,
                _trade_fields().get(problem.wire_key, f"Trade[{problem.wire_key!r}]"),
                json_kind(problem.value),
            )
        trades.append(trade)
    # Assumes the earlier pages were full: a single call cannot know better.
    seen = (page - 1) * page_size + len(trades)
    more = has_next(count=len(trades), page_size=page_size, total=found.total, seen=seen)
    return TradePage(
        trades=trades,
        page=page,
        page_size=page_size,
        total=found.total,
        has_next=more,
        raw=data,
    )
