"""Typed sync and async client for the NetEase Huke (网易互客) open API.

>>> from huke_client import HukeClient
>>> client = HukeClient.from_env()  # doctest: +SKIP
>>> for trade in client.iter_trades(start=start, end=end):  # doctest: +SKIP
...     print(trade.buyer_nick, trade.buyer_cid)

``huke_client.testing`` holds ``FakeHuke``, a strict simulator for tests.
"""

from _huke_k3_core import RetryPolicy

from ._auth import HukeAuth, body_sign, checksum
from ._client import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_PAGES,
    DEFAULT_MAX_RESTARTS,
    AsyncHukeClient,
    HukeClient,
    TimeLike,
    to_epoch_ms,
)
from ._errors import (
    HukeAPIError,
    HukeConfigError,
    HukeConnectionError,
    HukeConsistencyError,
    HukeError,
    HukeHTTPError,
    HukePageLimitError,
    HukeResponseError,
    HukeTimeoutError,
)
from ._models import SearchTradesRequest, TimeRange, Trade, TradePage
from ._pagination import LIST_KEYS, TOTAL_KEYS, TRADE_ID_KEYS

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_PAGES",
    "DEFAULT_MAX_RESTARTS",
    "LIST_KEYS",
    "TOTAL_KEYS",
    "TRADE_ID_KEYS",
    "AsyncHukeClient",
    "HukeAPIError",
    "HukeAuth",
    "HukeClient",
    "HukeConfigError",
    "HukeConnectionError",
    "HukeConsistencyError",
    "HukeError",
    "HukeHTTPError",
    "HukePageLimitError",
    "HukeResponseError",
    "HukeTimeoutError",
    "RetryPolicy",
    "SearchTradesRequest",
    "TimeLike",
    "TimeRange",
    "Trade",
    "TradePage",
    "body_sign",
    "checksum",
    "to_epoch_ms",
]
