"""The wire keys the client reads a ``trade/searchTrades`` page by.

The shape of ``data`` in a reply is not public, so the client detects it: a bare list, or an object
holding the list under one of ``LIST_KEYS`` (``items_key=`` names another), optionally with a
total under one of ``TOTAL_KEYS``. Trades are told apart by the first of ``TRADE_ID_KEYS`` a page
uses (with the buyer and creation time), to spot a page served twice.
"""

from __future__ import annotations

__all__ = ["LIST_KEYS", "TOTAL_KEYS", "TRADE_ID_KEYS"]

LIST_KEYS = ("list", "trades", "records", "rows", "items", "data")
"""Keys that may hold the list of trades inside an object ``data``, tried in this order."""

TOTAL_KEYS = ("total", "totalCount", "count")
"""Keys that may hold the total number of matching trades, tried in this order."""

TRADE_ID_KEYS: tuple[str, ...] = ("tradeId", "tid", "tradeNo", "orderId", "id")
"""Wire fields that may hold a trade's own id, tried in this order: how a page served twice is
told from new trades. The Huke API does not document one; these are the names seen in public
clients and in the simulator."""
