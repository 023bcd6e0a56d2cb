"""Booleans from K/3 Cloud are JSON booleans or the reply is an error: never guessed.

``bool("false")`` is True, so a lenient reader took ``"IsSuccess": "false"`` for a success.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from k3cloud_client import (
    Customer,
    K3CloudAPIError,
    K3CloudResponseError,
    ResponseStatus,
    SavedRow,
)
from k3cloud_client.models import converter

from .conftest import Harness

#: Every non-boolean a careless server (or a proxy rewriting JSON) might send, and how the error
#: must describe it.
NOT_BOOLEANS: list[tuple[Any, str]] = [
    ("false", "got a string"),
    ("true", "got a string"),
    (0, "got a number"),
    (1, "got a number"),
    (None, "got null"),
]
MISSING = object()


def _reply(is_success: Any) -> dict[str, Any]:
    status: dict[str, Any] = {
        "MsgCode": 0,
        "Errors": [],
        "SuccessEntitys": [{"Id": 7, "Number": "A", "DIndex": 0}],
    }
    if is_success is not MISSING:
        status["IsSuccess"] = is_success
    return {"Result": {"ResponseStatus": status}}


def _client(harness: Harness, reply: Any) -> Any:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=reply))
    return harness.client(transport=transport)


CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("save", ("BD_Customer", Customer("A", "a")), {}),
    ("submit", ("BD_Customer",), {"numbers": ["A"]}),
    ("audit", ("BD_Customer",), {"numbers": ["A"]}),
]


@pytest.mark.parametrize(("value", "described"), NOT_BOOLEANS)
@pytest.mark.parametrize("call", CALLS, ids=[c[0] for c in CALLS])
def test_a_non_boolean_is_success_is_a_response_error(
    harness: Harness, call: tuple[str, tuple[Any, ...], dict[str, Any]], value: Any, described: str
) -> None:
    method, args, kwargs = call
    client = _client(harness, _reply(value))
    with pytest.raises(K3CloudResponseError) as info:
        harness.call(client, method, *args, **kwargs)
    message = str(info.value)
    assert "ResponseStatus.IsSuccess" in message
    assert f"expected a JSON boolean (true or false), {described}" in message
    assert f"(received {value!r})" in message


@pytest.mark.parametrize("call", CALLS, ids=[c[0] for c in CALLS])
def test_a_missing_is_success_is_a_response_error(
    harness: Harness, call: tuple[str, tuple[Any, ...], dict[str, Any]]
) -> None:
    method, args, kwargs = call
    with pytest.raises(K3CloudResponseError, match=r"ResponseStatus\.IsSuccess: missing"):
        harness.call(_client(harness, _reply(MISSING)), method, *args, **kwargs)


@pytest.mark.parametrize(("value", "described"), [*NOT_BOOLEANS, (MISSING, "missing")])
def test_batch_save_with_a_non_boolean_is_success_saves_nothing_for_sure(
    harness: Harness, value: Any, described: str
) -> None:
    client = _client(harness, _reply(value))
    result = harness.call(client, "batch_save", "BD_Customer", [Customer("A", "a")])
    assert result.saved == []
    (row,) = result.failed
    # The server did process the call, so the row may have been saved: look it up, never resend.
    assert row.uncertain is True
    assert "ResponseStatus.IsSuccess" in row.message
    assert described in row.message


@pytest.mark.parametrize(("flag", "ok"), [(True, True), (False, False)])
def test_json_booleans_still_decide(harness: Harness, flag: bool, ok: bool) -> None:
    client = _client(harness, _reply(flag))
    if ok:
        assert harness.call(client, "submit", "BD_Customer", numbers=["A"]) == [SavedRow(0, 7, "A")]
    else:
        with pytest.raises(K3CloudAPIError):
            harness.call(client, "submit", "BD_Customer", numbers=["A"])


@pytest.mark.parametrize(("value", "described"), NOT_BOOLEANS)
def test_execute_and_queries_refuse_a_non_boolean_too(
    harness: Harness, value: Any, described: str
) -> None:
    client = _client(harness, _reply(value))
    with pytest.raises(K3CloudResponseError, match=described):
        harness.call(client, "execute", "Draft", {"formid": "BD_Customer", "data": {}})
    query = _client(harness, [[_reply(value)]])
    with pytest.raises(K3CloudResponseError, match=described):
        harness.call(query, "execute_bill_query", "BD_Customer", "FNumber")


def test_the_model_refuses_a_string_boolean() -> None:
    with pytest.raises(ValueError, match=r"IsSuccess: expected a JSON boolean .*got a string"):
        converter.structure({"IsSuccess": "false", "MsgCode": 0}, ResponseStatus)
    status = converter.structure({"IsSuccess": True, "MsgCode": 0}, ResponseStatus)
    assert status.is_success is True
