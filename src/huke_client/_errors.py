"""The errors ``huke_client`` raises; every one is a :class:`HukeError`."""

from __future__ import annotations

from typing import Any

from _huke_k3_core import (
    ConnectionFailedError,
    HTTPStatusError,
    RequestTimeoutError,
    ResponseFormatError,
    SDKError,
)


class HukeError(SDKError):
    """Base of every error raised by ``huke_client``."""


class HukeAPIError(HukeError):
    """Huke answered with an envelope whose ``code`` is not 200.

    ``code`` and ``msg`` are the envelope's; ``data`` is whatever it carried (often ``None``).
    """

    def __init__(self, message: str, *, code: int | str, msg: str, data: Any, path: str) -> None:
        super().__init__(message)
        self.code = code
        self.msg = msg
        self.data = data
        #: The API path that answered, e.g. ``/openapi/trade/searchTrades``.
        self.path = path


class HukeHTTPError(HukeError, HTTPStatusError):
    """Huke (or a proxy in front of it) answered with an HTTP error status."""


class HukeConnectionError(HukeError, ConnectionFailedError):
    """The request could not be delivered, or its reply could not be read."""


class HukeTimeoutError(HukeConnectionError, RequestTimeoutError):
    """The request timed out."""


class HukeResponseError(HukeError, ResponseFormatError):
    """The body is not JSON, not the ``{"code", "msg", "data"}`` envelope, or ``data`` is not in a
    shape the client understands. ``body`` holds a short snippet of what was received."""

    #: What is wrong with the reply's ``data``, in words, without the data the message quotes
    #: after it (``; received: ...``): set when ``data`` is missing or not in a page's shape;
    #: None for any other error.
    reason: str | None = None


class HukeConfigError(HukeError, ValueError):
    """The client cannot be configured from what was given (e.g. a missing environment variable)."""


class HukePageLimitError(HukeError):
    """Pagination needed more pages than ``max_pages`` allows.

    Raised instead of stopping silently, so that a result is never truncated unnoticed. Raise
    ``max_pages`` or split the range with ``window=``.
    """

    def __init__(self, message: str, *, max_pages: int) -> None:
        super().__init__(message)
        self.max_pages = max_pages


class HukeConsistencyError(HukeError):
    """The listing of one window could not be read consistently, ``max_restarts`` times over.

    Offset pages over a listing that changes shift: a trade removed from the part already read
    moves every later trade one place left, and one of them is never fetched. And a listing that
    ends short of its own total, or whose full pages hold more trades than its total, has lost or
    miscounted a page. Each of these makes the client read the window again from page 1; this
    error is raised when that did not help ``max_restarts`` times, so that trades are never lost
    silently (the bridge then reports a fetch failure and keeps its watermark before the window).
    Retry later, or narrow the range with ``window=``.
    """

    def __init__(
        self,
        message: str,
        *,
        window: tuple[int, int],
        totals_seen: tuple[int, ...],
        max_restarts: int,
        kind: str = "dropped",
    ) -> None:
        super().__init__(message)
        #: The window that could not be read consistently: ``(start_ms, end_ms)``, inclusive.
        self.window = window
        #: The totals the window's pages reported, in order (each change once).
        self.totals_seen = totals_seen
        #: How many times the window was read again before giving up.
        self.max_restarts = max_restarts
        #: What was wrong the last time (see ``huke_client._pagination.RESTART_KINDS``):
        #: ``"dropped"`` (the total fell between two pages), ``"short"`` (the listing ended short
        #: of its total), ``"overfull"`` (full pages held more trades than the total) or
        #: ``"oversized"`` (a page held more than the page size page 1 showed).
        self.kind = kind
