"""Reading a trade's wire fields, whatever shape the trade arrives in.

The bridge works on ``huke_client.Trade`` objects (which keep every wire field in ``raw``), but
transforms are easier to try out on plain dicts, so both are accepted everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeAlias

from _huke_k3_core import short_repr, wire_text
from huke_client import Trade
from huke_client.pagination import TRADE_ID_KEYS


class WireRecord(Protocol):
    """Anything that keeps the wire object it was built from, such as ``huke_client.Trade``."""

    @property
    def raw(self) -> Mapping[str, Any]: ...


#: A ``huke_client.Trade``, or any mapping of wire field names to values.
TradeLike: TypeAlias = WireRecord | Mapping[str, Any]

#: Wire fields that may carry a trade's own identity, tried in this order: the same as the
#: client's, which tells a page served twice by them.
TRADE_ID_FIELDS: tuple[str, ...] = TRADE_ID_KEYS

#: How long a value may be when a message quotes it.
SHORT = 60


def wire_fields(trade: TradeLike) -> Mapping[str, Any]:
    """The trade's wire fields (``trade.raw`` for a ``Trade``, the mapping itself otherwise)."""
    # What a sync reads, several times per trade. A Trade is no mapping, and the abstract
    # isinstance() check below takes longer to say so than the rest of this function.
    if type(trade) is Trade:
        return trade.raw
    if isinstance(trade, Mapping):
        return trade
    raw = getattr(trade, "raw", None)
    if isinstance(raw, Mapping):
        return raw
    raise TypeError(
        f"expected a huke_client.Trade or a mapping of wire fields, not {type(trade).__name__}"
    )


#: Texts that are what a non-finite number becomes when something calls ``str()`` on it.
_NON_FINITE = frozenset(
    {"nan", "-nan", "+nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"}
)


def junk_key(number: object) -> str | None:
    """Why ``number`` cannot be a customer number, or ``None`` when it can.

    Checked on every customer whatever made it (the default transform, templates, user
    functions): an empty or blank number, or the text of a non-finite float, would merge every
    such trade into one junk customer.
    """
    if not isinstance(number, str):
        return f"the customer number is {type(number).__name__}, not text"
    if not number.strip():
        return f"the customer number is {'empty' if not number else 'blank'}"
    if number.strip().casefold() in _NON_FINITE:
        return f"the customer number {short_repr(number, 40)} is not a finite value"
    return None


def trade_id(trade: TradeLike, id_fields: tuple[str, ...] = TRADE_ID_FIELDS) -> str | None:
    """The trade's own id, if one of ``id_fields`` holds text or a number."""
    try:
        fields = wire_fields(trade)
    except TypeError:
        return None
    for key in id_fields:
        text = wire_text(fields.get(key))
        if text is not None and text.strip():
            return text.strip()
    return None


def describe_trade(trade: TradeLike) -> str:
    """How a trade is named in messages: its id, else its buyerCid, else its field names."""
    ident = trade_id(trade)
    if ident is not None:
        return f"trade {short_repr(ident, SHORT)}"
    try:
        fields = wire_fields(trade)
    except TypeError:
        return f"trade {short_repr(trade, SHORT)}"
    cid = wire_text(fields.get("buyerCid"))
    if cid is not None and cid.strip():
        return f"trade of buyerCid {short_repr(cid.strip(), SHORT)}"
    return "trade without id or buyerCid"
