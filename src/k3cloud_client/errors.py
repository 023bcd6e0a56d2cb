"""The errors of ``k3cloud_client``: one base class, typed by what went wrong and where.

Every class is also importable from ``k3cloud_client``; ``api_error`` (the class for a MsgCode)
and ``WHOLE_CALL_MSG_CODES`` are for code that reads K/3 replies itself. (No ``__all__``: the
public names are the ones defined here without a leading underscore.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import httpx

from _huke_k3_core import (
    ConnectionFailedError,
    HTTPStatusError,
    RequestTimeoutError,
    ResponseFormatError,
    SDKError,
    plural,
)

if TYPE_CHECKING:
    from .models import BatchSaveResult, ErrorDetail

#: The text a K/3 Cloud server answers (with a non-200 status) when it rejects signed headers.
PASSPORT_FAILURE = "Fail to verify thirty passport"


class K3CloudError(SDKError):
    """Base of every error raised by ``k3cloud_client``."""


class K3CloudConfigError(K3CloudError, ValueError):
    """A setting is missing or malformed (raised before any request is sent)."""


class K3CloudHTTPError(K3CloudError, HTTPStatusError):
    """The server answered with an HTTP error status."""

    @classmethod
    def from_response(
        cls,
        response: httpx.Response,
        body: str,
        *,
        redact: Callable[[str], str] | None = None,
    ) -> HTTPStatusError:
        if cls is K3CloudHTTPError and PASSPORT_FAILURE in body:
            return K3CloudAuthenticationError.from_response(response, body, redact=redact)
        return super().from_response(response, body, redact=redact)


class K3CloudAuthenticationError(K3CloudHTTPError):
    """The server rejected the signed headers (``Fail to verify thirty passport``).

    Check the account id (``acct_id``), user name, app id and app secret against the server's
    third-party authorisation, and the machine's clock. Not retried: repeating cannot help.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        url: str,
        body: str,
        retry_after: float | None = None,
    ) -> None:
        hint = " (signed headers rejected: check acct_id, user_name, app_id, app_secret, clock)"
        super().__init__(
            message + hint, status_code=status_code, url=url, body=body, retry_after=retry_after
        )


class K3CloudConnectionError(K3CloudError, ConnectionFailedError):
    """The request could not be delivered, or its reply could not be read.

    ``reached_server`` is False only when the request surely never reached the server.
    """


class K3CloudTimeoutError(K3CloudConnectionError, RequestTimeoutError):
    """The request timed out."""


class K3CloudResponseError(K3CloudError, ResponseFormatError):
    """The body is not what the API documents (not JSON, or not the expected shape)."""


class K3CloudPageLimitError(K3CloudError):
    """``iter_bill_query`` read ``max_pages`` full pages and more rows may follow.

    Raised instead of stopping silently, so that a result is never truncated unnoticed (and a
    server that ignores ``StartRow`` is not paged forever). ``operation`` says which query
    (``"ExecuteBillQuery BD_Customer"``) and ``start_row`` where its next page would start.
    Narrow the filter or raise ``max_pages``.
    """

    def __init__(self, message: str, *, max_pages: int, operation: str, start_row: int) -> None:
        super().__init__(message)
        self.max_pages = max_pages
        self.operation = operation
        self.start_row = start_row


class LoginError(K3CloudError):
    """A session login (``ValidateUser``, ``LoginByAppSecret``, ``LoginBySign``) was refused.

    ``result_type`` is the server's ``LoginResultType`` and ``message`` its ``Message``.
    """

    def __init__(self, message: str, *, result_type: int | None, service: str) -> None:
        super().__init__(f"{service} refused the login (LoginResultType {result_type}): {message}")
        self.result_type = result_type
        self.message = message
        self.service = service


class K3CloudAPIError(K3CloudError):
    """The server answered HTTP 200 with ``IsSuccess: false`` for the call as a whole.

    ``msg_code`` is K/3 Cloud's ``MsgCode``, ``errors`` the ``Errors`` entries and ``message``
    their messages joined.
    """

    def __init__(
        self,
        message: str,
        *,
        msg_code: int,
        errors: Sequence[ErrorDetail] = (),
        operation: str = "",
    ) -> None:
        where = f"{operation} " if operation else ""
        super().__init__(f"{where}failed (MsgCode {msg_code}): {message}")
        self.msg_code = msg_code
        self.errors = list(errors)
        self.message = message
        self.operation = operation


class SessionLostError(K3CloudAPIError):
    """MsgCode 1: the session or its context is gone (log in again)."""


class PermissionDeniedError(K3CloudAPIError):
    """MsgCode 2: the user lacks the permission for the operation."""


class InvalidParameterError(K3CloudAPIError):
    """MsgCode 8: a parameter of the call is malformed."""


class FieldNotFoundError(K3CloudAPIError):
    """MsgCode 9: a field or a value was not found (e.g. an unknown field key in a query)."""


class DataNotFoundError(K3CloudAPIError):
    """MsgCode 10: the data the call names does not exist."""


class ValidationFailedError(K3CloudAPIError):
    """MsgCode 11: the server's validation refused the data."""


class OperationNotAllowedError(K3CloudAPIError):
    """MsgCode 12: the operation is not allowed in the data's current state."""


class RateLimitedError(K3CloudAPIError):
    """MsgCode 14: the call-rate limit was hit (retried with backoff before this is raised)."""


#: MsgCodes of errors that concern a call as a whole even when an error carries a ``DIndex``:
#: session lost (1), no permission (2), login/context problems (3, 5, 7), server busy or rate
#: limited (13, 14, 15). Splitting such a call, or blaming one row, cannot help.
WHOLE_CALL_MSG_CODES = frozenset({1, 2, 3, 5, 7, 13, 14, 15})

_BY_MSG_CODE: dict[int, type[K3CloudAPIError]] = {
    1: SessionLostError,
    2: PermissionDeniedError,
    8: InvalidParameterError,
    9: FieldNotFoundError,
    10: DataNotFoundError,
    11: ValidationFailedError,
    12: OperationNotAllowedError,
    14: RateLimitedError,
}


def api_error(
    message: str, *, msg_code: int, errors: Sequence[ErrorDetail] = (), operation: str = ""
) -> K3CloudAPIError:
    """The ``K3CloudAPIError`` subclass that matches ``msg_code`` (the base class otherwise)."""
    cls = _BY_MSG_CODE.get(msg_code, K3CloudAPIError)
    return cls(message, msg_code=msg_code, errors=errors, operation=operation)


class BatchSaveError(K3CloudError):
    """Raised by ``BatchSaveResult.raise_for_failures()``; ``result`` holds every row's outcome."""

    def __init__(self, result: BatchSaveResult) -> None:
        failed = result.failed
        shown = "; ".join(f"row {row.index}: {row.message}" for row in failed[:3])
        more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
        rows = plural(len(failed) + len(result.saved), "row")
        were = "was" if len(failed) == 1 else "were"
        super().__init__(f"{len(failed)} of {rows} {were} not saved: {shown}{more}")
        self.result = result
