"""What K/3 Cloud's failures and refused rows tell the ledger. No I/O.

Whether an error concerns a call as a whole or something in it, whether a call that raised may
still have been carried out, whether a refused row's number is taken, and how a row's refusal
and a whole-call failure are put in words.
"""

from __future__ import annotations

from typing import Any

from k3cloud_client import (
    WHOLE_CALL_MSG_CODES,
    K3CloudAPIError,
    K3CloudAuthenticationError,
    K3CloudConnectionError,
    K3CloudHTTPError,
    LoginError,
    PermissionDeniedError,
    RateLimitedError,
    SessionLostError,
)


def whole_call_hint(exc: BaseException) -> str:
    """What to check when every call fails with ``exc``."""
    if isinstance(exc, K3CloudAuthenticationError | LoginError):
        return (
            "acct_id, user_name, app_id, app_secret (or the password), and the machine's clock "
            "(signatures carry a timestamp)"
        )
    if isinstance(exc, PermissionDeniedError):
        return "the K/3 Cloud user's permissions on the form (view, save, submit, audit)"
    if isinstance(exc, SessionLostError):
        return (
            "whether another client logs in as the same user (each login ends the last "
            "session), or use signed headers (app_id + app_secret)"
        )
    if isinstance(exc, RateLimitedError):
        return "the account's call-rate limit: lower concurrency, or run later"
    if isinstance(exc, K3CloudConnectionError):
        return "server_url and the network (K/3 Cloud could not be reached, or did not answer)"
    if isinstance(exc, K3CloudHTTPError):
        return "server_url (it ends in /k3cloud/) and the server's health"
    return ""


def is_whole_call(exc: BaseException) -> bool:
    """Whether an error concerns the call as a whole (session, rate limit, authentication, the
    server or the network), not something in it: splitting such a call cannot isolate a culprit,
    it only multiplies the calls (and the logins)."""
    if not isinstance(exc, K3CloudAPIError):
        return True
    return exc.msg_code in WHOLE_CALL_MSG_CODES


def failure_kind(exc: BaseException) -> tuple[str, int | None]:
    """What two failures must share to count as alike: the error type and the MsgCode."""
    return type(exc).__name__, getattr(exc, "msg_code", None)


def may_have_reached(exc: BaseException) -> bool:
    """Whether a call that raised may still have been carried out by the server."""
    reached = getattr(exc, "reached_server", None)
    return bool(reached)


def number_taken(row: Any) -> bool:
    """Whether a refused row was refused because its number is already in use."""
    message = str(row.message or "")
    return (row.field_name == "FNumber" and row.msg_code == 11) or "已经被使用" in message


def row_message(row: Any) -> str:
    """A refused row's message, with its field and MsgCode when the reply gives them."""
    parts = [str(row.message or "no message")]
    if row.field_name:
        parts.append(f"field {row.field_name}")
    if row.msg_code is not None:
        parts.append(f"MsgCode {row.msg_code}")
    return parts[0] + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "")
