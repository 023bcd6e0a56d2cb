"""The wire keys the client reads a ``trade/searchTrades`` page by.

The shape of ``data`` in a reply is not public, so the client detects it: a bare list, or an object
holding the list under one of ``LIST_KEYS`` (``items_key=`` names another), optionally with a
total under one of ``TOTAL_KEYS``. Trades are told apart by the first of ``TRADE_ID_KEYS`` a page
uses (with the buyer and creation time), to spot a page served twice. ``read_page`` reads a page
from a reply's ``data`` as the client does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import TradePage

__all__ = ["LIST_KEYS", "TOTAL_KEYS", "TRADE_ID_KEYS", "read_page"]

LIST_KEYS = ("list", "trades", "records", "rows", "items", "data")
"""Keys that may hold the list of trades inside an object ``data``, tried in this order."""

TOTAL_KEYS = ("total", "totalCount", "count")
"""Keys that may hold the total number of matching trades, tried in this order."""

TRADE_ID_KEYS: tuple[str, ...] = ("tradeId", "tid", "tradeNo", "orderId", "id")
"""Wire fields that may hold a trade's own id, tried in this order: how a page served twice is
told from new trades. The Huke API does not document one; these are the names seen in public
clients and in the simulator."""


def read_page(
    data: Any,
    *,
    page: int = 1,
    page_size: int,
    items_key: str | None = None,
    null_is_empty: bool = False,
    redact: Callable[[str], str] = str,
) -> TradePage:
    """Page ``page`` (of ``page_size`` trades) of a ``trade/searchTrades`` search, read from its
    reply's ``data`` the way ``search_trades`` reads it: for a body sent through
    ``HukeClient.request`` (``SearchOptions.body`` builds it).

    ``items_key`` is ``SearchOptions.items_key``; ``null_is_empty=True`` reads a null ``data``
    as an empty page (the client does so on page 1 when made with
    ``null_first_page_is_empty=True``), else it is a lost page. ``redact`` masks the text an
    error quotes (e.g. ``client.auth.redactor``). Raises the ``HukeResponseError`` the client
    raises, its ``reason`` set, when ``data`` is not a page.
    """
    # Here, not at the top: the page reader needs the models, which need TRADE_ID_KEYS.
    from ._pages import trade_page

    return trade_page(
        data,
        page=page,
        page_size=page_size,
        items_key=items_key,
        null_is_empty=null_is_empty,
        where="trade/searchTrades",
        redact=redact,
    )
