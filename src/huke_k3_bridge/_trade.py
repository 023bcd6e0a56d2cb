"""Reading a trade's wire fields, whatever shape the trade arrives in.

The bridge works on ``huke_client.Trade`` objects (which keep every wire field in ``raw``), but
transforms are easier to try out on plain dicts, so both are accepted everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol, TypeAlias

from huke_client import TRADE_ID_KEYS, Trade


class WireRecord(Protocol):
    """Anything that keeps the wire object it was built from, such as ``huke_client.Trade``."""

    @property
    def raw(self) -> Mapping[str, Any]: ...


#: A ``huke_client.Trade``, or any mapping of wire field names to values.
TradeLike: TypeAlias = WireRecord | Mapping[str, Any]

#: Wire fields that may carry a trade's own identity, tried in this order: the same as the
#: client's, which tells a page served twice by them.
TRADE_ID_FIELDS: tuple[str, ...] = TRADE_ID_KEYS

_SHORT = 60


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


def as_text(value: Any) -> str | None:
    """A wire value as text: text as is, numbers in decimal, anything else ``None``.

    Ids arrive as text or numbers depending on the endpoint; booleans, lists and objects are not
    identifiers or names, so they do not silently become ``"True"`` or ``"[1, 2]"``; nor do the
    non-finite floats a lenient JSON parser reads from ``NaN`` / ``Infinity`` become ``"nan"``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(value)
    return None


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
        return f"the customer number {short(number, 40)} is not a finite value"
    return None


def short(value: Any, limit: int = _SHORT) -> str:
    """A repr short enough for one line of a report or an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip(text: str | None, limit: int = _SHORT) -> str:
    """Text cut to ``limit`` characters on one line (for ids and names in messages)."""
    if text is None:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def trade_id(trade: TradeLike, id_fields: tuple[str, ...] = TRADE_ID_FIELDS) -> str | None:
    """The trade's own id, if one of ``id_fields`` holds text or a number."""
    try:
        fields = wire_fields(trade)
    except TypeError:
        return None
    for key in id_fields:
        text = as_text(fields.get(key))
        if text is not None and text.strip():
            return text.strip()
    return None


def describe_trade(trade: TradeLike) -> str:
    """How a trade is named in messages: its id, else its buyerCid, else its field names."""
    ident = trade_id(trade)
    if ident is not None:
        return f"trade {short(ident)}"
    try:
        fields = wire_fields(trade)
    except TypeError:
        return f"trade {short(trade)}"
    cid = as_text(fields.get("buyerCid"))
    if cid is not None and cid.strip():
        return f"trade of buyerCid {short(cid.strip())}"
    return "trade without id or buyerCid"
