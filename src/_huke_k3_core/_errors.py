"""The error shapes both clients share; each client subclasses them under its own base class."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ._redact import redact_everywhere
from ._retry import parse_retry_after
from ._text import one_line, plural

SNIPPET_LIMIT = 300
#: How much of a redirect's ``Location`` a message shows.
_LOCATION_LIMIT = 200


def snippet(text: str | bytes, limit: int = SNIPPET_LIMIT) -> str:
    """A short, single-line excerpt of a body, for error messages."""
    return one_line(text, limit)


def json_type(value: Any) -> str:
    """The JSON type of a decoded value: ``string``, ``integer``, ``number``, ``boolean``,
    ``null``, ``object`` or ``array`` (a Python type's name for anything JSON does not make)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def json_kind(value: Any) -> str:
    """What a received JSON value is, without its content: ``"text of 11 characters"``, ``"a
    JSON object of 1 key"``. For logs and messages about a value that may be personal data."""
    kind = json_type(value)
    if kind == "null":
        return kind
    if kind in ("integer", "number"):
        return "a JSON number"
    if kind == "boolean":
        return "a JSON boolean"
    if kind == "string":
        return f"text of {plural(len(value), 'character')}"
    if kind == "object":
        return f"a JSON object of {plural(len(value), 'key')}"
    if kind == "array":
        return f"a JSON array of {plural(len(value), 'item')}"
    return f"a {kind}"


def safe_url(url: httpx.URL) -> str:
    """A URL as error messages show it: no query, no user name or password."""
    return str(url.copy_with(userinfo=b"", query=None))


class SDKError(Exception):
    """Base of every error raised by the clients in this distribution."""

    #: False when the caller's request was surely never sent, so a write cannot have been carried
    #: out and may be sent again: the connection was never made, or what failed was a request an
    #: auth flow sends before the caller's own (a login).
    request_sent: bool = True


class HTTPStatusError(SDKError):
    """The server answered with a non-success HTTP status (an error, or a redirect: the clients
    follow none, since a redirect of a signed POST means the base URL is not the service's)."""

    #: Where a redirect (3xx) pointed, as ``safe_url`` shows it ("" when it named no Location);
    #: None for any other status.
    location: str | None = None

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
    def from_response(
        cls,
        response: httpx.Response,
        body: str,
        *,
        redact: Callable[[str], str] | None = None,
    ) -> HTTPStatusError:
        """The error for ``response``; ``body`` is its snippet, already redacted. ``redact`` is
        the client's redactor, for the ``Location`` of a redirect (server text too: it may
        quote a session id or a signature); without one, every live redactor's."""
        request = response.request
        status = response.status_code
        location: str | None = None
        if 300 <= status < 400:
            # Its body (often empty) says nothing; where it points says what to fix.
            location, hint = _redirect(response, redact or redact_everywhere)
            target = f"to {location}" if location else "naming no Location"
            message = (
                f"{request.method} {request.url.path} answered HTTP {status}, a redirect "
                f"{target} (not followed): {hint}"
            )
        else:
            message = f"{request.method} {request.url.path} answered HTTP {status}: {body!r}"
        error = cls(
            message,
            status_code=status,
            url=safe_url(request.url),
            body=body,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
        error.location = location
        return error


class ConnectionFailedError(SDKError):
    """The request could not be delivered or its reply could not be read."""

    def __init__(self, message: str, *, url: str, reached_server: bool) -> None:
        super().__init__(message)
        self.url = url
        #: False only when the request surely never reached the server (connect failures, or a
        #: login sent first failing).
        self.reached_server = reached_server
        self.request_sent = reached_server


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


def _redirect(response: httpx.Response, redact: Callable[[str], str]) -> tuple[str, str]:
    """Where a 3xx points ("" for no Location) and what that says about the base URL.

    The target is shown absolute, without user info, query or fragment: where single sign-on
    pages carry their tickets. What a path still holds (an ASP.NET cookieless session,
    ``/(S(id))/``, a signature echoed back) is masked by ``redact``, before the URL is parsed and
    again after: parsing may re-encode a secret into a form the first pass did not match.
    """
    url = response.request.url
    location = redact(response.headers.get("Location", "").strip())
    if not location:
        return "", "check the base URL (a proxy or a web server answering instead of the service)"
    try:
        target: httpx.URL | None = url.join(location)
    except (httpx.InvalidURL, ValueError, TypeError):
        target = None
    if target is None:
        # Not readable as a URL: shown up to its query, past anything that may be user info.
        shown = location.split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
        return redact(one_line(shown, _LOCATION_LIMIT)), "check the base URL"
    shown = redact(
        one_line(str(target.copy_with(userinfo=b"", query=None, fragment=None)), _LOCATION_LIMIT)
    )
    if target.host != url.host:
        hint = (
            "it leads to another host (a login page, a proxy?): check that the base URL is the "
            "service's own"
        )
    elif target.scheme == "https" and url.scheme == "http":
        hint = "the server wants https: start the base URL with https://"
    else:
        hint = (
            "check the base URL's path (a missing or extra segment, a trailing slash), or "
            "whether a login page answers instead of the service"
        )
    return shown, hint
