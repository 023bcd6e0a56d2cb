"""Huke wire models and the package's one converter.

Field names are snake_case in Python and camelCase on the wire. Every model keeps the object it
was built from in ``raw``, so fields the SDK does not declare survive a round trip unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

import attrs
import cattrs
from typing_extensions import Self

from _huke_k3_core import WireModel, make_converter, plural, short_repr
from _huke_k3_core._html import Html, paragraph, table

from .pagination import TRADE_ID_KEYS

__all__ = ["SearchTradesRequest", "TimeRange", "Trade", "TradePage", "converter"]

#: The one converter of ``huke_client``: wire dict <-> model.
converter: cattrs.Converter = make_converter()


class _Convertible:
    """``from_wire`` / ``to_wire`` through the package converter."""

    __slots__ = ()

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Self:
        """The model for a wire object (a dict decoded from JSON). Unknown fields are kept."""
        return converter.structure(data, cls)

    def to_wire(self) -> dict[str, Any]:
        """The wire object: what was received, with any changed declared field applied."""
        result: dict[str, Any] = converter.unstructure(self)
        return result


@attrs.frozen(kw_only=True)
class Trade(_Convertible, WireModel):
    """One trade from ``trade/searchTrades``.

    Only the two fields the integration needs are declared; every other wire field is kept and
    readable as ``trade["anyWireField"]`` or ``trade.raw``.
    """

    #: ``buyerNick``: the buyer's nickname.
    buyer_nick: str | None = None
    #: ``buyerCid``: the buyer's customer id in Huke.
    buyer_cid: str | None = None

    def __repr__(self) -> str:
        # One short line whatever the trade holds: the fields people look for, and a count of
        # the rest (``trade.raw`` has them all).
        look = _glance(self)
        parts = []
        if look.id_key is not None:
            parts.append(f"{look.id_key}={short_repr(look.id_value, _VALUE)}")
        parts.append(f"buyer_nick={short_repr(self.buyer_nick, _VALUE)}")
        parts.append(f"buyer_cid={short_repr(self.buyer_cid, _VALUE)}")
        if look.time_key is not None:
            moment = _iso(look.time_value)
            shown = short_repr(look.time_value, _VALUE)
            parts.append(f"{look.time_key}={shown}" + (f" ({moment})" if moment else ""))
        if look.others:
            parts.append(f"{look.others} more wire {plural(look.others, 'field', counted=False)}")
        return f"Trade({', '.join(parts)})"


@attrs.frozen(kw_only=True)
class TimeRange(_Convertible, WireModel):
    """One ``timeRanges`` entry. Values are strings on the wire, as Huke's scheme sends them."""

    #: ``timeType``: which timestamp of a trade the range filters on (``"1"`` in the scheme).
    time_type: str = "1"
    #: ``startTime``: range start, Unix epoch milliseconds.
    start_time: str
    #: ``endTime``: range end, Unix epoch milliseconds.
    end_time: str
    #: ``page``: page number, counted from 1.
    page: str = "1"
    #: ``pageSize``: trades per page.
    page_size: str = "100"


@attrs.frozen(kw_only=True)
class SearchTradesRequest(_Convertible, WireModel):
    """The body of ``trade/searchTrades``."""

    #: ``source``: the order source (``"2"`` in the scheme).
    source: str = "2"
    #: ``dealerList``: ids of the employees who closed the deal (empty = all).
    dealer_list: tuple[str, ...] = ()
    #: ``timeRanges``: the time-range filters (with the page inside each).
    time_ranges: tuple[TimeRange, ...] = ()


@attrs.frozen
class TradePage:
    """One page of ``trade/searchTrades``."""

    #: The trades on this page, in the order Huke returned them.
    trades: list[Trade]
    #: The page number, from 1.
    page: int
    #: The page size that was asked for.
    page_size: int
    #: How many trades the whole query matches, when Huke says (``None`` when it does not).
    total: int | None
    #: Whether another page may hold trades, as far as this page alone tells: a full page always
    #: asks for the next; an empty or short page ends the listing unless a known total says more
    #: (assuming earlier pages were full; ``iter_trade_pages`` judges the whole listing).
    has_next: bool
    #: The response's ``data`` exactly as received.
    raw: Any = attrs.field(repr=False, eq=False)

    def _repr_html_(self) -> str:
        """A notebook's view: the page's figures, then its first trades' id, buyer and time."""
        total = "total unknown" if self.total is None else f"total {self.total}"
        more = "more pages may follow" if self.has_next else "the last page"
        count = len(self.trades)
        summary = paragraph(
            f"{plural(count, 'trade')} (page size {self.page_size}), {total}, {more}",
            bold=f"Huke trades, page {self.page}:",
        )
        offset = (self.page - 1) * self.page_size
        listing = trade_table(self.trades, first=offset, more_hint="see page.trades")
        return Html(f"{summary}\n{listing}")


#: Rows a notebook table shows; the rest are counted.
HTML_ROWS = 20
#: Characters of one value in a trade's repr.
_VALUE = 40
#: Wire fields that may hold a trade's time, tried in this order (epoch ms in Huke's scheme).
TIME_KEYS = ("createTime", "created", "tradeTime", "orderTime", "payTime", "updateTime")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last a datetime holds


class _Glance(NamedTuple):
    """What a person looks for in a trade: its id and time (which wire field, what value) and
    how many other wire fields it has."""

    id_key: str | None
    id_value: Any
    time_key: str | None
    time_value: Any
    others: int


def _glance(trade: Trade) -> _Glance:
    raw = trade.raw
    id_key = next((key for key in TRADE_ID_KEYS if key in raw), None)
    time_key = next((key for key in TIME_KEYS if key in raw), None)
    shown = {id_key, time_key, "buyerNick", "buyerCid"}
    others = sum(1 for key in raw if key not in shown)
    id_value = None if id_key is None else raw.get(id_key)
    time_value = None if time_key is None else raw.get(time_key)
    return _Glance(id_key, id_value, time_key, time_value, others)


def _iso(value: Any) -> str | None:
    """Epoch milliseconds (a number or its digits) as an ISO time in UTC, else ``None``."""
    # A digit string longer than the last datetime's is no time (and int() refuses very long ones).
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 15:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _LAST_MS:
        return None
    moment = _EPOCH + timedelta(milliseconds=value)
    text = moment.isoformat(timespec="milliseconds" if value % 1000 else "seconds")
    return text.replace("+00:00", "Z")


def _header(name: str, keys: set[str | None]) -> str:
    """A column's header: the wire field when every row uses the same one."""
    (key,) = keys if len(keys) == 1 else (None,)
    return key if key is not None else name


def trade_table(trades: Sequence[Trade], *, first: int = 0, more_hint: str | None = None) -> Html:
    """HTML: the first ``HTML_ROWS`` trades, one a row (their position from ``first``), then how
    many more there are (and ``more_hint``: where they are)."""
    looks = [_glance(trade) for trade in trades[:HTML_ROWS]]
    id_keys = {look.id_key for look in looks}
    time_keys = {look.time_key for look in looks}

    def cell(key: str | None, value: Any, keys: set[str | None]) -> str:
        if key is None:
            return ""
        text = str(value) if not isinstance(value, str) else value
        return text if len(keys) == 1 else f"{key}: {text}"

    rows = [
        (
            first + i,
            cell(look.id_key, look.id_value, id_keys),
            trade.buyer_nick,
            trade.buyer_cid,
            cell(look.time_key, _iso(look.time_value) or look.time_value, time_keys),
            look.others,
        )
        for i, (trade, look) in enumerate(zip(trades, looks, strict=False))
    ]
    headers = (
        "#",
        _header("id", id_keys),
        "buyerNick",
        "buyerCid",
        _header("time", time_keys),
        "other fields",
    )
    return table(headers, rows, more=len(trades) - len(rows), more_hint=more_hint)
