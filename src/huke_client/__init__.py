"""Typed sync and async client for the NetEase Huke (网易互客) open API.

```python
from huke_client import HukeClient

with HukeClient.from_env() as client:
    for trade in client.iter_trades(start=start, end=end):
        print(trade.buyer_nick, trade.buyer_cid)
```

``huke_client.testing`` holds ``FakeHuke``, a strict simulator for tests; ``huke_client.signing``
the signature's functions; ``huke_client.pagination`` the wire keys a page is read by.
"""

from _huke_k3_core import RetryPolicy
from _huke_k3_core._deprecation import module_getattr
from _huke_k3_core._settings import Setting

from ._auth import HukeAuth
from ._client import DEFAULT_BASE_URL, AsyncHukeClient, HukeClient
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
from ._options import DEFAULT_MAX_PAGES, PageKwargs, SearchKwargs, SearchOptions
from ._plan import DEFAULT_MAX_RESTARTS
from ._time import TimeLike, to_epoch_ms

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_PAGES",
    "DEFAULT_MAX_RESTARTS",
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
    "PageKwargs",
    "RetryPolicy",
    "SearchKwargs",
    "SearchOptions",
    "SearchTradesRequest",
    "Setting",
    "TimeLike",
    "TimeRange",
    "Trade",
    "TradePage",
    "to_epoch_ms",
]

# Names that moved out of the top level: still served here, with a DeprecationWarning.
__getattr__ = module_getattr(
    __name__,
    moved={
        "LIST_KEYS": "huke_client.pagination:LIST_KEYS",
        "TOTAL_KEYS": "huke_client.pagination:TOTAL_KEYS",
        "TRADE_ID_KEYS": "huke_client.pagination:TRADE_ID_KEYS",
        "body_sign": "huke_client.signing:body_sign",
        "checksum": "huke_client.signing:checksum",
    },
)
