"""Huke wire models and the package's one converter.

Field names are snake_case in Python and camelCase on the wire. Every model keeps the object it
was built from in ``raw``, so fields the SDK does not declare survive a round trip unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
from typing_extensions import Self

from _huke_k3_core import WireModel, make_converter

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
