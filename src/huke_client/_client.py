"""``HukeClient`` and ``AsyncHukeClient``.

Both share ``_HukeCore``: what to send (a signed request per page, from ``SearchOptions``) and how
to read each reply (the envelope, then the page). The two public classes differ only in the lines
that do I/O.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar

import httpx
from typing_extensions import Self, Unpack

from _huke_k3_core import (
    DEFAULT_TIMEOUT,
    MASK,
    AsyncAPIClient,
    BaseAPIClient,
    ErrorTypes,
    HttpxClientT,
    RetryPolicy,
    SyncAPIClient,
    TimeoutTypes,
    check_url,
    dumps,
    mask,
    plural,
    read_env,
    safe_url,
)
from _huke_k3_core._settings import (
    NOT_SET,
    Setting,
    check_sources,
    environment,
    head_masked,
    merge_sources,
    resolve_sources,
    transport_settings,
)
from _huke_k3_core._signature import spell_out_options

from ._auth import HukeAuth
from ._envelope import envelope_code, envelope_data
from ._errors import (
    HukeConfigError,
    HukeConnectionError,
    HukeHTTPError,
    HukeResponseError,
    HukeTimeoutError,
)
from ._models import Trade, TradePage
from ._options import (
    PAGE_KEYS,
    PageKwargs,
    SearchKwargs,
    SearchOptions,
    search_body,
    search_options,
)
from ._pages import extract_page, trade_page
from ._plan import PagePlan, search_ranges
from ._time import TimeLike, to_epoch_ms

__all__ = ["DEFAULT_BASE_URL", "SEARCH_TRADES", "AsyncHukeClient", "HukeClient"]

logger = logging.getLogger("huke_client")

#: Where Huke's open API lives.
DEFAULT_BASE_URL = "https://huke.163.com/openapi"
#: The path of the trade search, relative to the base URL.
SEARCH_TRADES = "trade/searchTrades"
#: The environment variable of each setting ``from_env`` reads.
ENV_NAMES = {
    "app_key": "HUKE_APP_KEY",
    "app_secret": "HUKE_APP_SECRET",
    "base_url": "HUKE_BASE_URL",
    "eid": "HUKE_EID",
}
#: How many leading characters of the app key ``describe_settings`` shows.
_APP_KEY_SHOWN = 4

#: One page's call: the request to send (made afresh for each attempt) and its reader.
_Call = tuple[Callable[[], httpx.Request], Callable[[httpx.Response], TradePage]]


def _check_settings(
    app_key: object,
    app_secret: object,
    eid: object,
    retry_codes: object,
    clock: object,
    null_first_page_is_empty: object,
) -> None:
    """``HukeConfigError`` for a constructor argument that cannot work (the secret never shown)."""
    for name, value in (("app_key", app_key), ("app_secret", app_secret)):
        if not isinstance(value, str):
            article = "an" if type(value).__name__[:1] in "aeiou" else "a"
            raise HukeConfigError(f"{name} must be text, got {article} {type(value).__name__}")
        if not value.strip():
            raise HukeConfigError("app_key and app_secret must both be non-empty")
    if eid is not None and (not isinstance(eid, str) or not eid.strip()):
        raise HukeConfigError(f"eid must be text (or None), got {eid!r}")
    if isinstance(retry_codes, str | bytes) or not isinstance(retry_codes, Iterable):
        raise HukeConfigError(
            f"retry_codes must be a collection of envelope codes such as [429, 'BUSY'], got "
            f"{retry_codes!r}"
        )
    if not callable(clock):
        raise HukeConfigError(f"clock must be a function returning Unix seconds, got {clock!r}")
    if not isinstance(null_first_page_is_empty, bool):
        raise HukeConfigError(
            f"null_first_page_is_empty must be True or False, got {null_first_page_is_empty!r}"
        )


async def _trades_of(pages: AsyncIterator[TradePage]) -> AsyncIterator[Trade]:
    async for page in pages:
        for trade in page.trades:
            yield trade


class _HukeCore(BaseAPIClient[HttpxClientT]):
    """Everything the sync and async Huke clients share; no I/O."""

    _errors: ClassVar[ErrorTypes] = ErrorTypes(
        http_status=HukeHTTPError,
        connection=HukeConnectionError,
        timeout=HukeTimeoutError,
        response_format=HukeResponseError,
        config=HukeConfigError,
    )
    _logger: ClassVar[logging.Logger] = logger

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        *,
        base_url: str | httpx.URL = DEFAULT_BASE_URL,
        eid: str | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        retry_codes: Iterable[int | str] = frozenset(),
        http_client: HttpxClientT | None = None,
        clock: Callable[[], float] = time.time,
        null_first_page_is_empty: bool = False,
        setting_sources: Mapping[str, str] | None = None,
    ) -> None:
        _check_settings(app_key, app_secret, eid, retry_codes, clock, null_first_page_is_empty)
        own_sources = resolve_sources(
            check_sources(setting_sources, HukeConfigError),
            {
                "base_url": (base_url, DEFAULT_BASE_URL),
                "app_key": (app_key, None),
                "app_secret": (app_secret, None),
                "eid": (eid, None),
            },
        )
        #: Signs every request (each attempt afresh).
        self.auth = HukeAuth(app_key, app_secret, eid=eid, clock=clock)
        codes = {c: envelope_code(c) for c in retry_codes}
        bad = [c for c, code in codes.items() if code is None]
        if bad:
            raise HukeConfigError(f"retry_codes must be envelope codes (int or str), got {bad!r}")
        #: Whether a null or missing ``data`` on page 1 means "no trades in this window". Off by
        #: default: the contract does not say how an empty window is answered, and reading a lost
        #: first page as an empty one would skip the whole window silently. Turn it on only for a
        #: Huke seen to answer empty windows that way.
        self.null_first_page_is_empty = bool(null_first_page_is_empty)
        #: Envelope codes that mean "try again later" (e.g. a rate limit); retried like HTTP 429.
        self.retry_codes: frozenset[int | str] = frozenset(
            code for code in codes.values() if code is not None
        )
        # Named explicitly: mypy cannot bind super() of a class generic in a constrained TypeVar.
        BaseAPIClient.__init__(
            self,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            http_client=http_client,
            # The auth registers the secret and every request's ur-sign and ur-checksum.
            redactor=self.auth.redactor,
            setting_sources=own_sources,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """A client configured from ``HUKE_APP_KEY``, ``HUKE_APP_SECRET`` and the optional
        ``HUKE_BASE_URL`` and ``HUKE_EID``; keyword ``overrides`` win over the environment.

        Raises ``HukeConfigError`` naming every required variable that is missing, or
        ``HUKE_BASE_URL`` when it is set but empty or not an absolute http(s) URL.
        ``describe_settings()`` names the variable of each setting read.
        """
        names = ENV_NAMES
        required = [names[a] for a in ("app_key", "app_secret") if a not in overrides]
        values = read_env(
            required=required,
            optional=["HUKE_BASE_URL", "HUKE_EID"],
            error=HukeConfigError,
            environ=environ,
        )
        if "base_url" not in overrides:
            raw = (os.environ if environ is None else environ).get("HUKE_BASE_URL")
            # Set but blank is a mistake (a misspelt ${VAR}), not a wish for the default URL.
            if raw is not None and not raw.strip():
                raise HukeConfigError(
                    "HUKE_BASE_URL is set but empty: unset it to use the default "
                    f"{DEFAULT_BASE_URL}, or set it to Huke's URL"
                )
            if raw is not None:
                check_url(values["HUKE_BASE_URL"], setting="HUKE_BASE_URL", error=HukeConfigError)
        settings: dict[str, Any] = {a: values[v] for a, v in names.items() if v in values}
        read = {a: environment(names[a]) for a in settings}
        sources = merge_sources(read, overrides, HukeConfigError)
        return cls(**{**settings, **overrides}, setting_sources=sources)

    @property
    def app_key(self) -> str:
        """The app key requests are signed with."""
        return self.auth.app_key

    @property
    def eid(self) -> str | None:
        """The enterprise id sent in the ``eid`` header, if any."""
        return self.auth.eid

    def describe_settings(self) -> tuple[Setting, ...]:
        """Every setting of this client, the value as it may be shown and where it came from.

        Sources: ``"environment HUKE_APP_KEY"`` (``from_env``), ``"argument"`` (passed to the
        constructor or as an override), ``"default"``, or what the ``setting_sources=``
        keyword of the constructor names (a factory's record, by argument name). The app
        secret shows only as set (``***``), the app key as its first 4 characters, a URL
        without its password.

        ``setting_sources`` is a constructor keyword, not a setter, so that a client never changes
        once made and a factory passes each source in the same call as its value.
        """
        sources = self._setting_sources
        url, *transport = transport_settings(
            url_name="base_url",
            url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            sources=sources,
        )
        return (
            url,
            Setting(
                "app_key",
                head_masked(self.app_key, _APP_KEY_SHOWN),
                sources["app_key"],
                secret=True,
            ),
            # The constructor refuses an empty secret: it is always set.
            Setting("app_secret", MASK, sources["app_secret"], secret=True),
            Setting("eid", self.eid or NOT_SET, sources["eid"]),
            *transport,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(app_key={self.app_key!r}, app_secret={mask('')}, "
            f"base_url={safe_url(self.base_url)!r}, eid={self.eid!r})"
        )

    # -- any endpoint ------------------------------------------------------------------------

    def _prepare(
        self, path: str, body: Mapping[str, Any] | None
    ) -> tuple[Callable[[], httpx.Request], Callable[[httpx.Response], Any]]:
        # Serialised once: the bytes signed are the bytes sent, on every attempt.
        content = dumps(dict(body) if body is not None else {})

        def make_request() -> httpx.Request:
            return self._build_request(path, content)

        return make_request, self._unwrap

    def _unwrap(self, response: httpx.Response) -> Any:
        """The envelope's ``data``; ``HukeAPIError`` (or a retry) for any other ``code``."""
        return envelope_data(
            self.decode_json(response), response, redact=self._redact, retry_codes=self.retry_codes
        )

    # -- trade/searchTrades ------------------------------------------------------------------

    def _page_call(
        self,
        start: TimeLike,
        end: TimeLike,
        page: int,
        options: SearchOptions | None,
        search: Mapping[str, Any],
    ) -> _Call:
        """``search_trades``: one page's request and reader."""
        found = search_options(search, options, keys=PAGE_KEYS)
        return self._search_call(found, to_epoch_ms(start, "start"), to_epoch_ms(end, "end"), page)

    def _search(
        self,
        start: TimeLike,
        end: TimeLike,
        options: SearchOptions | None,
        search: Mapping[str, Any],
    ) -> tuple[SearchOptions, PagePlan]:
        """``iter_trade_pages``: the options and the plan, every argument checked now (not on
        the first page)."""
        found = search_options(search, options)
        ranges = search_ranges(
            to_epoch_ms(start, "start"), to_epoch_ms(end, "end"), found.window_ms
        )
        return found, PagePlan(ranges, max_pages=found.max_pages, max_restarts=found.max_restarts)

    def _search_call(self, options: SearchOptions, start_ms: int, end_ms: int, page: int) -> _Call:
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise ValueError(f"page must be an int >= 1 (pages count from 1), got {page!r}")
        if start_ms > end_ms:
            raise ValueError(f"start ({start_ms}) is after end ({end_ms})")
        body = search_body(options, start_ms, end_ms, page)
        make_request, unwrap = self._prepare(SEARCH_TRADES, body)

        def parse(response: httpx.Response) -> TradePage:
            data = unwrap(response)
            result = trade_page(
                data,
                page=page,
                page_size=options.page_size,
                items_key=options.items_key,
                # A null ``data`` is a lost page (a transient error, retried, then raised). Only
                # on page 1, and only when the caller says its Huke answers an empty window so,
                # is it an empty page: there no page or total has promised a trade yet. From
                # page 2 on the previous page was full, so trades were promised.
                null_is_empty=page == 1 and self.null_first_page_is_empty,
                where=response.request.url.path,
                redact=self._redact,
                # The body is quoted only where data is missing: decoding it costs on every page.
                reply=response.text if data is None else None,
            )
            self._logger.debug(
                "%s [%d, %d] page %d: %s (total %s)",
                SEARCH_TRADES,
                start_ms,
                end_ms,
                page,
                plural(len(result.trades), "trade"),
                result.total,
            )
            return result

        return make_request, parse

    def _record(self, plan: PagePlan, options: SearchOptions, page: TradePage) -> bool:
        """Tell ``plan`` about ``page``; whether to yield it. A page that shows its window's
        listing inconsistent is not: the window is read again whole, this page included."""
        restart = plan.record(
            count=len(page.trades),
            page_size=options.page_size,
            total=page.total,
            # The page's own wire list (``trade_page`` already found it): plain dicts.
            items=extract_page(
                page.raw, where="", items_key=options.items_key, null_is_empty=True
            ).items,
        )
        if restart is None:
            return True
        self._logger.warning("%s", restart.message())
        return False


class HukeClient(_HukeCore[httpx.Client], SyncAPIClient):
    """Synchronous client for NetEase Huke's open API.

    ```python
    with HukeClient("app-key", "app-secret") as client:
        for trade in client.iter_trades(start=start, end=end):
            print(trade.buyer_nick, trade.buyer_cid)
    ```

    ``max_retries`` (default 2, from ``retry``) applies to connection errors, timeouts, HTTP 429
    and 5xx, and to envelope codes listed in ``retry_codes``; every attempt is signed afresh.
    Time ranges are treated as inclusive at both ends (Huke does not document it).
    """

    def request(
        self, path: str, body: Mapping[str, Any] | None = None, *, idempotent: bool = False
    ) -> Any:
        """POST ``body`` (default ``{}``) to ``{base_url}/{path}``, signed; return the envelope's
        ``data``. Pass ``idempotent=True`` for reads, so that server errors and lost replies are
        retried too (a write is retried only when it surely was not carried out)."""
        return self._send(*self._prepare(path, body), auth=self.auth, idempotent=idempotent)

    @spell_out_options(PageKwargs, SearchOptions)
    def search_trades(
        self,
        *,
        start: TimeLike,
        end: TimeLike,
        page: int = 1,
        options: SearchOptions | None = None,
        **search: Unpack[PageKwargs],
    ) -> TradePage:
        """One page of ``trade/searchTrades`` for trades whose ``time_type`` time is in
        ``[start, end]``. Takes the page options of ``SearchOptions`` (``page_size``, ``source``,
        ``time_type``, ``dealer_list``, ``items_key``, ``extra``); any other keyword adds a
        top-level wire field to the body as given."""
        return self._send(*self._page_call(start, end, page, options, search), auth=self.auth)

    @spell_out_options(SearchKwargs, SearchOptions)
    def iter_trade_pages(
        self,
        *,
        start: TimeLike,
        end: TimeLike,
        options: SearchOptions | None = None,
        **search: Unpack[SearchKwargs],
    ) -> Iterator[TradePage]:
        """Every page of the search, window by window (``window`` splits ``[start, end]`` into
        consecutive ranges at millisecond granularity), page by page, until each window's
        listing ends consistently. Takes every ``SearchOptions`` field as a keyword argument.
        Raises ``HukePageLimitError`` rather than fetch more than ``max_pages`` pages.

        A window ends only on a page shorter than the page size (a full page always asks for
        the next) and, when the replies carry a total, once the trades delivered reach it. A
        page without ``data`` is a lost page (``HukeResponseError``, retried), never an empty
        one (on page 1 only with ``null_first_page_is_empty=True``).

        Pages are offsets into a listing that may change while it is read: a trade removed from
        the part already read shifts the later ones left, and one of them would never be
        fetched. So when the replies carry a total and it drops between two pages of one
        window, or a page shows the listing inconsistent with its total (ending short of it, or
        delivering more), that window is read again from page 1 (a warning is logged). A growing
        total is followed instead: an insertion can only make a trade arrive twice. **Trades may
        repeat — dedupe by your own key (e.g. ``tid``); huke_k3_bridge does.** The page that
        showed the inconsistency is not yielded (the window is read again whole), so the trades
        that existed throughout still first appear in listing order, each repeat after its first
        copy. After ``max_restarts`` restarts of one window (default 3; 0 never restarts)
        ``HukeConsistencyError`` is raised rather than risk losing a trade silently.

        Without a total in the replies (a bare list, or an object without one of
        ``TOTAL_KEYS``) only the page sizes can be judged: a short page ends the window, so a
        shift, a page cut short, or a server that caps the page size below ``page_size`` cannot
        be seen; nor, with a total, can an insertion and a removal between the same two pages,
        which leave the total as it was."""
        return self._pages(*self._search(start, end, options, search))

    @spell_out_options(SearchKwargs, SearchOptions)
    def iter_trades(
        self,
        *,
        start: TimeLike,
        end: TimeLike,
        options: SearchOptions | None = None,
        **search: Unpack[SearchKwargs],
    ) -> Iterator[Trade]:
        """Every trade of every page of ``iter_trade_pages`` (same arguments), in order.

        A window whose listing was inconsistent while it was read is read again; its trades may
        repeat — dedupe by your own key (e.g. ``tid``); huke_k3_bridge does. See
        ``iter_trade_pages`` for when a window ends, what is seen (most of it only with a total
        in the replies) and ``max_restarts``."""
        pages = self._pages(*self._search(start, end, options, search))
        return (trade for page in pages for trade in page.trades)

    def _pages(self, options: SearchOptions, plan: PagePlan) -> Iterator[TradePage]:
        while (call := plan.next_call()) is not None:
            page = self._send(*self._search_call(options, *call), auth=self.auth)
            if self._record(plan, options, page):
                yield page


class AsyncHukeClient(_HukeCore[httpx.AsyncClient], AsyncAPIClient):
    """Asynchronous client for NetEase Huke's open API; the same API as ``HukeClient`` with
    awaitable methods and async iterators.

    ```python
    async with AsyncHukeClient("app-key", "app-secret") as client:
        async for trade in client.iter_trades(start=start, end=end):
            print(trade.buyer_nick)
    ```
    """

    async def request(
        self, path: str, body: Mapping[str, Any] | None = None, *, idempotent: bool = False
    ) -> Any:
        """Async twin of ``HukeClient.request``."""
        return await self._send(*self._prepare(path, body), auth=self.auth, idempotent=idempotent)

    @spell_out_options(PageKwargs, SearchOptions)
    async def search_trades(
        self,
        *,
        start: TimeLike,
        end: TimeLike,
        page: int = 1,
        options: SearchOptions | None = None,
        **search: Unpack[PageKwargs],
    ) -> TradePage:
        """Async twin of ``HukeClient.search_trades``."""
        call = self._page_call(start, end, page, options, search)
        return await self._send(*call, auth=self.auth)

    @spell_out_options(SearchKwargs, SearchOptions)
    def iter_trades(
        self,
        *,
        start: TimeLike,
        end: TimeLike,
        options: SearchOptions | None = None,
        **search: Unpack[SearchKwargs],
    ) -> AsyncIterator[Trade]:
        """Async twin of ``HukeClient.iter_trades``: use with ``async for``."""
        return _trades_of(self._pages(*self._search(start, end, options, search)))

    @spell_out_options(SearchKwargs, SearchOptions)
    def iter_trade_pages(
        self,
        *,
        start: TimeLike,
        end: TimeLike,
        options: SearchOptions | None = None,
        **search: Unpack[SearchKwargs],
    ) -> AsyncIterator[TradePage]:
        """Async twin of ``HukeClient.iter_trade_pages``: use with ``async for``."""
        return self._pages(*self._search(start, end, options, search))

    async def _pages(self, options: SearchOptions, plan: PagePlan) -> AsyncIterator[TradePage]:
        while (call := plan.next_call()) is not None:
            page = await self._send(*self._search_call(options, *call), auth=self.auth)
            if self._record(plan, options, page):
                yield page
