"""``K3CloudClient`` and ``AsyncK3CloudClient``.

Both share ``_K3Core``: choosing the auth, building bodies, reading replies (the query error that
arrives as a data row included), the batch plan and the query pager. The public classes differ
only in the lines that do I/O.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, NoReturn, TypeVar

import anyio
import httpx
from typing_extensions import Self

from _huke_k3_core import (
    DEFAULT_LIMITS,
    DEFAULT_TIMEOUT,
    AsyncAPIClient,
    BaseAPIClient,
    ErrorTypes,
    HttpxClientT,
    Redactor,
    RetryableResponse,
    RetryPolicy,
    SyncAPIClient,
    TimeoutTypes,
    WireFieldError,
    dumps,
    safe_url,
    snippet,
)

from ._auth import Clock, PasswordLogin, SignedHeaderAuth
from ._batch import DEFAULT_CHUNK_SIZE, BatchPlan, Chunk, save_options, to_wire_model
from ._config import settings_from_env, settings_from_ini
from ._errors import (
    WHOLE_CALL_MSG_CODES,
    K3CloudAuthenticationError,
    K3CloudConfigError,
    K3CloudConnectionError,
    K3CloudError,
    K3CloudHTTPError,
    K3CloudResponseError,
    K3CloudTimeoutError,
    RateLimitedError,
    api_error,
)
from ._models import BatchSaveResult, ResponseStatus, SavedRow, converter
from ._wire import find_response_status, service_path
from .filters import field_key

__all__ = ["DEFAULT_MAX_PAGES", "DEFAULT_PAGE_SIZE", "AsyncK3CloudClient", "K3CloudClient"]

logger = logging.getLogger("k3cloud_client")

#: Rows per ExecuteBillQuery page unless told otherwise.
DEFAULT_PAGE_SIZE = 2000
#: The largest ``Limit`` the server documents.
MAX_LIMIT = 10_000
#: Default cap on the pages one ``iter_bill_query`` may fetch (a server ignoring ``StartRow``
#: would otherwise page forever).
DEFAULT_MAX_PAGES = 10_000


T = TypeVar("T")
FieldKeys = str | Sequence[str]


def _field_keys(field_keys: FieldKeys) -> str:
    keys = field_keys.split(",") if isinstance(field_keys, str) else list(field_keys)
    keys = [k.strip() for k in keys]
    if not keys or not all(keys):
        raise ValueError(f"field_keys must name at least one field, got {field_keys!r}")
    return ",".join(field_key(k) for k in keys)


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")


class _Pager:
    """Where the next ExecuteBillQuery page starts, and when to stop."""

    def __init__(self, start_row: int, page_size: int, max_pages: int) -> None:
        _check_range("page_size", page_size, 1, MAX_LIMIT)
        _check_range("start_row", start_row, 0, 2**31 - 1)
        _check_range("max_pages", max_pages, 1, 2**31 - 1)
        self.start_row = start_row
        self.page_size = page_size
        self.max_pages = max_pages
        self.pages = 0
        self.done = False

    def take(self, rows: list[list[Any]]) -> list[list[Any]]:
        self.pages += 1
        self.start_row += len(rows)
        if len(rows) < self.page_size:
            self.done = True
        elif self.pages >= self.max_pages:
            raise K3CloudError(
                f"ExecuteBillQuery returned full pages {self.pages} times (max_pages); narrow the "
                "filter or raise max_pages"
            )
        return rows


class _K3Core(BaseAPIClient[HttpxClientT]):
    """Everything but I/O, shared by the sync and the async client."""

    _errors: ClassVar[ErrorTypes] = ErrorTypes(
        http_status=K3CloudHTTPError,
        connection=K3CloudConnectionError,
        timeout=K3CloudTimeoutError,
        response_format=K3CloudResponseError,
        config=K3CloudConfigError,
    )
    _logger: ClassVar[logging.Logger] = logger

    def __init__(
        self,
        server_url: str | httpx.URL,
        *,
        acct_id: str,
        user_name: str,
        app_id: str | None = None,
        app_secret: str | None = None,
        password: str | None = None,
        lcid: int = 2052,
        org_num: int = 0,
        auth: httpx.Auth | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        retry_writes: bool = False,
        http_client: HttpxClientT | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.acct_id = acct_id
        self.user_name = user_name
        self.lcid = lcid
        self.org_num = org_num
        #: Whether writes are retried after failures that may have reached the server.
        self.retry_writes = retry_writes
        self.auth: httpx.Auth = auth or _default_auth(
            acct_id,
            user_name,
            app_id,
            app_secret,
            password,
            lcid=lcid,
            org_num=org_num,
            clock=clock,
        )
        shared = getattr(self.auth, "redactor", None)
        redactor = shared if isinstance(shared, Redactor) else Redactor()
        redactor.add(app_secret, password)
        # Raises K3CloudConfigError (``_errors.config``) naming the bad setting.
        super().__init__(
            base_url=server_url,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            # mypy does not carry the TypeVar's constraint through super() here.
            http_client=http_client,  # type: ignore[arg-type]
            redactor=redactor,
            url_setting="server_url",
        )

    # -- construction from settings ---------------------------------------------------------

    @classmethod
    def from_env(cls, *, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """A client from ``K3CLOUD_SERVER_URL``, ``K3CLOUD_ACCT_ID``, ``K3CLOUD_USER_NAME``,
        ``K3CLOUD_APP_ID`` + ``K3CLOUD_APP_SECRET`` or ``K3CLOUD_PASSWORD``, and optionally
        ``K3CLOUD_LCID`` and ``K3CLOUD_ORG_NUM``. ``overrides`` are other constructor arguments.
        A missing setting raises ``K3CloudConfigError`` naming it."""
        settings = settings_from_env(environ)
        return cls(**{**settings, **overrides})

    @classmethod
    def from_ini(
        cls, path: str | os.PathLike[str], section: str | None = None, **overrides: Any
    ) -> Self:
        """A client from the official SDK's ``conf.ini`` (``x-kdapi-*`` keys of ``section``,
        by default ``config``), so that its users switch without rewriting their config.
        ``overrides`` are other constructor arguments."""
        settings = settings_from_ini(path, section, given=overrides.keys())
        proxy = settings.pop("proxy", None)
        owned = proxy is not None and "http_client" not in overrides
        if owned:
            overrides["http_client"] = cls._proxied_http(
                proxy, settings.get("timeout", DEFAULT_TIMEOUT)
            )
        client = cls(**{**settings, **overrides})
        client._owns_http = owned or client._owns_http
        return client

    @classmethod
    def _proxied_http(cls, proxy: str, timeout: httpx.Timeout) -> HttpxClientT:
        raise NotImplementedError

    # -- requests ---------------------------------------------------------------------------

    def _request_factory(self, service: str, body: Any) -> Callable[[], httpx.Request]:
        path = service_path(service)
        content = dumps(body)
        return lambda: self._build_request(path, content)

    def _idempotent(self, write: bool) -> bool:
        return not write or self.retry_writes

    def _retry_delay(
        self,
        exc: Exception,
        retries: int,
        *,
        idempotent: bool,
        request: httpx.Request | None = None,
    ) -> float:
        # Rejected credentials stay rejected: no point repeating the call.
        if isinstance(exc, K3CloudAuthenticationError):
            raise exc
        return super()._retry_delay(exc, retries, idempotent=idempotent, request=request)

    # -- bodies ------------------------------------------------------------------------------

    @staticmethod
    def _form_body(form_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(form_id, str) or not form_id:
            raise ValueError("form_id is required, e.g. 'BD_Customer'")
        return {"formid": form_id, "data": dict(data)}

    @staticmethod
    def _query_body(
        form_id: str,
        field_keys: FieldKeys,
        *,
        filter_string: str,
        order_string: str,
        start_row: int,
        limit: int,
        top_row_count: int,
    ) -> dict[str, Any]:
        if not isinstance(form_id, str) or not form_id:
            raise ValueError("form_id is required, e.g. 'BD_Customer'")
        _check_range("start_row", start_row, 0, 2**31 - 1)
        _check_range("limit", limit, 0, MAX_LIMIT)
        _check_range("top_row_count", top_row_count, 0, 2**31 - 1)
        return {
            "data": {
                "FormId": form_id,
                "FieldKeys": _field_keys(field_keys),
                "FilterString": filter_string,
                "OrderString": order_string,
                "TopRowCount": top_row_count,
                "StartRow": start_row,
                "Limit": limit,
            }
        }

    def _batch_plan(
        self,
        form_id: str,
        models: Iterable[object],
        *,
        chunk_size: int,
        extra: Mapping[str, Any],
        **named: Any,
    ) -> BatchPlan:
        return BatchPlan(
            form_id,
            models,
            chunk_size=chunk_size,
            options=save_options(_named_options(**named), extra),
            logger=self._logger,
        )

    @staticmethod
    def _save_data(model: object, *, extra: Mapping[str, Any], **named: Any) -> dict[str, Any]:
        return {"Model": to_wire_model(model, 0), **save_options(_named_options(**named), extra)}

    def _single_saved(self, status: ResponseStatus, operation: str) -> SavedRow:
        if not status.success_entitys:
            raise K3CloudResponseError(
                f"{operation} reported success without a SuccessEntitys entry",
                body=self._redact(snippet(str(status.raw))),
            )
        entity = status.success_entitys[0]
        return SavedRow(0, entity.id, entity.number)

    @staticmethod
    def _view_data(
        number: str | None, id: int | str | None, extra: Mapping[str, Any]
    ) -> dict[str, Any]:
        if (number is None) == (id is None):
            raise ValueError("give exactly one of number= or id=")
        data: dict[str, Any] = {"Number": number} if number is not None else {"Id": str(id)}
        data.update(save_options({}, extra))
        return data

    @staticmethod
    def _operation_data(
        numbers: Sequence[str] | None, ids: Sequence[int | str] | None, extra: Mapping[str, Any]
    ) -> dict[str, Any]:
        if not numbers and not ids:
            raise ValueError("give numbers= or ids= (at least one)")
        data: dict[str, Any] = {}
        if numbers:
            data["Numbers"] = [str(n) for n in numbers]
        if ids:
            data["Ids"] = ",".join(str(i) for i in ids)
        data.update(save_options({}, extra))
        return data

    @staticmethod
    def _allocate_data(
        ids: Sequence[int | str],
        to_orgs: Sequence[int | str],
        is_auto_submit_and_audit: bool,
        extra: Mapping[str, Any],
    ) -> dict[str, Any]:
        for name, values in (("ids", ids), ("to_orgs", to_orgs)):
            if not isinstance(values, Sequence) or isinstance(values, str | bytes) or not values:
                raise ValueError(f"{name}= takes a non-empty list of internal ids, got {values!r}")
        named = {
            "PkIds": ",".join(str(i) for i in ids),
            "TOrgIds": ",".join(str(o) for o in to_orgs),
            "IsAutoSubmitAndAudit": is_auto_submit_and_audit,
        }
        return save_options(named, extra)

    # -- replies -----------------------------------------------------------------------------

    def _body_snippet(self, response: httpx.Response) -> str:
        return self._redact(snippet(response.text))

    def _status(
        self, response: httpx.Response, body: Any, operation: str, *, row_models: bool = True
    ) -> ResponseStatus:
        """The reply's ResponseStatus, or ``K3CloudResponseError``. ``row_models=False`` leaves
        the ``SuccessEntitys`` models unmade (BatchSave's bookkeeping reads them directly)."""
        found = find_response_status(body)
        if found is None:
            text = self._body_snippet(response)
            raise K3CloudResponseError(
                f"{operation} answered without a Result.ResponseStatus: {text!r}", body=text
            )
        self._redact_errors(found)
        try:
            status: ResponseStatus = converter.structure(found, ResponseStatus)
            entities = found.get("SuccessEntitys")
            if entities is not None and not isinstance(entities, list):
                raise WireFieldError(
                    "ResponseStatus", "SuccessEntitys", entities, "expected a list"
                )
            if row_models:
                status.success_entitys  # noqa: B018 - made now, so a bad entry is a reply error
        except Exception as exc:  # any structuring failure is a reply we cannot read
            text = self._body_snippet(response)
            raise K3CloudResponseError(
                # The structuring error quotes the value it could not read.
                self._redact(
                    f"{operation} answered a ResponseStatus this SDK cannot read ({exc}): {text!r}"
                ),
                body=text,
            ) from exc
        return status

    def _redact_errors(self, status: Mapping[str, Any]) -> None:
        """Mask secrets in the reply's ``Errors`` in place, before anything reads them: the
        errors' messages are what a server quotes requests in, and the messages, ``ErrorDetail``
        (``raw`` included), ``FailedRow.message`` and the replies ``batch_save`` keeps in
        ``responses`` all come from these very objects."""
        errors = status.get("Errors")
        if isinstance(errors, list):
            errors[:] = [self._redact_deep(entry) for entry in errors]

    def _redact_deep(self, value: Any, depth: int = 0) -> Any:
        """``value`` with every string in it masked, however deeply nested, keys included."""
        if isinstance(value, str):
            return self._redact(value) if value else value
        if depth > 32:  # deeper than any real reply: dropped, not searched
            return "***"
        if isinstance(value, dict):
            return {
                self._redact_deep(key, depth + 1): self._redact_deep(item, depth + 1)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self._redact_deep(item, depth + 1) for item in value]
        return value

    def _failure(self, status: ResponseStatus, operation: str) -> Exception:
        error = api_error(
            self._redact(status.message),
            msg_code=status.msg_code,
            errors=status.errors,
            operation=operation,
        )
        if isinstance(error, RateLimitedError):
            # The server did not carry the call out: retried with backoff, even a write.
            return RetryableResponse(error)
        return error

    def _checked(self, operation: str) -> Callable[[httpx.Response], tuple[Any, ResponseStatus]]:
        """A parser for replies that succeed or fail as a whole (Save, Submit, View, ...)."""

        def parse(response: httpx.Response) -> tuple[Any, ResponseStatus]:
            body = self.decode_json(response)
            status = self._status(response, body, operation)
            if not status.is_success:
                raise self._failure(status, operation)
            return body, status

        return parse

    def _batch_reply(
        self, operation: str
    ) -> Callable[[httpx.Response], tuple[Any, ResponseStatus]]:
        """A parser for BatchSave: raises only when the call failed as a whole."""

        def parse(response: httpx.Response) -> tuple[Any, ResponseStatus]:
            body = self.decode_json(response)
            status = self._status(response, body, operation, row_models=False)
            whole_call = status.msg_code in WHOLE_CALL_MSG_CODES or not (
                status.success_count or any(e.d_index is not None for e in status.errors)
            )
            if not status.is_success and whole_call:
                raise self._failure(status, operation)
            return body, status

        return parse

    def _raw_reply(self, operation: str) -> Callable[[httpx.Response], Any]:
        """A parser for ``execute``: the decoded body, unless it reports a failure."""

        def parse(response: httpx.Response) -> Any:
            body = self.decode_json(response)
            found = find_response_status(body)
            if found is not None and found.get("IsSuccess") is not True:
                raise self._failure(self._status(response, body, operation), operation)
            return body

        return parse

    def _rows_reply(self, operation: str) -> Callable[[httpx.Response], list[list[Any]]]:
        """A parser for ExecuteBillQuery: rows, or the error that came dressed as a row."""

        def parse(response: httpx.Response) -> list[list[Any]]:
            body = self._query_reply(response, operation)
            if not all(isinstance(row, list) for row in body):
                self._shape_error(response, operation, "a list of rows (lists)")
            return body

        return parse

    def _objects_reply(self, operation: str) -> Callable[[httpx.Response], list[dict[str, Any]]]:
        """A parser for BillQuery: objects, or the error that came dressed as one."""

        def parse(response: httpx.Response) -> list[dict[str, Any]]:
            body = self._query_reply(response, operation)
            if not all(isinstance(row, dict) for row in body):
                self._shape_error(response, operation, "a list of objects")
            return body

        return parse

    def _query_reply(self, response: httpx.Response, operation: str) -> list[Any]:
        body = self.decode_json(response)
        if find_response_status(body) is not None:
            status = self._status(response, body, operation)
            if not status.is_success:
                raise self._failure(status, operation)
            self._shape_error(response, operation, "a list of rows")
        if not isinstance(body, list):
            self._shape_error(response, operation, "a list of rows")
        return body

    def _shape_error(self, response: httpx.Response, operation: str, expected: str) -> NoReturn:
        text = self._body_snippet(response)
        raise K3CloudResponseError(f"{operation} answered, not {expected}: {text!r}", body=text)

    @staticmethod
    def _saved_rows(status: ResponseStatus) -> list[SavedRow]:
        return [
            SavedRow(e.d_index if e.d_index is not None else i, e.id, e.number)
            for i, e in enumerate(status.success_entitys)
        ]

    def _view_result(self, body: Any, operation: str) -> dict[str, Any]:
        result = body.get("Result") if isinstance(body, Mapping) else None
        document = result.get("Result") if isinstance(result, Mapping) else None
        if not isinstance(document, dict):
            raise K3CloudResponseError(
                f"{operation} succeeded but its reply has no Result.Result object",
                body=self._redact(snippet(str(body))),
            )
        return document

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(server_url={safe_url(self.base_url)!r}, acct_id={self.acct_id!r}, "
            f"user_name={self.user_name!r}, auth={self.auth!r})"
        )


def _named_options(
    *,
    need_update_fields: Sequence[str] | None = None,
    need_return_fields: Sequence[str] | None = None,
    is_auto_submit_and_audit: bool = False,
    is_verify_base_data_field: bool = False,
    is_delete_entry: bool = True,
    validate_flag: bool = True,
    number_search: bool = True,
    batch_count: int | None = None,
    interation_flags: str | None = None,
) -> dict[str, Any]:
    """The documented save options by parameter name (None = not sent)."""
    return {
        "need_update_fields": list(need_update_fields) if need_update_fields else None,
        "need_return_fields": list(need_return_fields) if need_return_fields else None,
        "is_auto_submit_and_audit": is_auto_submit_and_audit,
        "is_verify_base_data_field": is_verify_base_data_field,
        "is_delete_entry": is_delete_entry,
        "validate_flag": validate_flag,
        "number_search": number_search,
        "batch_count": batch_count,
        "interation_flags": interation_flags,
    }


def _default_auth(
    acct_id: str,
    user_name: str,
    app_id: str | None,
    app_secret: str | None,
    password: str | None,
    *,
    lcid: int,
    org_num: int,
    clock: Clock,
) -> httpx.Auth:
    if app_id and app_secret:
        return SignedHeaderAuth(
            acct_id, user_name, app_id, app_secret, lcid=lcid, org_num=org_num, clock=clock
        )
    if password:
        return PasswordLogin(acct_id, user_name, password, lcid=lcid)
    if app_id or app_secret:
        missing = "app_secret" if app_id else "app_id"
        raise K3CloudConfigError(f"{missing} is missing: app_id and app_secret go together")
    raise K3CloudConfigError(
        "no credentials: give app_id and app_secret (signed headers), password, or auth="
    )


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

    def _call(
        self, service: str, body: Any, parse: Callable[[httpx.Response], T], *, write: bool
    ) -> T:
        return self._send(
            self._request_factory(service, body),
            parse,
            auth=self.auth,
            idempotent=self._idempotent(write),
        )

    def batch_save(
        self,
        form_id: str,
        models: Iterable[object],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        need_update_fields: Sequence[str] | None = None,
        need_return_fields: Sequence[str] | None = None,
        is_auto_submit_and_audit: bool = False,
        is_verify_base_data_field: bool = False,
        is_delete_entry: bool = True,
        validate_flag: bool = True,
        number_search: bool = True,
        batch_count: int | None = None,
        interation_flags: str | None = None,
        **extra: Any,
    ) -> BatchSaveResult:
        """Save many models (``Customer`` and other wire models, or dicts), ``chunk_size`` per
        call, one call after the other.

        Every input index ends in exactly one of ``result.saved``/``result.failed``: rows the
        server refused carry its message; rows of a call that failed as a whole carry the reason,
        with ``uncertain=True`` when the call may nevertheless have saved them. ``extra`` options
        are sent too (``is_entry_batch_fill=False`` as ``IsEntryBatchFill``).
        """
        plan = self._batch_plan(
            form_id,
            models,
            chunk_size=chunk_size,
            extra=extra,
            need_update_fields=need_update_fields,
            need_return_fields=need_return_fields,
            is_auto_submit_and_audit=is_auto_submit_and_audit,
            is_verify_base_data_field=is_verify_base_data_field,
            is_delete_entry=is_delete_entry,
            validate_flag=validate_flag,
            number_search=number_search,
            batch_count=batch_count,
            interation_flags=interation_flags,
        )
        parse = self._batch_reply(f"BatchSave {form_id}")
        for chunk in plan.chunks:
            if plan.fatal is not None:
                plan.skipped(chunk)
                continue
            try:
                body, status = self._call("BatchSave", plan.body(chunk), parse, write=True)
            except K3CloudError as exc:
                plan.call_failed(chunk, exc)
            else:
                plan.answered(chunk, body, status)
        return plan.result()

    def save(
        self,
        form_id: str,
        model: object,
        *,
        need_update_fields: Sequence[str] | None = None,
        need_return_fields: Sequence[str] | None = None,
        is_auto_submit_and_audit: bool = False,
        is_verify_base_data_field: bool = False,
        is_delete_entry: bool = True,
        validate_flag: bool = True,
        number_search: bool = True,
        **extra: Any,
    ) -> SavedRow:
        """Save one model; raises ``K3CloudAPIError`` (e.g. ``ValidationFailedError``) if refused."""
        data = self._save_data(
            model,
            need_update_fields=need_update_fields,
            need_return_fields=need_return_fields,
            is_auto_submit_and_audit=is_auto_submit_and_audit,
            is_verify_base_data_field=is_verify_base_data_field,
            is_delete_entry=is_delete_entry,
            validate_flag=validate_flag,
            number_search=number_search,
            extra=extra,
        )
        _, status = self._call(
            "Save", self._form_body(form_id, data), self._checked(f"Save {form_id}"), write=True
        )
        return self._single_saved(status, f"Save {form_id}")

    def submit(
        self,
        form_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[int | str] | None = None,
        **extra: Any,
    ) -> list[SavedRow]:
        """Submit documents by number or id; the rows done. Raises if the server refused."""
        return self._operate("Submit", form_id, numbers, ids, extra)

    def audit(
        self,
        form_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[int | str] | None = None,
        **extra: Any,
    ) -> list[SavedRow]:
        """Audit documents by number or id; the rows done. Raises if the server refused."""
        return self._operate("Audit", form_id, numbers, ids, extra)

    def unaudit(
        self,
        form_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[int | str] | None = None,
        **extra: Any,
    ) -> list[SavedRow]:
        """Un-audit documents by number or id; the rows done. Raises if the server refused."""
        return self._operate("UnAudit", form_id, numbers, ids, extra)

    def delete(
        self,
        form_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[int | str] | None = None,
        **extra: Any,
    ) -> list[SavedRow]:
        """Delete documents by number or id; the rows done. Raises if the server refused."""
        return self._operate("Delete", form_id, numbers, ids, extra)

    def _operate(
        self,
        op: str,
        form_id: str,
        numbers: Sequence[str] | None,
        ids: Sequence[int | str] | None,
        extra: Mapping[str, Any],
    ) -> list[SavedRow]:
        body = self._form_body(form_id, self._operation_data(numbers, ids, extra))
        _, status = self._call(op, body, self._checked(f"{op} {form_id}"), write=True)
        return self._saved_rows(status)

    def allocate(
        self,
        form_id: str,
        *,
        ids: Sequence[int | str],
        to_orgs: Sequence[int | str],
        is_auto_submit_and_audit: bool = False,
        **extra: Any,
    ) -> list[SavedRow]:
        """Allocate (分配) base data: copy the records ``ids`` (internal ids, e.g. ``FCUSTID``)
        to the organisations ``to_orgs`` (internal organisation ids, not numbers); the copies
        made. Raises if the server refused any pair (the error's ``errors`` say which)."""
        data = self._allocate_data(ids, to_orgs, is_auto_submit_and_audit, extra)
        body = self._form_body(form_id, data)
        _, status = self._call("Allocate", body, self._checked(f"Allocate {form_id}"), write=True)
        return self._saved_rows(status)

    def view(
        self, form_id: str, *, number: str | None = None, id: int | str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """One document (``Result.Result`` of ``View``) by number or id."""
        body = self._form_body(form_id, self._view_data(number, id, extra))
        reply, _ = self._call("View", body, self._checked(f"View {form_id}"), write=False)
        return self._view_result(reply, f"View {form_id}")

    def execute_bill_query(
        self,
        form_id: str,
        field_keys: FieldKeys,
        *,
        filter_string: str = "",
        order_string: str = "",
        start_row: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        top_row_count: int = 0,
    ) -> list[list[Any]]:
        """One ExecuteBillQuery call: rows of values in ``field_keys`` order. An error the server
        sends as a data row is raised (``K3CloudAPIError``), never returned."""
        body = self._query_body(
            form_id,
            field_keys,
            filter_string=filter_string,
            order_string=order_string,
            start_row=start_row,
            limit=limit,
            top_row_count=top_row_count,
        )
        return self._call(
            "ExecuteBillQuery", body, self._rows_reply(f"ExecuteBillQuery {form_id}"), write=False
        )

    def iter_bill_query(
        self,
        form_id: str,
        field_keys: FieldKeys,
        *,
        filter_string: str = "",
        order_string: str = "",
        start_row: int = 0,
        page_size: int = DEFAULT_PAGE_SIZE,
        top_row_count: int = 0,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> Iterator[list[Any]]:
        """Rows across pages (``StartRow += Limit`` until a short page, at most ``max_pages``).
        Give an ``order_string`` so that pages do not overlap on a changing table."""
        pager = _Pager(start_row, page_size, max_pages)
        while not pager.done:
            yield from pager.take(
                self.execute_bill_query(
                    form_id,
                    field_keys,
                    filter_string=filter_string,
                    order_string=order_string,
                    start_row=pager.start_row,
                    limit=pager.page_size,
                    top_row_count=top_row_count,
                )
            )

    def bill_query(
        self,
        form_id: str,
        field_keys: FieldKeys,
        *,
        filter_string: str = "",
        order_string: str = "",
        start_row: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        top_row_count: int = 0,
    ) -> list[dict[str, Any]]:
        """One BillQuery call: objects keyed by field key."""
        body = self._query_body(
            form_id,
            field_keys,
            filter_string=filter_string,
            order_string=order_string,
            start_row=start_row,
            limit=limit,
            top_row_count=top_row_count,
        )
        return self._call(
            "BillQuery", body, self._objects_reply(f"BillQuery {form_id}"), write=False
        )

    def execute(
        self, service: str, body: Mapping[str, Any] | Sequence[Any], *, idempotent: bool = False
    ) -> Any:
        """The escape hatch: POST ``body`` to ``service`` (``"Draft"`` or a full service name) and
        return the decoded reply; a reply reporting ``IsSuccess: false`` is raised. Treated as a
        write unless ``idempotent=True``."""
        return self._call(service, body, self._raw_reply(service), write=not idempotent)


class AsyncK3CloudClient(_K3Core[httpx.AsyncClient], AsyncAPIClient):
    """Asynchronous client of K/3 Cloud's Web API: ``K3CloudClient``'s twin (same arguments,
    awaitable methods). ``batch_save`` sends up to ``concurrency`` chunks at once."""

    @classmethod
    def _proxied_http(cls, proxy: str, timeout: httpx.Timeout) -> httpx.AsyncClient:
        return httpx.AsyncClient(proxy=proxy, timeout=timeout, limits=DEFAULT_LIMITS, verify=True)

    async def _call(
        self, service: str, body: Any, parse: Callable[[httpx.Response], T], *, write: bool
    ) -> T:
        return await self._send(
            self._request_factory(service, body),
            parse,
            auth=self.auth,
            idempotent=self._idempotent(write),
        )

    async def batch_save(
        self,
        form_id: str,
        models: Iterable[object],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        concurrency: int = 4,
        need_update_fields: Sequence[str] | None = None,
        need_return_fields: Sequence[str] | None = None,
        is_auto_submit_and_audit: bool = False,
        is_verify_base_data_field: bool = False,
        is_delete_entry: bool = True,
        validate_flag: bool = True,
        number_search: bool = True,
        batch_count: int | None = None,
        interation_flags: str | None = None,
        **extra: Any,
    ) -> BatchSaveResult:
        """``K3CloudClient.batch_save``, with up to ``concurrency`` chunks in flight at once.
        Results keep input order."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        plan = self._batch_plan(
            form_id,
            models,
            chunk_size=chunk_size,
            extra=extra,
            need_update_fields=need_update_fields,
            need_return_fields=need_return_fields,
            is_auto_submit_and_audit=is_auto_submit_and_audit,
            is_verify_base_data_field=is_verify_base_data_field,
            is_delete_entry=is_delete_entry,
            validate_flag=validate_flag,
            number_search=number_search,
            batch_count=batch_count,
            interation_flags=interation_flags,
        )
        parse = self._batch_reply(f"BatchSave {form_id}")
        limiter = anyio.CapacityLimiter(concurrency)

        async def send(chunk: Chunk) -> None:
            async with limiter:
                if plan.fatal is not None:
                    plan.skipped(chunk)
                    return
                try:
                    body, status = await self._call(
                        "BatchSave", plan.body(chunk), parse, write=True
                    )
                except K3CloudError as exc:
                    plan.call_failed(chunk, exc)
                else:
                    plan.answered(chunk, body, status)

        async with anyio.create_task_group() as group:
            for chunk in plan.chunks:
                group.start_soon(send, chunk)
        return plan.result()

    async def save(
        self,
        form_id: str,
        model: object,
        *,
        need_update_fields: Sequence[str] | None = None,
        need_return_fields: Sequence[str] | None = None,
        is_auto_submit_and_audit: bool = False,
        is_verify_base_data_field: bool = False,
        is_delete_entry: bool = True,
        validate_flag: bool = True,
        number_search: bool = True,
        **extra: Any,
    ) -> SavedRow:
        """Save one model; raises ``K3CloudAPIError`` (e.g. ``ValidationFailedError``) if refused."""
        data = self._save_data(
            model,
            need_update_fields=need_update_fields,
            need_return_fields=need_return_fields,
            is_auto_submit_and_audit=is_auto_submit_and_audit,
            is_verify_base_data_field=is_verify_base_data_field,
            is_delete_entry=is_delete_entry,
            validate_flag=validate_flag,
            number_search=number_search,
            extra=extra,
        )
        _, status = await self._call(
            "Save", self._form_body(form_id, data), self._checked(f"Save {form_id}"), write=True
        )
        return self._single_saved(status, f"Save {form_id}")

    async def submit(
        self,
        form_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[int | str] | None = None,
        **extra: Any,
    ) -> list[SavedRow]:
        """Submit documents by number or id; the rows done. Raises if the server refused."""
        return await self._operate("Submit", form_id, numbers, ids, extra)

    async def audit(
        self,
        form_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[int | str] | None = None,
        **extra: Any,
    ) -> list[SavedRow]:
        """Audit documents by number or id; the rows done. Raises if the server refused."""
        return await self._operate("Audit", form_id, numbers, ids, extra)

    async def unaudit(
        self,
        form_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[int | str] | None = None,
        **extra: Any,
    ) -> list[SavedRow]:
        """Un-audit documents by number or id; the rows done. Raises if the server refused."""
        return await self._operate("UnAudit", form_id, numbers, ids, extra)

    async def delete(
        self,
        form_id: str,
        *,
        numbers: Sequence[str] | None = None,
        ids: Sequence[int | str] | None = None,
        **extra: Any,
    ) -> list[SavedRow]:
        """Delete documents by number or id; the rows done. Raises if the server refused."""
        return await self._operate("Delete", form_id, numbers, ids, extra)

    async def _operate(
        self,
        op: str,
        form_id: str,
        numbers: Sequence[str] | None,
        ids: Sequence[int | str] | None,
        extra: Mapping[str, Any],
    ) -> list[SavedRow]:
        body = self._form_body(form_id, self._operation_data(numbers, ids, extra))
        _, status = await self._call(op, body, self._checked(f"{op} {form_id}"), write=True)
        return self._saved_rows(status)

    async def allocate(
        self,
        form_id: str,
        *,
        ids: Sequence[int | str],
        to_orgs: Sequence[int | str],
        is_auto_submit_and_audit: bool = False,
        **extra: Any,
    ) -> list[SavedRow]:
        """Allocate (分配) base data: copy the records ``ids`` (internal ids, e.g. ``FCUSTID``)
        to the organisations ``to_orgs`` (internal organisation ids, not numbers); the copies
        made. Raises if the server refused any pair (the error's ``errors`` say which)."""
        data = self._allocate_data(ids, to_orgs, is_auto_submit_and_audit, extra)
        body = self._form_body(form_id, data)
        checked = self._checked(f"Allocate {form_id}")
        _, status = await self._call("Allocate", body, checked, write=True)
        return self._saved_rows(status)

    async def view(
        self, form_id: str, *, number: str | None = None, id: int | str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """One document (``Result.Result`` of ``View``) by number or id."""
        body = self._form_body(form_id, self._view_data(number, id, extra))
        reply, _ = await self._call("View", body, self._checked(f"View {form_id}"), write=False)
        return self._view_result(reply, f"View {form_id}")

    async def execute_bill_query(
        self,
        form_id: str,
        field_keys: FieldKeys,
        *,
        filter_string: str = "",
        order_string: str = "",
        start_row: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        top_row_count: int = 0,
    ) -> list[list[Any]]:
        """One ExecuteBillQuery call: rows of values in ``field_keys`` order. An error the server
        sends as a data row is raised (``K3CloudAPIError``), never returned."""
        body = self._query_body(
            form_id,
            field_keys,
            filter_string=filter_string,
            order_string=order_string,
            start_row=start_row,
            limit=limit,
            top_row_count=top_row_count,
        )
        return await self._call(
            "ExecuteBillQuery", body, self._rows_reply(f"ExecuteBillQuery {form_id}"), write=False
        )

    async def iter_bill_query(
        self,
        form_id: str,
        field_keys: FieldKeys,
        *,
        filter_string: str = "",
        order_string: str = "",
        start_row: int = 0,
        page_size: int = DEFAULT_PAGE_SIZE,
        top_row_count: int = 0,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> AsyncIterator[list[Any]]:
        """Rows across pages (``StartRow += Limit`` until a short page, at most ``max_pages``).
        Give an ``order_string`` so that pages do not overlap on a changing table."""
        pager = _Pager(start_row, page_size, max_pages)
        while not pager.done:
            rows = await self.execute_bill_query(
                form_id,
                field_keys,
                filter_string=filter_string,
                order_string=order_string,
                start_row=pager.start_row,
                limit=pager.page_size,
                top_row_count=top_row_count,
            )
            for row in pager.take(rows):
                yield row

    async def bill_query(
        self,
        form_id: str,
        field_keys: FieldKeys,
        *,
        filter_string: str = "",
        order_string: str = "",
        start_row: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        top_row_count: int = 0,
    ) -> list[dict[str, Any]]:
        """One BillQuery call: objects keyed by field key."""
        body = self._query_body(
            form_id,
            field_keys,
            filter_string=filter_string,
            order_string=order_string,
            start_row=start_row,
            limit=limit,
            top_row_count=top_row_count,
        )
        return await self._call(
            "BillQuery", body, self._objects_reply(f"BillQuery {form_id}"), write=False
        )

    async def execute(
        self, service: str, body: Mapping[str, Any] | Sequence[Any], *, idempotent: bool = False
    ) -> Any:
        """The escape hatch: POST ``body`` to ``service`` (``"Draft"`` or a full service name) and
        return the decoded reply; a reply reporting ``IsSuccess: false`` is raised. Treated as a
        write unless ``idempotent=True``."""
        return await self._call(service, body, self._raw_reply(service), write=not idempotent)
