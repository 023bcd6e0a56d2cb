"""FakeK3Cloud is strict: it refuses what the real server refuses."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from k3cloud_client.signing import signed_headers
from k3cloud_client.testing import (
    DUPLICATE_NUMBER_MESSAGE,
    PASSPORT_FAILURE,
    SESSION_LOST_MESSAGE,
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
    customer_rows,
)

BASE = "http://k3.test/k3cloud/Kingdee.BOS.WebApi.ServicesStub."
NOW = 1_700_000_000


def post(
    fake: FakeK3Cloud,
    op: str,
    body: Any,
    *,
    service: str = "DynamicFormService",
    sign: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    url = f"{BASE}{service}.{op}.common.kdsvc"
    all_headers = dict(headers or {})
    if sign is not None:
        settings = {
            "acct_id": TEST_ACCT_ID,
            "user_name": TEST_USER_NAME,
            "app_id": TEST_APP_ID,
            "app_secret": TEST_APP_SECRET,
            "lcid": 2052,
            "org_num": 0,
            "path": httpx.URL(url).path,
            "timestamp": NOW,
            **sign,
        }
        all_headers.update(signed_headers(**settings))
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with httpx.Client(transport=fake.transport()) as client:
        return client.post(url, content=content, headers=all_headers)


@pytest.fixture
def strict() -> FakeK3Cloud:
    return FakeK3Cloud(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
        password="pw-123456",
        clock=lambda: NOW,
    )


QUERY = {"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber"}}


def test_correct_signature_is_accepted(strict: FakeK3Cloud) -> None:
    response = post(strict, "ExecuteBillQuery", QUERY, sign={})
    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize(
    ("sign", "reason"),
    [
        ({"app_secret": "0" * 32}, "X-Kd-Signature does not match (wrong app secret?)"),
        ({"acct_id": "other"}, "X-Kd-Appdata names 'other'/'webapi', not this account and user"),
        (
            {"user_name": "other"},
            "X-Kd-Appdata names '5db25ac8d2b819'/'other', not this account and user",
        ),
        (
            {"timestamp": NOW - 86401},
            "x-api-timestamp 1699913599 is more than 86400s from the clock",
        ),
        (
            {"path": "/k3cloud/elsewhere"},
            "X-Api-Signature does not match the path, timestamp and nonce",
        ),
        ({"app_id": "204399_72epSbtEQMC92Vwt2d3LRa9LRqSc1tqK"}, "X-Kd-Appkey is not the app id"),
    ],
)
def test_wrong_signatures_are_refused(
    strict: FakeK3Cloud, sign: dict[str, Any], reason: str
) -> None:
    response = post(strict, "ExecuteBillQuery", QUERY, sign=sign)
    assert response.status_code == 500
    assert response.text == PASSPORT_FAILURE
    assert strict.auth_failures == [reason]


def test_clock_skew_within_a_day_is_accepted(strict: FakeK3Cloud) -> None:
    assert (
        post(strict, "ExecuteBillQuery", QUERY, sign={"timestamp": NOW - 86000}).status_code == 200
    )


def test_no_credentials_is_a_lost_session(strict: FakeK3Cloud) -> None:
    reply = post(strict, "BatchSave", {"formid": "BD_Customer", "data": {"Model": []}}).json()
    assert reply["Result"]["ResponseStatus"]["MsgCode"] == 1
    assert reply["Result"]["ResponseStatus"]["Errors"][0]["Message"] == SESSION_LOST_MESSAGE
    query = post(
        strict, "ExecuteBillQuery", QUERY, headers={"kdservice-sessionid": "made-up"}
    ).json()
    assert query[0][0]["Result"]["ResponseStatus"]["MsgCode"] == 1


def test_login_logout_and_expiry(strict: FakeK3Cloud) -> None:
    login = post(
        strict,
        "ValidateUser",
        {"parameters": [TEST_ACCT_ID, TEST_USER_NAME, "pw-123456", 2052]},
        service="AuthService",
    )
    assert login.json()["LoginResultType"] == 1
    session_id = login.cookies["kdservice-sessionid"]
    assert login.json()["KDSVCSessionId"] == session_id
    cookie = {"Cookie": f"kdservice-sessionid={session_id}"}
    assert post(strict, "ExecuteBillQuery", QUERY, headers=cookie).json() == []
    strict.expire_sessions()
    assert (
        post(strict, "ExecuteBillQuery", QUERY, headers=cookie).json()[0][0]["Result"][
            "ResponseStatus"
        ]["MsgCode"]
        == 1
    )
    again = post(
        strict,
        "ValidateUser",
        {"parameters": json.dumps([TEST_ACCT_ID, TEST_USER_NAME, "pw-123456", 2052])},
        service="AuthService",
    )
    header = {"kdservice-sessionid": again.cookies["kdservice-sessionid"]}
    assert post(strict, "ExecuteBillQuery", QUERY, headers=header).json() == []
    post(strict, "Logout", {}, service="AuthService", headers=header)
    assert strict.active_sessions == 0
    assert strict.login_count == 2


def test_data_as_a_json_string_is_accepted(strict: FakeK3Cloud) -> None:
    body = {"formid": "BD_Customer", "data": json.dumps({"Model": customer_rows(2)})}
    reply = post(strict, "BatchSave", body, sign={}).json()
    assert [e["Number"] for e in reply["Result"]["ResponseStatus"]["SuccessEntitys"]] == [
        "C00001",
        "C00002",
    ]


def test_bad_requests(strict: FakeK3Cloud) -> None:
    assert post(strict, "Nope", {}, sign={}).status_code == 404
    not_json = post(strict, "BatchSave", b"{", sign={}).json()
    assert not_json["Result"]["ResponseStatus"]["MsgCode"] == 8
    no_form = post(strict, "BatchSave", {"data": {"Model": []}}, sign={}).json()
    assert no_form["Result"]["ResponseStatus"]["MsgCode"] == 5
    not_list = post(
        strict, "BatchSave", {"formid": "BD_Customer", "data": {"Model": {}}}, sign={}
    ).json()
    assert not_list["Result"]["ResponseStatus"]["Errors"][0]["FieldName"] == "Model"


def test_customer_rules_per_row(strict: FakeK3Cloud) -> None:
    strict.seed("BD_Customer", [{"FNumber": "OLD", "FName": "o"}])
    models = [
        {"FNumber": "N1", "FName": "ok"},
        {"FNumber": "OLD", "FName": "dup"},
        {"FNumber": "N2"},
        {"FNumber": "N3", "FName": "x", "FCreateOrgId": "100"},
        {"FNumber": "N1", "FName": "dup in call"},
    ]
    status = post(
        strict, "BatchSave", {"formid": "BD_Customer", "data": {"Model": models}}, sign={}
    ).json()["Result"]["ResponseStatus"]
    assert status["IsSuccess"] is False
    assert status["MsgCode"] == 11
    assert [e["DIndex"] for e in status["SuccessEntitys"]] == [0]
    assert [(e["DIndex"], e["FieldName"], e["Message"]) for e in status["Errors"]] == [
        (1, "FNumber", DUPLICATE_NUMBER_MESSAGE.format(number="OLD")),
        (2, "FName", "字段“客户名称”是必填项"),
        (3, "FCreateOrgId", '字段 FCreateOrgId 的值须为 {"FNumber": ...} 形式的基础资料引用'),
        (4, "FNumber", DUPLICATE_NUMBER_MESSAGE.format(number="N1")),
    ]
    with pytest.raises(ValueError, match="already exists"):
        strict.seed("BD_Customer", [{"FNumber": "OLD"}])


@pytest.mark.parametrize(
    ("data", "code", "message"),
    [
        ({"FieldKeys": "FNope"}, 9, "元数据中标识为FNope的字段不存在"),
        ({"FilterString": "FNope = 'a'"}, 9, "元数据中标识为FNope的字段不存在"),
        ({"OrderString": "FNope"}, 9, "元数据中标识为FNope的字段不存在"),
        ({"FilterString": "FNumber = 'a"}, 4, '过滤条件语法错误：无法识别 "\'"'),
        (
            {"FilterString": "FNumber like 'a%'"},
            4,
            "过滤条件语法错误：只支持 =、<>、in (...)、and、or 与括号",
        ),
        ({"FilterString": "FNumber = 'a' and"}, 4, "过滤条件语法错误：应为 'literal'，却是 '结尾'"),
        ({"FilterString": "(FNumber = 'a'"}, 4, "过滤条件语法错误：应为 ')'，却是 '结尾'"),
        ({"FilterString": "__import__('os')"}, 9, "元数据中标识为__import__的字段不存在"),
        ({"Limit": "ten"}, 8, "Limit 必须是整数"),
        ({"OrderString": "FNumber sideways"}, 4, "排序条件语法错误：'FNumber sideways'"),
    ],
)
def test_query_errors_come_dressed_as_a_row(
    strict: FakeK3Cloud, data: dict[str, Any], code: int, message: str
) -> None:
    body = {"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber", **data}}
    reply = post(strict, "ExecuteBillQuery", body, sign={}).json()
    status = reply[0][0]["Result"]["ResponseStatus"]
    assert (status["IsSuccess"], status["MsgCode"], status["Errors"][0]["Message"]) == (
        False,
        code,
        message,
    )


def test_filter_language(strict: FakeK3Cloud) -> None:
    strict.seed(
        "BD_Customer",
        [
            {"FNumber": "A", "FName": "it's", "FCUSTID": 5},
            {"FNumber": "B", "FName": "b", "FCUSTID": 6},
            {"FNumber": "C", "FName": None, "FCUSTID": 7},
        ],
    )

    def numbers(where: str, order: str = "") -> list[Any]:
        body = {
            "data": {
                "FormId": "BD_Customer",
                "FieldKeys": "FNumber",
                "FilterString": where,
                "OrderString": order,
            }
        }
        return [r[0] for r in post(strict, "ExecuteBillQuery", body, sign={}).json()]

    assert numbers("FName = 'it''s'") == ["A"]
    assert numbers("FCUSTID in (5, '7')") == ["A", "C"]
    assert numbers("FNumber = 'A' or FNumber = 'B' and FCUSTID = 5") == ["A"]
    assert numbers("(FNumber = 'A' or FNumber = 'B') and FCUSTID = 6") == ["B"]
    assert numbers("FName <> 'b'") == ["A"]  # NULL compares to nothing
    assert numbers("FName = FName") == ["A", "B"]
    assert numbers("", "FNumber desc") == ["C", "B", "A"]
    assert numbers("FNumber IN ('A') AND FCUSTID = 5.0") == ["A"]


def test_the_fake_is_thread_safe(strict: FakeK3Cloud) -> None:
    with strict.serve() as server:
        url = (
            server.url
            + "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc"
        )
        path = httpx.URL(url).path

        def save(offset: int) -> None:
            headers = signed_headers(
                acct_id=TEST_ACCT_ID,
                user_name=TEST_USER_NAME,
                app_id=TEST_APP_ID,
                app_secret=TEST_APP_SECRET,
                lcid=2052,
                org_num=0,
                path=path,
                timestamp=NOW,
            )
            # Overlapping numbers from every thread: each must be stored once.
            body = {"formid": "BD_Customer", "data": {"Model": customer_rows(30, start=offset)}}
            httpx.post(url, json=body, headers=headers, timeout=10)

        threads = [threading.Thread(target=save, args=(n * 10,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
    numbers = [r["FNumber"] for r in strict.records("BD_Customer")]
    assert sorted(numbers) == [f"C{n:05d}" for n in range(80)]
    assert len({r["FCUSTID"] for r in strict.records("BD_Customer")}) == 80
