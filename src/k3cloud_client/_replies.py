"""Reading K/3 Cloud's replies: the ``ResponseStatus``, a failure as its typed error, rows and
objects (and the query error that arrives dressed as a data row), the rows an operation acted
on; and the secrets a server may quote in its errors masked before anything reads them.

Each parser maker (``checked``, ``batch``, ``rows`` ...) takes the operation's name for messages
and returns ``response -> value``, what the clients' send loop calls on each reply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

import httpx

from _huke_k3_core import RetryableResponse, WireFieldError, snippet

from ._wire import find_response_status
from .errors import WHOLE_CALL_MSG_CODES, K3CloudResponseError, RateLimitedError, api_error
from .models import ResponseStatus, SavedRow, converter

T = TypeVar("T")
Parser = Callable[[httpx.Response], T]
#: What a BatchSave reply gives the batch bookkeeping: the decoded body and its status.
BatchReply = tuple[Any, ResponseStatus]

#: How deep ``_redact_deep`` looks into an error entry (deeper than any real reply).
_REDACT_DEPTH = 32


class Replies:
    """The reply parsers of one client: ``decode_json`` reads a body (raising the client's format
    error), ``redact`` masks the client's secrets in text."""

    def __init__(
        self, decode_json: Callable[[httpx.Response], Any], redact: Callable[[str], str]
    ) -> None:
        self._decode_json = decode_json
        self._redact = redact

    # -- parsers -------------------------------------------------------------------------------

    def checked(self, operation: str) -> Parser[BatchReply]:
        """For replies that succeed or fail as a whole (Save, Submit, View, ...)."""

        def parse(response: httpx.Response) -> BatchReply:
            body = self._decode_json(response)
            status = self.status(response, body, operation)
            if not status.is_success:
                raise self.failure(status, operation)
            return body, status

        return parse

    def saved_one(self, operation: str) -> Parser[SavedRow]:
        """For ``Save``: the one row saved."""
        checked = self.checked(operation)
        return lambda response: self._single_saved(checked(response)[1], operation)

    def acted_on(self, operation: str) -> Parser[list[SavedRow]]:
        """For ``Submit``, ``Audit``, ``UnAudit``, ``Delete``, ``Allocate``: the rows done."""
        checked = self.checked(operation)
        return lambda response: _saved_rows(checked(response)[1])

    def document(self, operation: str) -> Parser[dict[str, Any]]:
        """For ``View``: the document (``Result.Result``)."""
        checked = self.checked(operation)
        return lambda response: self._view_result(checked(response)[0], operation)

    def batch(self, operation: str) -> Parser[BatchReply]:
        """For BatchSave: raises only when the call failed as a whole."""

        def parse(response: httpx.Response) -> BatchReply:
            body = self._decode_json(response)
            status = self.status(response, body, operation, row_models=False)
            whole_call = status.msg_code in WHOLE_CALL_MSG_CODES or not (
                status.success_count or any(e.d_index is not None for e in status.errors)
            )
            if not status.is_success and whole_call:
                raise self.failure(status, operation)
            return body, status

        return parse

    def raw(self, operation: str) -> Parser[Any]:
        """For ``execute``: the decoded body, unless it reports a failure."""

        def parse(response: httpx.Response) -> Any:
            body = self._decode_json(response)
            found = find_response_status(body)
            if found is not None and found.get("IsSuccess") is not True:
                raise self.failure(self.status(response, body, operation), operation)
            return body

        return parse

    def rows(self, operation: str) -> Parser[list[list[Any]]]:
        """For ExecuteBillQuery: rows, or the error that came dressed as a row."""

        def parse(response: httpx.Response) -> list[list[Any]]:
            body = self._query_reply(response, operation)
            if not all(isinstance(row, list) for row in body):
                self._shape_error(response, operation, "a list of rows (lists)")
            return body

        return parse

    def objects(self, operation: str) -> Parser[list[dict[str, Any]]]:
        """For BillQuery: objects, or the error that came dressed as one."""

        def parse(response: httpx.Response) -> list[dict[str, Any]]:
            body = self._query_reply(response, operation)
            if not all(isinstance(row, dict) for row in body):
                self._shape_error(response, operation, "a list of objects")
            return body

        return parse

    # -- the status and failures -------------------------------------------------------------

    def status(
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

    def failure(self, status: ResponseStatus, operation: str) -> Exception:
        """The error for a call that failed as a whole (a rate limit: to be retried)."""
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
        if depth > _REDACT_DEPTH:  # deeper than any real reply: dropped, not searched
            return "***"
        if isinstance(value, dict):
            return {
                self._redact_deep(key, depth + 1): self._redact_deep(item, depth + 1)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self._redact_deep(item, depth + 1) for item in value]
        return value

    # -- shapes --------------------------------------------------------------------------------

    def _query_reply(self, response: httpx.Response, operation: str) -> list[Any]:
        body = self._decode_json(response)
        if find_response_status(body) is not None:
            status = self.status(response, body, operation)
            if not status.is_success:
                raise self.failure(status, operation)
            self._shape_error(response, operation, "a list of rows")
        if not isinstance(body, list):
            self._shape_error(response, operation, "a list of rows")
        return body

    def _shape_error(self, response: httpx.Response, operation: str, expected: str) -> NoReturn:
        text = self._body_snippet(response)
        raise K3CloudResponseError(f"{operation} answered, not {expected}: {text!r}", body=text)

    def _single_saved(self, status: ResponseStatus, operation: str) -> SavedRow:
        if not status.success_entitys:
            raise K3CloudResponseError(
                f"{operation} reported success without a SuccessEntitys entry",
                body=self._redact(snippet(str(status.raw))),
            )
        entity = status.success_entitys[0]
        return SavedRow(0, entity.id, entity.number)

    def _view_result(self, body: Any, operation: str) -> dict[str, Any]:
        result = body.get("Result") if isinstance(body, Mapping) else None
        document = result.get("Result") if isinstance(result, Mapping) else None
        if not isinstance(document, dict):
            raise K3CloudResponseError(
                f"{operation} succeeded but its reply has no Result.Result object",
                body=self._redact(snippet(str(body))),
            )
        return document

    def _body_snippet(self, response: httpx.Response) -> str:
        return self._redact(snippet(response.text))


def _saved_rows(status: ResponseStatus) -> list[SavedRow]:
    return [
        SavedRow(e.d_index if e.d_index is not None else i, e.id, e.number)
        for i, e in enumerate(status.success_entitys)
    ]
