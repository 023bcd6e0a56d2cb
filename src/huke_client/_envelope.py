"""The ``{"code", "msg", "data"}`` envelope every Huke reply comes in: its data, or the error."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

import httpx

from _huke_k3_core import RetryableResponse, snippet

from ._errors import HukeAPIError, HukeResponseError

__all__ = ["SUCCESS", "envelope_code", "envelope_data"]

#: The envelope ``code`` of a success.
SUCCESS = 200


def envelope_code(value: Any) -> int | str | None:
    """The envelope ``code`` as an int when it is numeric; ``None`` when it is no code at all."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        return int(text) if text.lstrip("-").isdigit() else text
    return None


def _dumps_text(value: Any) -> str:
    """Server data as text for a message: JSON (what the redactor's variants cover)."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def envelope_data(
    payload: Any,
    response: httpx.Response,
    *,
    redact: Callable[[str], str],
    retry_codes: Collection[int | str],
) -> Any:
    """The ``data`` of ``payload`` (``response``'s decoded JSON) when its ``code`` is 200.

    Any other code is a ``HukeAPIError``, wrapped in ``RetryableResponse`` when it is one of
    ``retry_codes``; a payload that is no envelope at all is a ``HukeResponseError``. Every text
    from the server passes through ``redact`` before it reaches a message.
    """
    where = response.request.url.path
    code = envelope_code(payload.get("code")) if isinstance(payload, dict) else None
    if code is None:
        body = redact(snippet(response.text))
        raise HukeResponseError(
            f'{where} answered JSON that is not the Huke envelope {{"code", "msg", "data"}}: '
            f"{body}",
            body=body,
        )
    if code == SUCCESS:
        return payload.get("data")
    if isinstance(code, str):
        # A text code is the server's text: it may quote the request like any message.
        code = redact(code)
    raw_msg = payload.get("msg")
    # JSON, not str(): a Python repr escapes differently from what the redactor knows.
    msg = redact(
        "" if raw_msg is None else raw_msg if isinstance(raw_msg, str) else _dumps_text(raw_msg)
    )
    error = HukeAPIError(
        f"{where} failed with Huke error {code}: {snippet(msg) or '(no msg)'}",
        code=code,
        msg=msg,
        data=payload.get("data"),
        path=where,
    )
    if code in retry_codes:
        raise RetryableResponse(error)
    raise error
