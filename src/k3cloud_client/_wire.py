"""K/3 Cloud's wire conventions: service paths, the ``{"formid", "data"}`` body, and where the
``ResponseStatus`` sits in the several shapes a reply can take."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from _huke_k3_core._transport import loads

#: Where business services live, relative to the server URL.
DYNAMIC_FORM_SERVICE = "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService"
#: Where the session logins live.
AUTH_SERVICE = "Kingdee.BOS.WebApi.ServicesStub.AuthService"
SERVICE_SUFFIX = ".common.kdsvc"
#: The session cookie (and the request header the clients also send).
SESSION_COOKIE = "kdservice-sessionid"
MSG_SESSION_LOST = 1


def service_path(service: str) -> str:
    """``"BatchSave"`` or a full service name -> the URL path relative to the server URL."""
    name = service if "." in service else f"{DYNAMIC_FORM_SERVICE}.{service}"
    return name + SERVICE_SUFFIX


def check_form_id(form_id: object) -> str:
    """``form_id`` if it names a form; ValueError otherwise (before anything is sent)."""
    if not isinstance(form_id, str) or not form_id:
        raise ValueError("form_id is required, e.g. 'BD_Customer'")
    return form_id


def form_body(form_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a form operation (``Save``, ``Submit``, ``View``, ``Allocate`` ...)."""
    return {"formid": check_form_id(form_id), "data": dict(data)}


def find_response_status(body: Any) -> Mapping[str, Any] | None:
    """The ``ResponseStatus`` object of a decoded reply, or None when it has none.

    Business calls answer ``{"Result": {"ResponseStatus": {...}}}``; queries carry an error as a
    fake data row, ``[[{"Result": {"ResponseStatus": {...}}}]]`` (or one level less deep).
    """
    for _ in range(3):  # the object itself, then at most two levels of lists
        if isinstance(body, Mapping):
            result = body.get("Result")
            if isinstance(result, Mapping):
                status = result.get("ResponseStatus")
                if isinstance(status, Mapping):
                    return status
            return None
        if isinstance(body, list) and body:
            body = body[0]
            continue
        return None
    return None


def msg_code_of(content: bytes) -> int | None:
    """The ``MsgCode`` of a failed reply's raw body, or None (success, or not a K/3 reply)."""
    # A cheap test first: most replies are successes, and query pages can be large.
    if b"MsgCode" not in content:
        return None
    try:
        status = find_response_status(loads(content))
    except ValueError:
        return None
    if status is None or status.get("IsSuccess") is True:
        return None
    code = status.get("MsgCode")
    return code if isinstance(code, int) and not isinstance(code, bool) else None
