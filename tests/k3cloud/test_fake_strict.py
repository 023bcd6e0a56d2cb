"""FakeK3Cloud answers every malformed request with a K/3-shaped error, as the real server does,
and serves only the real routes: a wrong server URL fails in tests as it does in production."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from k3cloud_client import K3CloudClient, K3CloudHTTPError
from k3cloud_client.signing import signed_headers
from k3cloud_client.testing import (
    PASSPORT_FAILURE,
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
    customer_rows,
)

from .conftest import FAST, credentials

STUB = "Kingdee.BOS.WebApi.ServicesStub."
URL = f"http://k3.test/k3cloud/{STUB}"
NOW = 1_700_000_000


@pytest.fixture
def strict() -> FakeK3Cloud:
    return FakeK3Cloud(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
        clock=lambda: NOW,
    )


def _signed(url: str) -> dict[str, str]:
    return signed_headers(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
        lcid=2052,
        org_num=0,
        path=httpx.URL(url).path,
        timestamp=NOW,
    )


def send(
    fake: FakeK3Cloud,
    op: str,
    content: bytes,
    *,
    service: str = "DynamicFormService",
    headers: dict[str, Any] | None = None,
) -> httpx.Response:
    url = f"{URL}{service}.{op}.common.kdsvc"
    request = httpx.Request("POST", url, content=content, headers=headers or _signed(url))
    return fake.transport().handle_request(request)


def status_of(response: httpx.Response) -> dict[str, Any]:
    """The ResponseStatus of a K/3 reply (queries carry it as a data row)."""
    assert response.status_code == 200, response.text
    body = response.json()
    while isinstance(body, list):
        body = body[0]
    status: dict[str, Any] = body["Result"]["ResponseStatus"]
    assert status["IsSuccess"] is False
    return status


def save_body(**data: Any) -> bytes:
    return json.dumps(
        {"formid": "BD_Customer", "data": {"Model": customer_rows(1), **data}}
    ).encode()


# -- field lists -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("NeedReturnFields", [["FNumber"]]),
        ("NeedReturnFields", [{}]),
        ("NeedReturnFields", ["FNumber", 3]),
        ("NeedReturnFields", "FNumber"),
        ("NeedUpDateFields", [["FName"]]),
        ("NeedUpDateFields", [None]),
        ("NeedUpDateFields", {"FName": True}),
    ],
)
@pytest.mark.parametrize("op", ["BatchSave", "Save"])
def test_field_lists_must_be_lists_of_strings(
    strict: FakeK3Cloud, op: str, field: str, value: Any
) -> None:
    model: Any = customer_rows(1) if op == "BatchSave" else customer_rows(1)[0]
    body = {"formid": "BD_Customer", "data": {"Model": model, field: value}}
    status = status_of(send(strict, op, json.dumps(body).encode()))
    assert status["MsgCode"] == 8
    assert field in status["Errors"][0]["Message"]
    assert status["Errors"][0]["FieldName"] == field
    assert strict.records("BD_Customer") == []  # refused as a whole, before any row is saved


def test_an_update_with_field_lists_of_strings_still_works(strict: FakeK3Cloud) -> None:
    [row_id] = strict.seed("BD_Customer", customer_rows(1))
    model = {"FCUSTID": row_id, "FName": "renamed"}
    body = {"formid": "BD_Customer", "data": {"Model": [model], "NeedUpDateFields": ["FName"]}}
    body["data"]["NeedReturnFields"] = ["FName"]
    reply = send(strict, "BatchSave", json.dumps(body).encode()).json()
    assert reply["Result"]["NeedReturnData"] == [{"FName": "renamed"}]


# -- numbers and nesting ---------------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN", "1e999", "-1e999"])
@pytest.mark.parametrize("op", ["BatchSave", "ExecuteBillQuery"])
def test_non_finite_numbers_get_a_k3_error(strict: FakeK3Cloud, op: str, literal: str) -> None:
    if op == "BatchSave":
        content = save_body().replace(b'"Customer 1"', literal.encode())
    else:
        query = '{"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber", "TopRowCount": %s}}'
        content = (query % literal).encode()
    status = status_of(send(strict, op, content))
    assert status["MsgCode"] == 8
    assert "JSON" in status["Errors"][0]["Message"]
    assert strict.records("BD_Customer") == []


def test_non_finite_numbers_in_a_login_get_a_refusal(strict: FakeK3Cloud) -> None:
    content = b'{"parameters": ["%s", "%s", "%s", NaN, "sign", 2052]}' % (
        TEST_ACCT_ID.encode(),
        TEST_USER_NAME.encode(),
        TEST_APP_ID.encode(),
    )
    reply = send(strict, "LoginBySign", content, service="AuthService", headers={}).json()
    assert reply["LoginResultType"] == 0
    assert strict.active_sessions == 0


def test_a_huge_login_timestamp_is_refused(strict: FakeK3Cloud) -> None:
    parameters = [TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, 10**400, "sign", 2052]
    content = json.dumps({"parameters": parameters}).encode()
    reply = send(strict, "LoginBySign", content, service="AuthService", headers={}).json()
    assert reply["LoginResultType"] == 0
    assert "时间戳" in reply["Message"]


@pytest.mark.parametrize("depth", [65, 5_000, 100_000])
def test_deeply_nested_bodies_get_a_k3_error(strict: FakeK3Cloud, depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    content = save_body().replace(b'"Customer 1"', nested)
    status = status_of(send(strict, "BatchSave", content))
    assert status["MsgCode"] == 8
    assert strict.records("BD_Customer") == []


def test_nesting_a_real_request_uses_is_accepted(strict: FakeK3Cloud) -> None:
    model = {**customer_rows(1)[0], "FEntity": [{"FSub": {"FRef": {"FNumber": "x"}}}]}
    body = {"formid": "BD_Customer", "data": {"Model": [model]}}
    reply = send(strict, "BatchSave", json.dumps(body).encode()).json()
    assert reply["Result"]["ResponseStatus"]["IsSuccess"] is True


@pytest.mark.parametrize(
    "filter_string",
    [
        "(" * 330 + "FNumber = 'C1'" + ")" * 330,
        "(" * 100_000,
        "FNumber = " + "9" * 5_000,
    ],
)
def test_filters_too_deep_or_too_long_get_a_k3_error(
    strict: FakeK3Cloud, filter_string: str
) -> None:
    query = {"FormId": "BD_Customer", "FieldKeys": "FNumber", "FilterString": filter_string}
    status = status_of(send(strict, "ExecuteBillQuery", json.dumps({"data": query}).encode()))
    assert status["MsgCode"] == 4


def test_a_filter_nested_as_deep_as_the_limit_is_served(strict: FakeK3Cloud) -> None:
    strict.seed("BD_Customer", customer_rows(2))
    deep = "(" * 64 + "FNumber = 'C00002'" + ")" * 64
    query = {"FormId": "BD_Customer", "FieldKeys": "FNumber", "FilterString": deep}
    reply = send(strict, "ExecuteBillQuery", json.dumps({"data": query}).encode()).json()
    assert reply == [["C00002"]]


@pytest.mark.parametrize("value", [2.5, "x", [1], {"a": 1}, True, -1])
def test_row_counts_must_be_non_negative_integers(strict: FakeK3Cloud, value: Any) -> None:
    query = {"FormId": "BD_Customer", "FieldKeys": "FNumber", "TopRowCount": value}
    status = status_of(send(strict, "ExecuteBillQuery", json.dumps({"data": query}).encode()))
    assert status["MsgCode"] == 8
    assert "TopRowCount" in status["Errors"][0]["Message"]


# -- signed headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Api-Signature", "签名".encode()),
        ("X-Kd-Signature", "é".encode("latin-1")),
        ("x-api-timestamp", "²".encode()),
        ("x-api-timestamp", b"9" * 400),
        ("X-Kd-Appdata", "账套".encode()),
    ],
)
def test_odd_signed_header_values_are_a_passport_failure(
    strict: FakeK3Cloud, header: str, value: bytes
) -> None:
    url = f"{URL}DynamicFormService.ExecuteBillQuery.common.kdsvc"
    headers = [
        (k.encode(), v.encode()) for k, v in _signed(url).items() if k.lower() != header.lower()
    ]
    request = httpx.Request(
        "POST", url, content=b"{}", headers=[*headers, (header.encode(), value)]
    )
    response = strict.transport().handle_request(request)
    assert (response.status_code, response.text) == (500, PASSPORT_FAILURE)


# -- routes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/{STUB}DynamicFormService.ExecuteBillQuery.common.kdsvc",
        f"/erp/{STUB}DynamicFormService.ExecuteBillQuery.common.kdsvc",
        f"/k3cloud/api/{STUB}DynamicFormService.ExecuteBillQuery.common.kdsvc",
        f"/k3cloud/{STUB}DynamicFormService.ExecuteBillQuery.common.kdsvc/",
        f"/k3cloud/{STUB}DynamicFormService.ExecuteBillQuery.kdsvc",
        f"/k3cloud/Other.{STUB}DynamicFormService.ExecuteBillQuery.common.kdsvc",
        "/k3cloud/",
        "/",
        "/openapi/trade/searchTrades",
    ],
)
def test_only_the_real_routes_are_served(strict: FakeK3Cloud, path: str) -> None:
    url = f"http://k3.test{path}"
    request = httpx.Request("POST", url, content=b"{}", headers=_signed(url))
    response = strict.transport().handle_request(request)
    assert response.status_code == 404
    assert len(response.content) < 200
    assert strict.auth_failures == []  # refused before any service looked at it


def test_the_site_name_is_case_insensitive_as_on_iis(strict: FakeK3Cloud) -> None:
    url = f"http://k3.test/K3Cloud/{STUB}DynamicFormService.ExecuteBillQuery.common.kdsvc"
    query = json.dumps({"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber"}}).encode()
    request = httpx.Request("POST", url, content=query, headers=_signed(url))
    assert strict.transport().handle_request(request).json() == []


@pytest.mark.parametrize("server_url", ["http://k3.test/", "http://k3.test/k3cloud/k3cloud/"])
def test_a_client_with_a_wrong_server_url_fails_as_in_production(
    strict: FakeK3Cloud, server_url: str
) -> None:
    client = K3CloudClient(
        server_url,
        **credentials(),
        retry=FAST,
        http_client=httpx.Client(transport=strict.transport()),
    )
    with client, pytest.raises(K3CloudHTTPError) as info:
        client.execute_bill_query("BD_Customer", "FNumber")
    assert info.value.status_code == 404
