"""``K3CloudClient`` and ``AsyncK3CloudClient``: the public methods, each one line of I/O.

``_K3Core`` (``_core.py``) turns every operation into a ``Call`` and builds the plans of the
batch's chunks and the query's pages; the two classes only send calls. The full documentation
is on the sync methods; each async method is their twin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import httpx
from typing_extensions import Unpack

from _huke_k3_core import DEFAULT_LIMITS, AsyncAPIClient, Id, SyncAPIClient
from _huke_k3_core._signature import spell_out_options

from ._batch import DEFAULT_CHUNK_SIZE, Chunk
from ._core import Call, _K3Core
from ._options import (
    DEFAULT_MAX_PAGES,
    DEFAULT_PAGE_SIZE,
    FieldKeys,
    PagedQueryKwargs,
    QueryKwargs,
    QueryOptions,
    SaveKwargs,
    SaveOptions,
)
from ._pager import Pager
from ._replies import BatchReply
from .errors import K3CloudError
from .models import BatchSaveResult, OperationRow, SavedRow

__all__ = ["DEFAULT_MAX_PAGES", "DEFAULT_PAGE_SIZE", "AsyncK3CloudClient", "K3CloudClient"]

T = TypeVar("T")


class K3CloudClient(_K3Core[httpx.Client], SyncAPIClient):
    """Synchronous client of K/3 Cloud's Web API.

    ``server_url`` is the site's URL, e.g. ``http://host/k3cloud/``. With ``app_id`` and
    ``app_secret`` requests carry the official SDK's signed headers; with ``password`` the client
    logs in (``ValidateUser``); ``auth=`` takes any auth, e.g. ``SignLogin(...)``. Reads are
    retried on transport errors, 429 and 5xx; writes only when the request surely never reached
    the server, unless ``retry_writes=True``. MsgCode 14 (rate limit) is retried with backoff.
    """

    @classmethod
    def _proxied_http(cls, proxy: str, timeout: httpx.Timeout) -> httpx.Client:
        return httpx.Client(proxy=proxy, timeout=timeout, limits=DEFAULT_LIMITS, verify=True)

    def _run(self, call: Call[T]) -> T:
        factory = self._request_factory(call)
        return self._send(factory, call.parse, auth=self.auth, idempotent=self._idempotent(call))

    def _attempt(self, call: Call[BatchReply] | None) -> BatchReply | K3CloudError | None:
        # A chunk's failure is recorded against its rows; the other chunks go on.
        try:
            return None if call is None else self._run(call)
        except K3CloudError as exc:
            return exc

    @spell_out_options(SaveKwargs, SaveOptions)
    def batch_save(
        self,
        form_id: str,
        models: Iterable[object],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        options: SaveOptions | None = None,
        **kwargs: Unpack[SaveKwargs],
    ) -> BatchSaveResult:
        """Save many models (``Customer`` and other wire models, or dicts), ``chunk_size`` per
        call, one call after the other.

        Every input index ends in exactly one of ``result.saved``/``result.failed``: rows the
        server refused carry its message; rows of a call that failed as a whole carry the reason,
        with ``uncertain=True`` when the call may nevertheless have saved them.

        The save options (``SaveOptions``) are keyword arguments with the documented defaults:
        ``need_update_fields``, ``need_return_fields``, ``is_auto_submit_and_audit=False``,
        ``is_verify_base_data_field=False``, ``is_delete_entry=True``, ``validate_flag=True``,
        ``number_search=True``, ``batch_count``, ``interation_flags``. Other keyword arguments
        (or ``extra={...}``) are sent too (``is_entry_batch_fill=False`` as
        ``IsEntryBatchFill``); ``options=SaveOptions(...)`` gives them all at once.
        """
        run = self._batch_save(form_id, models, chunk_size, SaveOptions.build(options, kwargs))
        for chunk in run.plan.chunks:
            run.settle(chunk, self._attempt(run.call(chunk)))
        return run.plan.result()

    @spell_out_options(SaveKwargs, SaveOptions)
    def save(
        self,
        form_id: str,
        model: object,
        *,
        options: SaveOptions | None = None,
        **kwargs: Unpack[SaveKwargs],
    ) -> SavedRow:
        """Save one model; raises ``K3CloudAPIError`` (e.g. ``ValidationFailedError``) if refused.
        The save options are ``batch_save``'s."""
        return self._run(self._save_call(form_id, model, SaveOptions.build(options, kwargs)))

    def submit(
        self,
        form_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[Id] | None = None,
        **extra: Any,
    ) -> list[OperationRow]:
        """Submit documents by number or id; the rows done. Raises if the server refused."""
        return self._run(self._operation_call("Submit", form_id, numbers, ids, extra))

    def audit(
        self,
        form_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[Id] | None = None,
        **extra: Any,
    ) -> list[OperationRow]:
        """Audit documents by number or id; the rows done. Raises if the server refused."""
        return self._run(self._operation_call("Audit", form_id, numbers, ids, extra))

    def unaudit(
        self,
        form_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[Id] | None = None,
        **extra: Any,
    ) -> list[OperationRow]:
        """Un-audit documents by number or id; the rows done. Raises if the server refused."""
        return self._run(self._operation_call("UnAudit", form_id, numbers, ids, extra))

    def delete(
        self,
        form_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[Id] | None = None,
        **extra: Any,
    ) -> list[OperationRow]:
        """Delete documents by number or id; the rows done. Raises if the server refused."""
        return self._run(self._operation_call("Delete", form_id, numbers, ids, extra))

    def allocate(
        self,
        form_id: str,
        *,
        ids: Sequence[Id],
        to_orgs: Sequence[Id],
        is_auto_submit_and_audit: bool = False,
        **extra: Any,
    ) -> list[OperationRow]:
        """Allocate (分配) base data: copy the records ``ids`` (internal ids, e.g. ``FCUSTID``)
        to the organisations ``to_orgs`` (internal organisation ids, not numbers); the copies
        made. Raises if the server refused any pair (the error's ``errors`` say which)."""
        call = self._allocate_call(form_id, ids, to_orgs, is_auto_submit_and_audit, extra)
        return self._run(call)

    def view(
        self, form_id: str, *, number: str | None = None, id: Id | None = None, **extra: Any
    ) -> dict[str, Any]:
        """One document (``Result.Result`` of ``View``) by number or id."""
        return self._run(self._view_call(form_id, number, id, extra))

    @spell_out_options(QueryKwargs, QueryOptions)
    def execute_bill_query(
        self,
        form_id: str,
        field_keys: FieldKeys,
        *,
        options: QueryOptions | None = None,
        **kwargs: Unpack[QueryKwargs],
    ) -> list[list[Any]]:
        """One ExecuteBillQuery call: rows of values in ``field_keys`` order. An error the server
        sends as a data row is raised (``K3CloudAPIError``), never returned.

        The query options (``QueryOptions``) are keyword arguments: ``filter_string=""``,
        ``order_string=""``, ``start_row=0``, ``limit=2000``, ``top_row_count=0``; or
        ``options=QueryOptions(...)``."""
        query = QueryOptions.build(options, kwargs, method="K3CloudClient.execute_bill_query")
        return self._run(self._rows_call(form_id, field_keys, query))

    @spell_out_options(PagedQueryKwargs, QueryOptions, renamed={"page_size": "limit"})
    def iter_bill_query(
        self,
        form_id: str,
        field_keys: FieldKeys,
        *,
        options: QueryOptions | None = None,
        **kwargs: Unpack[PagedQueryKwargs],
    ) -> Iterator[list[Any]]:
        """Rows across pages (``StartRow += Limit`` until a short page). Give an
        ``order_string`` so that pages do not overlap on a changing table.

        Takes ``execute_bill_query``'s options, with ``page_size=2000`` for ``limit`` and
        ``max_pages=10000``: after that many full pages ``K3CloudPageLimitError`` is raised."""
        query = QueryOptions.build(
            options, kwargs, method="K3CloudClient.iter_bill_query", paged=True
        )
        return self._iter_pages(form_id, field_keys, query)

    def _iter_pages(
        self, form_id: str, field_keys: FieldKeys, query: QueryOptions
    ) -> Iterator[list[Any]]:
        pager = Pager(query, form_id)
        while not pager.done:
            yield from pager.take(self.execute_bill_query(form_id, field_keys, **pager.next_page()))

    @spell_out_options(QueryKwargs, QueryOptions)
    def bill_query(
        self,
        form_id: str,
        field_keys: FieldKeys,
        *,
        options: QueryOptions | None = None,
        **kwargs: Unpack[QueryKwargs],
    ) -> list[dict[str, Any]]:
        """One BillQuery call: objects keyed by field key (``execute_bill_query``'s options)."""
        query = QueryOptions.build(options, kwargs, method="K3CloudClient.bill_query")
        return self._run(self._objects_call(form_id, field_keys, query))

    def execute(
        self, service: str, body: Mapping[str, Any] | Sequence[Any], *, idempotent: bool = False
    ) -> Any:
        """The escape hatch: POST ``body`` to ``service`` (``"Draft"`` or a full service name) and
        return the decoded reply; a reply reporting ``IsSuccess: false`` is raised. Treated as a
        write unless ``idempotent=True``."""
        return self._run(self._execute_call(service, body, idempotent))


class AsyncK3CloudClient(_K3Core[httpx.AsyncClient], AsyncAPIClient):
    """Asynchronous client of K/3 Cloud's Web API: ``K3CloudClient``'s twin (same arguments,
    awaitable methods). ``batch_save`` sends up to ``concurrency`` chunks at once."""

    @classmethod
    def _proxied_http(cls, proxy: str, timeout: httpx.Timeout) -> httpx.AsyncClient:
        return httpx.AsyncClient(proxy=proxy, timeout=timeout, limits=DEFAULT_LIMITS, verify=True)

    async def _run(self, call: Call[T]) -> T:
        factory = self._request_factory(call)
        idempotent = self._idempotent(call)
        return await self._send(factory, call.parse, auth=self.auth, idempotent=idempotent)

    async def _attempt(self, call: Call[BatchReply] | None) -> BatchReply | K3CloudError | None:
        # A chunk's failure is recorded against its rows; the other chunks go on.
        try:
            return None if call is None else await self._run(call)
        except K3CloudError as exc:
            return exc

    @spell_out_options(SaveKwargs, SaveOptions)
    async def batch_save(
        self,
        form_id: str,
        models: Iterable[object],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        concurrency: int = 4,
        options: SaveOptions | None = None,
        **kwargs: Unpack[SaveKwargs],
    ) -> BatchSaveResult:
        """Async twin of ``K3CloudClient.batch_save``, with up to ``concurrency`` chunks in flight
        at once; results keep input order."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        run = self._batch_save(form_id, models, chunk_size, SaveOptions.build(options, kwargs))
        import anyio  # loaded on the first async call: sync programs never pay for it

        limiter = anyio.CapacityLimiter(concurrency)

        async def send(chunk: Chunk) -> None:
            async with limiter:
                run.settle(chunk, await self._attempt(run.call(chunk)))

        async with anyio.create_task_group() as group:
            for chunk in run.plan.chunks:
                group.start_soon(send, chunk)
        return run.plan.result()

    @spell_out_options(SaveKwargs, SaveOptions)
    async def save(
        self,
        form_id: str,
        model: object,
        *,
        options: SaveOptions | None = None,
        **kwargs: Unpack[SaveKwargs],
    ) -> SavedRow:
        """Async twin of ``K3CloudClient.save``."""
        return await self._run(self._save_call(form_id, model, SaveOptions.build(options, kwargs)))

    async def submit(
        self,
        form_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[Id] | None = None,
        **extra: Any,
    ) -> list[OperationRow]:
        """Async twin of ``K3CloudClient.submit``."""
        return await self._run(self._operation_call("Submit", form_id, numbers, ids, extra))

    async def audit(
        self,
        form_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[Id] | None = None,
        **extra: Any,
    ) -> list[OperationRow]:
        """Async twin of ``K3CloudClient.audit``."""
        return await self._run(self._operation_call("Audit", form_id, numbers, ids, extra))

    async def unaudit(
        self,
        form_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[Id] | None = None,
        **extra: Any,
    ) -> list[OperationRow]:
        """Async twin of ``K3CloudClient.unaudit``."""
        return await self._run(self._operation_call("UnAudit", form_id, numbers, ids, extra))

    async def delete(
        self,
        form_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[Id] | None = None,
        **extra: Any,
    ) -> list[OperationRow]:
        """Async twin of ``K3CloudClient.delete``."""
        return await self._run(self._operation_call("Delete", form_id, numbers, ids, extra))

    async def allocate(
        self,
        form_id: str,
        *,
        ids: Sequence[Id],
        to_orgs: Sequence[Id],
        is_auto_submit_and_audit: bool = False,
        **extra: Any,
    ) -> list[OperationRow]:
        """Async twin of ``K3CloudClient.allocate``."""
        call = self._allocate_call(form_id, ids, to_orgs, is_auto_submit_and_audit, extra)
        return await self._run(call)

    async def view(
        self, form_id: str, *, number: str | None = None, id: Id | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Async twin of ``K3CloudClient.view``."""
        return await self._run(self._view_call(form_id, number, id, extra))

    @spell_out_options(QueryKwargs, QueryOptions)
    async def execute_bill_query(
        self,
        form_id: str,
        field_keys: FieldKeys,
        *,
        options: QueryOptions | None = None,
        **kwargs: Unpack[QueryKwargs],
    ) -> list[list[Any]]:
        """Async twin of ``K3CloudClient.execute_bill_query``."""
        query = QueryOptions.build(options, kwargs, method="AsyncK3CloudClient.execute_bill_query")
        return await self._run(self._rows_call(form_id, field_keys, query))

    @spell_out_options(PagedQueryKwargs, QueryOptions, renamed={"page_size": "limit"})
    def iter_bill_query(
        self,
        form_id: str,
        field_keys: FieldKeys,
        *,
        options: QueryOptions | None = None,
        **kwargs: Unpack[PagedQueryKwargs],
    ) -> AsyncIterator[list[Any]]:
        """Async twin of ``K3CloudClient.iter_bill_query`` (``async for row in ...``)."""
        query = QueryOptions.build(
            options, kwargs, method="AsyncK3CloudClient.iter_bill_query", paged=True
        )
        return self._iter_pages(form_id, field_keys, query)

    async def _iter_pages(
        self, form_id: str, field_keys: FieldKeys, query: QueryOptions
    ) -> AsyncIterator[list[Any]]:
        pager = Pager(query, form_id)
        while not pager.done:
            rows = await self.execute_bill_query(form_id, field_keys, **pager.next_page())
            for row in pager.take(rows):
                yield row

    @spell_out_options(QueryKwargs, QueryOptions)
    async def bill_query(
        self,
        form_id: str,
        field_keys: FieldKeys,
        *,
        options: QueryOptions | None = None,
        **kwargs: Unpack[QueryKwargs],
    ) -> list[dict[str, Any]]:
        """Async twin of ``K3CloudClient.bill_query``."""
        query = QueryOptions.build(options, kwargs, method="AsyncK3CloudClient.bill_query")
        return await self._run(self._objects_call(form_id, field_keys, query))

    async def execute(
        self, service: str, body: Mapping[str, Any] | Sequence[Any], *, idempotent: bool = False
    ) -> Any:
        """Async twin of ``K3CloudClient.execute``."""
        return await self._run(self._execute_call(service, body, idempotent))
