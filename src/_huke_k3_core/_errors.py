"""The error shapes both clients share; each client subclasses them under its own base class."""

from __future__ import annotations

import httpx

from ._retry import parse_retry_after
from ._text import one_line

SNIPPET_LIMIT = 300


def snippet(text: str | bytes, limit: int = SNIPPET_LIMIT) -> str:
    """A short, single-line excerpt of a body, for error messages."""
    return one_line(text, limit)


def safe_url(url: httpx.URL) -> str:
    """A URL as error messages show it: no query, no user name or password."""
    return str(url.copy_with(userinfo=b"", query=None))


class SDKError(Exception):
    """Base of every error raised by the clients in this distribution."""


class HTTPStatusError(SDKError):
    """The server answered with a non-success HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        url: str,
        body: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.url = url
        self.body = body
        #: Seconds the server asked us to wait (``Retry-After``), if it said.
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, response: httpx.Response, body: str) -> HTTPStatusError:
        request = response.request
        return cls(
            f"{request.method} {request.url.path} answered HTTP {response.status_code}: {body!r}",
            status_code=response.status_code,
            url=safe_url(request.url),
            body=body,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )


class ConnectionFailedError(SDKError):
    """The request could not be delivered or its reply could not be read."""

    def __init__(self, message: str, *, url: str, reached_server: bool) -> None:
        super().__init__(message)
        self.url = url
        #: False only when the request surely never reached the server (connect failures).
        self.reached_server = reached_server


class RequestTimeoutError(ConnectionFailedError):
    """The request timed out."""


class ResponseFormatError(SDKError):
    """The body is not what the API documents (not JSON, or not the expected shape)."""

    def __init__(self, message: str, *, body: str, transient: bool = False) -> None:
        super().__init__(message)
        self.body = body
        #: True for a body that could not even be decoded (cut short, garbled): a repeat of the
        #: same read may well succeed. A well-formed body of the wrong shape is not transient.
        self.transient = transient
