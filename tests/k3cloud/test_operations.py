"""save, submit, audit, unaudit, delete, view and the execute escape hatch."""

from __future__ import annotations

import json

import httpx
import pytest

from _huke_k3_core.testing import Fault
from k3cloud_client import (
    Customer,
    DataNotFoundError,
    K3CloudAuthenticationError,
    K3CloudConfigError,
    K3CloudHTTPError,
    K3CloudTimeoutError,
    SavedRow,
    ValidationFailedError,
)
from k3cloud_client.testing import DUPLICATE_NUMBER_MESSAGE, FakeK3Cloud

from .conftest import Harness, credentials


def status(fake: FakeK3Cloud, number: str) -> str:
    (row,) = [r for r in fake.records("BD_Customer") if r["FNumber"] == number]
    return str(row["FDocumentStatus"])


def test_document_lifecycle(harness: Harness, fake: FakeK3Cloud) -> None:
    client = harness.client(fake)
    saved = harness.call(client, "save", "BD_Customer", Customer("L1", "life"))
    assert saved == SavedRow(0, saved.id, "L1")
    assert status(fake, "L1") == "A"
    assert harness.call(client, "submit", "BD_Customer", numbers=["L1"]) == [saved]
    assert status(fake, "L1") == "B"
    assert harness.call(client, "audit", "BD_Customer", ids=[saved.id]) == [saved]
    assert status(fake, "L1") == "C"
    with pytest.raises(ValidationFailedError, match="不允许删除") as info:
        harness.call(client, "delete", "BD_Customer", numbers=["L1"])
    assert info.value.errors[0].d_index == 0
    assert harness.call(client, "unaudit", "BD_Customer", numbers=["L1"]) == [saved]
    assert status(fake, "L1") == "D"
    document = harness.call(client, "view", "BD_Customer", number="L1")
    assert (document["FName"], document["Id"]) == ("life", saved.id)
    assert harness.call(client, "delete", "BD_Customer", numbers=["L1"]) == [saved]
    assert fake.records("BD_Customer") == []
    with pytest.raises(DataNotFoundError):
        harness.call(client, "view", "BD_Customer", id=saved.id)


def test_operation_bodies(fake: FakeK3Cloud) -> None:
    fake.seed("BD_Customer", [{"FNumber": "A", "FName": "a"}, {"FNumber": "B", "FName": "b"}])
    client = Harness("sync").client(fake)
    with pytest.raises(ValidationFailedError):  # audited rows cannot be submitted
        client.submit("BD_Customer", numbers=["A"], ids=[1, 2], network_ctrl=True)
    sent = json.loads(fake.received[-1].content)
    assert sent == {
        "formid": "BD_Customer",
        "data": {"Numbers": ["A"], "Ids": "1,2", "NetworkCtrl": True},
    }
    with pytest.raises(ValueError, match="give numbers= or ids="):
        client.audit("BD_Customer")
    with pytest.raises(ValueError, match="exactly one of number= or id="):
        client.view("BD_Customer", number="A", id=1)


def test_save_refused_raises_with_the_row_error(harness: Harness, fake: FakeK3Cloud) -> None:
    fake.seed("BD_Customer", [{"FNumber": "S1", "FName": "x"}])
    with pytest.raises(ValidationFailedError) as info:
        harness.call(harness.client(fake), "save", "BD_Customer", {"FNumber": "S1", "FName": "y"})
    assert info.value.msg_code == 11
    assert info.value.message == DUPLICATE_NUMBER_MESSAGE.format(number="S1")
    assert info.value.errors[0].field_name == "FNumber"


def test_save_is_a_write_not_retried_after_a_timeout(harness: Harness, fake: FakeK3Cloud) -> None:
    fake.inject(Fault.reply_timeout(), path="Save")
    with pytest.raises(K3CloudTimeoutError) as info:
        harness.call(harness.client(fake), "save", "BD_Customer", Customer("T1", "t"))
    assert info.value.reached_server is True
    assert fake.call_count("Save") == 1
    assert len(fake.records("BD_Customer")) == 1  # it was saved; the reply was lost


def test_view_is_a_read_retried_after_a_timeout(harness: Harness, fake: FakeK3Cloud) -> None:
    fake.seed("BD_Customer", [{"FNumber": "V1", "FName": "v"}])
    fake.inject(Fault.timeout(), path="View")
    document = harness.call(harness.client(fake), "view", "BD_Customer", number="V1")
    assert document["FNumber"] == "V1"
    assert fake.call_count("View") == 2


def test_execute_escape_hatch(harness: Harness, fake: FakeK3Cloud) -> None:
    client = harness.client(fake)
    reply = harness.call(
        client,
        "execute",
        "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Save",
        {"formid": "BD_Customer", "data": {"Model": {"FNumber": "E1", "FName": "e"}}},
    )
    assert reply["Result"]["Number"] == "E1"
    rows = harness.call(
        client,
        "execute",
        "ExecuteBillQuery",
        {"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber"}},
        idempotent=True,
    )
    assert rows == [["E1"]]
    with pytest.raises(ValidationFailedError):
        harness.call(
            client,
            "execute",
            "Save",
            {"formid": "BD_Customer", "data": {"Model": {"FNumber": "E1", "FName": "e"}}},
        )


def test_rejected_signature_is_an_authentication_error_not_retried(harness: Harness) -> None:
    fake = FakeK3Cloud(
        acct_id="another-account",
        user_name=credentials()["user_name"],
        app_id=credentials()["app_id"],
        app_secret=credentials()["app_secret"],
    )
    client = harness.client(fake)
    with pytest.raises(K3CloudAuthenticationError) as info:
        harness.call(client, "execute_bill_query", "BD_Customer", "FNumber")
    assert isinstance(info.value, K3CloudHTTPError)
    assert info.value.status_code == 500
    assert info.value.body == "Fail to verify thirty passport"
    assert "check acct_id, user_name, app_id, app_secret, clock" in str(info.value)
    assert fake.request_count == 1
    assert fake.auth_failures == [
        "X-Kd-Appdata names '5db25ac8d2b819'/'webapi', not this account and user"
    ]


def test_client_needs_credentials_and_a_valid_url() -> None:
    from k3cloud_client import K3CloudClient

    with pytest.raises(K3CloudConfigError, match="no credentials"):
        K3CloudClient("http://h/k3cloud/", acct_id="a", user_name="u")
    with pytest.raises(K3CloudConfigError, match="app_secret is missing"):
        K3CloudClient("http://h/k3cloud/", acct_id="a", user_name="u", app_id="1_x")
    with pytest.raises(K3CloudConfigError, match="server_url: base URL must be an absolute"):
        K3CloudClient("h/k3cloud", **credentials())
    with pytest.raises(K3CloudConfigError, match="app_id must look like"):
        K3CloudClient("http://h/k3cloud/", **credentials(app_id="12345_short"))


def test_server_url_path_is_kept(fake: FakeK3Cloud) -> None:
    from k3cloud_client import K3CloudClient

    client = K3CloudClient(
        "http://k3.test/K3Cloud",
        **credentials(),
        http_client=httpx.Client(transport=fake.transport()),
    )
    client.execute_bill_query("BD_Customer", "FNumber")
    assert fake.received[-1].url.path == (
        "/K3Cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery.common.kdsvc"
    )
    assert fake.auth_failures == []
