"""HTTP client ownership, retries and error mapping, shared by every sync and async client.

``SyncAPIClient`` and ``AsyncAPIClient`` differ only in the lines that do I/O (``send``, ``sleep``,
``close``); every decision lives in ``BaseAPIClient``.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, ClassVar, Generic, TypeVar

import attrs
import httpx
from typing_extensions import Self

from ._env import check_max_retries, check_retry, check_timeout, check_url
from ._errors import (
    ConnectionFailedError,
    HTTPStatusError,
    RequestTimeoutError,
    ResponseFormatError,
    safe_url,
    snippet,
)
from ._redact import Redactor
from ._retry import RETRYABLE_STATUSES, RetryableResponse, RetryPolicy
from ._settings import ARGUMENT, resolve_sources
from ._text import one_line
from ._version import __version__

T = TypeVar("T")
HttpxClientT = TypeVar("HttpxClientT", httpx.Client, httpx.AsyncClient)

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
TimeoutTypes = float | httpx.Timeout | None


class NotGiven:
    """Marks an argument the caller left out, where ``None`` is a meaningful value."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


USER_AGENT = f"huke-k3-bridge/{__version__} httpx/{httpx.__version__}"


@attrs.frozen
class ErrorTypes:
    """The client-specific classes the shared machinery raises."""

    http_status: type[HTTPStatusError]
    connection: type[ConnectionFailedError]
    timeout: type[RequestTimeoutError]
    response_format: type[ResponseFormatError]
    #: Raised for a setting that cannot work (a bad base URL, ``timeout="30"``), at construction.
    config: type[Exception] = ValueError


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON: the exact bytes that are signed are the bytes that are sent."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class JSONTooDeepError(ValueError):
    """A JSON text nested deeper than the parser can follow (it recurses once per level)."""

    def __init__(self, depth: int, *, at_least: bool) -> None:
        self.depth = depth
        #: True when only the start of the text was measured: it nests ``depth`` levels or more.
        self.at_least = at_least
        super().__init__(f"JSON nested {'at least ' if at_least else ''}{depth} levels deep")


def loads(content: str | bytes) -> Any:
    """``json.loads``, where a text nested too deep to parse is a ``ValueError`` like any other
    unreadable text (``JSONTooDeepError``), not a ``RecursionError`` escaping every handler."""
    try:
        return json.loads(content)
    except RecursionError:
        raise _too_deep(content) from None


#: A JSON string (whose brackets do not count) or a bracket.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
#: How much of a too-deep text is measured: its start shows the depth that broke the parser.
_MEASURED = 1 << 20


def _too_deep(content: str | bytes) -> JSONTooDeepError:
    data = content.encode("utf-8", "replace") if isinstance(content, str) else content
    depth = deepest = 0
    for token in _JSON_TOKEN.findall(data, 0, _MEASURED):
        if token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return JSONTooDeepError(deepest, at_least=len(data) > _MEASURED)


def _never_reached_server(exc: httpx.TransportError) -> bool:
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


class BaseAPIClient(Generic[HttpxClientT]):
    """Configuration and every retry decision; no I/O."""

    _errors: ClassVar[ErrorTypes]
    _logger: ClassVar[logging.Logger]

    def __init__(
        self,
        *,
        base_url: str | httpx.URL,
        timeout: TimeoutTypes,
        max_retries: int | None,
        retry: RetryPolicy | None,
        http_client: HttpxClientT | None,
        redactor: Redactor,
        url_setting: str = "base_url",
        setting_sources: Mapping[str, str] | None = None,
    ) -> None:
        # Every setting is checked here, so that a mistake surfaces where it was made, not at the
        # first request (where httpx would report timeout="30" as a TypeError deep in a send).
        error = self._errors.config
        base = check_url(base_url, setting=url_setting, error=error)
        self._base_url = base.copy_with(path=base.path.rstrip("/") + "/")
        self._urls: dict[str, httpx.URL] = {}
        self.timeout = check_timeout(timeout, error=error)
        max_retries = check_max_retries(max_retries, error=error)
        policy = check_retry(retry, error=error) or RetryPolicy()
        if max_retries is not None:
            policy = attrs.evolve(policy, max_retries=max_retries)
        self.retry = policy
        self._redact = redactor
        # A password in the base URL is a credential too: httpx logs every request's URL.
        if self._base_url.password:
            redactor.add(self._base_url.password)
        # Where each setting came from (``describe_settings``): the client's own, over these.
        self._setting_sources: dict[str, str] = resolve_sources(
            setting_sources,
            {
                "timeout": (timeout, DEFAULT_TIMEOUT),
                "max_retries": (retry if max_retries is None else max_retries, None),
            },
        )
        self._owns_http = http_client is None
        self._http: HttpxClientT = http_client if http_client is not None else self._default_http()

    def _default_http(self) -> HttpxClientT:
        raise NotImplementedError

    @property
    def base_url(self) -> httpx.URL:
        """Where request paths are resolved (always ends with ``/``)."""
        return self._base_url

    @property
    def max_retries(self) -> int:
        return self.retry.max_retries

    def with_options(
        self,
        *,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> Self:
        """A copy with other settings that shares this client's connection pool and session."""
        error = self._errors.config
        max_retries = check_max_retries(max_retries, error=error)
        retry = check_retry(retry, error=error)
        new_timeout = None if isinstance(timeout, NotGiven) else check_timeout(timeout, error=error)
        clone = copy.copy(self)
        clone._owns_http = False
        changed = {
            "timeout": new_timeout,
            "max_retries": retry if max_retries is None else max_retries,
        }
        clone._setting_sources = {
            **self._setting_sources,
            **{name: ARGUMENT for name, value in changed.items() if value is not None},
        }
        if new_timeout is not None:
            clone.timeout = new_timeout
        if retry is not None:
            clone.retry = retry
        if max_retries is not None:
            clone.retry = attrs.evolve(clone.retry, max_retries=max_retries)
        return clone

    # -- requests ---------------------------------------------------------------------------

    def _url(self, path: str) -> httpx.URL:
        # URL.join re-parses both URLs; a client calls few distinct paths, many times each.
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = self._base_url.join(path.lstrip("/"))
        return url

    def _build_request(
        self, path: str, content: bytes, headers: Mapping[str, str] | None = None
    ) -> httpx.Request:
        all_headers = {"Content-Type": "application/json", "Accept": "application/json"}
        all_headers.setdefault("User-Agent", USER_AGENT)
        if headers:
            all_headers.update(headers)
        return self._http.build_request(
            "POST", self._url(path), content=content, headers=all_headers, timeout=self.timeout
        )

    # -- decisions ------------------------------------------------------------------------------

    def _check_status(self, response: httpx.Response) -> None:
        # Redirects are never followed (see ``_send``); a 3xx read as a reply would be an empty
        # body "that is not JSON", hiding the status and where it points.
        if response.status_code >= 300:
            raise self._status_error(response)

    def _status_error(self, response: httpx.Response) -> HTTPStatusError:
        return self._errors.http_status.from_response(
            response, self._redact(snippet(response.text)), redact=self._redact
        )

    def decode_json(self, response: httpx.Response) -> Any:
        """The body as JSON, or the client's format error quoting a (redacted) snippet of it."""
        try:
            return loads(response.content)
        except JSONTooDeepError as exc:
            body = self._redact(snippet(response.text))
            # Well-formed as far as it was read: a repeat would bring the same, not retried.
            raise self._errors.response_format(
                f"{response.request.url.path} answered {exc}, deeper than this client reads: "
                f"{body!r}",
                body=body,
            ) from exc
        except ValueError as exc:
            body = self._redact(snippet(response.text))
            raise self._errors.response_format(
                f"{response.request.url.path} answered with a body that is not JSON: {body!r}",
                body=body,
                transient=True,
            ) from exc

    def _undecodable(
        self, exc: httpx.DecodingError, response: httpx.Response | None = None
    ) -> ResponseFormatError:
        """The format error for a body its ``Content-Encoding`` cannot decode (``response``
        when at hand: an auth flow that reads a reply itself raises without it).

        Transient, like a body cut short: the bytes were damaged on the way, and a read retried
        may come back whole; a write is not sent again (see ``_retry_delay``).
        """
        url = safe_url(exc.request.url) if _has_request(exc) else "?"
        encoding = one_line(response.headers.get("Content-Encoding"), 60) if response else ""
        declared = f"Content-Encoding {encoding!r}" if encoding else "its Content-Encoding"
        detail = self._redact(one_line(str(exc), 200)) or type(exc).__name__
        return self._errors.response_format(
            f"POST {url} answered a body that cannot be decoded as {declared} says: {detail}",
            body="",
            transient=True,
        )

    def _retry_delay(
        self,
        exc: Exception,
        retries: int,
        *,
        idempotent: bool,
        request: httpx.Request | None = None,
    ) -> float:
        """How long to wait before retrying after ``exc``; raises the user-facing error instead
        when the failure is final. Must be called from inside the ``except`` block. ``request`` is
        the caller's request, to tell its failure from that of a request an auth flow sent first."""
        retry_after: float | None = None
        if isinstance(exc, httpx.TransportError):
            reached = _may_have_reached_server(exc, request)
            retryable = idempotent or not reached
            error: Exception = self._transport_error(exc, reached_server=reached)
        elif isinstance(exc, httpx.DecodingError):
            # A reply damaged past decoding is a lost reply: a read is repeated, a write is not
            # (it may have been carried out), unless what was damaged was the reply to a request
            # an auth flow sent first (a login), the caller's own never sent.
            reached = _may_have_reached_server(exc, request)
            retryable = idempotent or not reached
            error = self._undecodable(exc)
            error.request_sent = reached
        elif isinstance(exc, HTTPStatusError):
            status = exc.status_code
            retryable = status in RETRYABLE_STATUSES and (idempotent or status == 429)
            error = exc
            retry_after = exc.retry_after
        elif isinstance(exc, ResponseFormatError) and exc.transient:
            retryable, error = idempotent, exc
        elif isinstance(exc, RetryableResponse):
            retryable, error, retry_after = True, exc.error, exc.retry_after
        else:
            raise exc
        if not retryable or retries >= self.retry.max_retries:
            if isinstance(exc, httpx.TransportError):
                raise error from exc
            raise error
        delay = self.retry.delay(retries, retry_after)
        self._logger.info(
            "retrying in %.2fs after %s (retry %d of %d)",
            delay,
            # Our errors are redacted when made; one raised by a hook or an auth may not be.
            self._redact(type(error).__name__ + ": " + str(error)),
            retries + 1,
            self.retry.max_retries,
        )
        return delay

    def _transport_error(
        self, exc: httpx.TransportError, *, reached_server: bool | None = None
    ) -> ConnectionFailedError:
        url = safe_url(exc.request.url) if _has_request(exc) else "?"
        reached = not _never_reached_server(exc) if reached_server is None else reached_server
        cls = (
            self._errors.timeout
            if isinstance(exc, httpx.TimeoutException)
            else self._errors.connection
        )
        what = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
        detail = self._redact(str(exc)) or type(exc).__name__
        return cls(f"POST {url} {what}: {detail}", url=url, reached_server=reached)

    def _received(
        self, response: httpx.Response, started: float, parse: Callable[[httpx.Response], T]
    ) -> T:
        """What both ``_send`` loops do with a response: log it, check its status, parse it."""
        self._log_response(response, started)
        self._check_status(response)
        return parse(response)

    def _log_response(self, response: httpx.Response, started: float) -> None:
        if self._logger.isEnabledFor(logging.DEBUG):
            self._logger.debug(
                "%s %s -> %d in %.1f ms",
                response.request.method,
                response.request.url.path,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )


def _may_have_reached_server(
    exc: httpx.TransportError | httpx.DecodingError, request: httpx.Request | None
) -> bool:
    """False when the caller's request surely never reached the server: the connection was never
    made, or what failed was another request an auth flow sent before it (a login), so the
    caller's own request was never sent."""
    if isinstance(exc, httpx.TransportError) and _never_reached_server(exc):
        return False
    return request is None or not _has_request(exc) or exc.request is request


def _has_request(exc: httpx.RequestError) -> bool:
    try:
        exc.request  # noqa: B018 - httpx raises RuntimeError when the request is unset
    except RuntimeError:
        return False
    return True


async def _async_sleep(seconds: float) -> None:
    import anyio  # loaded on the first async retry: sync programs never pay for it

    await anyio.sleep(seconds)


#: Failures ``_retry_delay`` judges (retried, or turned into the user-facing error).
_RETRY_CANDIDATES = (
    httpx.TransportError,
    httpx.DecodingError,
    HTTPStatusError,
    ResponseFormatError,
    RetryableResponse,
)


class SyncAPIClient(BaseAPIClient[httpx.Client]):
    def _default_http(self) -> httpx.Client:
        return httpx.Client(timeout=self.timeout, limits=DEFAULT_LIMITS, verify=True)

    def _send(
        self,
        make_request: Callable[[], httpx.Request],
        parse: Callable[[httpx.Response], T],
        *,
        auth: httpx.Auth | None = None,
        idempotent: bool = True,
    ) -> T:
        """Send a freshly built (and so freshly signed) request per attempt until one succeeds."""
        retries = 0
        while True:
            request, started = make_request(), time.perf_counter()
            try:
                # Read here, not by httpx: a body its Content-Encoding garbles then fails with
                # the response at hand, so that the error can name the encoding. Redirects are
                # never followed, whatever the user's client says: httpx would carry the
                # signatures, session cookies and login bodies (auth flows' requests too) to
                # whatever host a Location names.
                response = self._http.send(
                    request,
                    auth=auth or httpx.USE_CLIENT_DEFAULT,
                    stream=True,
                    follow_redirects=False,
                )
                try:
                    response.read()
                except httpx.DecodingError as decoding:
                    raise self._undecodable(decoding, response) from decoding
                finally:
                    response.close()
                return self._received(response, started, parse)
            except _RETRY_CANDIDATES as exc:
                delay = self._retry_delay(exc, retries, idempotent=idempotent, request=request)
            time.sleep(delay)
            retries += 1

    def close(self) -> None:
        """Close the connection pool (unless it was handed in by the caller, who then owns it)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncAPIClient(BaseAPIClient[httpx.AsyncClient]):
    def _default_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.timeout, limits=DEFAULT_LIMITS, verify=True)

    async def _send(
        self,
        make_request: Callable[[], httpx.Request],
        parse: Callable[[httpx.Response], T],
        *,
        auth: httpx.Auth | None = None,
        idempotent: bool = True,
    ) -> T:
        """Send a freshly built (and so freshly signed) request per attempt until one succeeds."""
        retries = 0
        while True:
            request, started = make_request(), time.perf_counter()
            try:
                # Read here, and redirects never followed: as in SyncAPIClient._send.
                response = await self._http.send(
                    request,
                    auth=auth or httpx.USE_CLIENT_DEFAULT,
                    stream=True,
                    follow_redirects=False,
                )
                try:
                    await response.aread()
                except httpx.DecodingError as decoding:
                    raise self._undecodable(decoding, response) from decoding
                finally:
                    await response.aclose()
                return self._received(response, started, parse)
            except _RETRY_CANDIDATES as exc:
                delay = self._retry_delay(exc, retries, idempotent=idempotent, request=request)
            await _async_sleep(delay)
            retries += 1

    async def aclose(self) -> None:
        """Close the connection pool (unless it was handed in by the caller, who then owns it)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
