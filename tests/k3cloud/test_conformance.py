"""Conformance with Kingdee's official Python SDK (kingdee-cdp-webapi-sdk 8.2.0).

(a) Our signed headers equal the official SDK's for the same inputs and clock.
(b) The official SDK, pointed at FakeK3Cloud on a loopback port, is accepted and can BatchSave and
    query; a wrong app secret or account is refused — the fake verifies what the server verifies.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from k3cloud_client import Customer, K3CloudClient
from k3cloud_client.testing import (
    PASSPORT_FAILURE,
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
    customer_rows,
)

webapi_client = pytest.importorskip("k3cloud_webapi_sdk.core.webapi_client")
K3CloudApiSdk = pytest.importorskip("k3cloud_webapi_sdk.main").K3CloudApiSdk

pytestmark = pytest.mark.conformance

SIGNATURE_HEADERS = (
    "X-Api-ClientID",
    "X-Api-Auth-Version",
    "x-api-timestamp",
    "x-api-nonce",
    "x-api-signheaders",
    "X-Api-Signature",
    "X-Kd-Appkey",
    "X-Kd-Appdata",
    "X-Kd-Signature",
)


def official_sdk(server_url: str, **overrides: Any) -> Any:
    settings = {
        "acct_id": TEST_ACCT_ID,
        "user_name": TEST_USER_NAME,
        "app_id": TEST_APP_ID,
        "app_secret": TEST_APP_SECRET,
        "server_url": server_url,
        **overrides,
    }
    sdk = K3CloudApiSdk(server_url)
    sdk.InitConfig(**settings)
    return sdk


@pytest.mark.parametrize(
    ("server_url", "op", "settings"),
    [
        ("http://localhost/k3cloud/", "BatchSave", {}),
        ("http://localhost/k3cloud/", "ExecuteBillQuery", {"org_num": 100}),
        ("https://erp.example.com:8443/K3Cloud/", "View", {"lcid": 1033, "org_num": 7}),
        ("http://10.0.0.5/", "Save", {"user_name": "张三", "acct_id": "62a0e1b2c3d4e5"}),
        (
            "http://localhost/k3cloud/",
            "Submit",
            {
                "app_id": "218358_1ccC0/HFQmH/XUVET36Bzz8M1rWb0APu",
                "app_secret": "be319058d85246e4a2a7be73c684bdce",
            },
        ),
    ],
)
@pytest.mark.parametrize("now", [1700000000.0, 1712345678.999])
def test_signed_headers_equal_the_official_sdk(
    monkeypatch: pytest.MonkeyPatch, server_url: str, op: str, settings: dict[str, Any], now: float
) -> None:
    monkeypatch.setattr(webapi_client, "time", SimpleNamespace(time=lambda: now))
    sdk = official_sdk(server_url, **settings)
    service_url = (
        f"{server_url}Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.{op}.common.kdsvc"
    )
    official = sdk.BuildHeader(service_url)

    captured: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(
            200,
            json={
                "Result": {
                    "ResponseStatus": {"IsSuccess": True, "SuccessEntitys": [{"Id": 1}]},
                    "Result": {},
                }
            },
        )

    ours = {
        "acct_id": TEST_ACCT_ID,
        "user_name": TEST_USER_NAME,
        "app_id": TEST_APP_ID,
        "app_secret": TEST_APP_SECRET,
        **settings,
    }
    client = K3CloudClient(
        server_url,
        **ours,
        clock=lambda: now,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    client.execute(op, {"formid": "BD_Customer", "data": {}})
    (request,) = captured
    assert str(request.url) == service_url
    assert {name: request.headers[name] for name in SIGNATURE_HEADERS} == {
        name: official[name] for name in SIGNATURE_HEADERS
    }


def test_the_official_sdk_is_accepted_and_can_batch_save_and_query() -> None:
    fake = FakeK3Cloud(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
    )
    fake.seed("BD_Customer", [{"FNumber": "C00002", "FName": "existing"}])
    with fake.serve() as server:
        sdk = official_sdk(server.url + "/k3cloud/")
        saved = json.loads(sdk.BatchSave("BD_Customer", {"Model": customer_rows(3)}))
        status = saved["Result"]["ResponseStatus"]
        assert [e["Number"] for e in status["SuccessEntitys"]] == ["C00001", "C00003"]
        assert [(e["DIndex"], e["Message"]) for e in status["Errors"]] == [
            (1, "违反字段唯一性要求：编码唯一。[C00002]在当前系统中已经被使用。")
        ]
        text = sdk.ExecuteBillQuery(
            {
                "FormId": "BD_Customer",
                "FieldKeys": "FNumber,FName",
                "FilterString": "FNumber in ('C00001','C00002')",
                "OrderString": "FNumber",
            }
        )
        assert isinstance(text, str)
        assert json.loads(text) == [["C00001", "Customer 1"], ["C00002", "existing"]]
        objects = json.loads(
            sdk.BillQuery({"FormId": "BD_Customer", "FieldKeys": "FNumber", "Limit": 1})
        )
        assert objects == [{"FNumber": "C00002"}]
        # What the official SDK wrote, our client reads — the same server for both.
        with K3CloudClient(
            server.url + "/k3cloud/",
            acct_id=TEST_ACCT_ID,
            user_name=TEST_USER_NAME,
            app_id=TEST_APP_ID,
            app_secret=TEST_APP_SECRET,
        ) as client:
            assert client.view("BD_Customer", number="C00003")["FName"] == "Customer 3"
            assert client.batch_save("BD_Customer", [Customer("C00004", "ours")]).ok
        assert (
            json.loads(sdk.View("BD_Customer", {"Number": "C00004"}))["Result"]["Result"]["FName"]
            == "ours"
        )
    assert fake.auth_failures == []


@pytest.mark.parametrize(
    "overrides",
    [{"app_secret": "0" * 32}, {"acct_id": "wrong-account"}, {"user_name": "intruder"}],
)
def test_the_fake_refuses_the_official_sdk_with_wrong_credentials(
    overrides: dict[str, Any],
) -> None:
    fake = FakeK3Cloud(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
    )
    with fake.serve() as server:
        sdk = official_sdk(server.url + "/k3cloud/", **overrides)
        with pytest.raises(RuntimeError, match=PASSPORT_FAILURE):
            sdk.BatchSave("BD_Customer", {"Model": customer_rows(1)})
    assert fake.records("BD_Customer") == []
    assert len(fake.auth_failures) == 1
