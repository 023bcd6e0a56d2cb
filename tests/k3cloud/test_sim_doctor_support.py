"""What ``FakeK3Cloud`` shows a first-run check (``huke-k3 doctor``): a user denied a right on a
form (MsgCode 2, as K/3 answers it, and the typed error the clients raise for it), and the
organisation form ``ORG_Organizations`` answering queries from the fake's organisations."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from k3cloud_client import (
    BatchSaveError,
    Customer,
    FieldNotFoundError,
    OperationNotAllowedError,
    PermissionDeniedError,
    SignedHeaderAuth,
    filters,
)
from k3cloud_client.testing import (
    NO_PERMISSION_MESSAGE,
    ORG_FORM_ID,
    PERMISSIONS,
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
    customer_rows,
)

from .conftest import Harness

ORG_KEYS = ["FOrgID", "FNumber", "FName"]
QUERY_DENIED = NO_PERMISSION_MESSAGE.format(form="BD_Customer", right="查看")
SAVE_DENIED = NO_PERMISSION_MESSAGE.format(form="BD_Customer", right="保存")


def orgs_fake() -> FakeK3Cloud:
    return FakeK3Cloud(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
        organizations={1: "100", 7: "200", 9: "300"},
    )


def wire(fake: FakeK3Cloud, operation: str, data: dict[str, Any], form_id: str) -> Any:
    """``operation``'s decoded reply to a signed request, straight off the fake."""
    auth = SignedHeaderAuth(TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, TEST_APP_SECRET)
    path = (
        "http://k3.test/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService."
        f"{operation}.common.kdsvc"
    )
    with httpx.Client(transport=fake.transport(), auth=auth) as http:
        response = http.post(path, json={"formid": form_id, "data": data})
    assert response.status_code == 200
    return response.json()


# -- permissions -----------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["ExecuteBillQuery", "BillQuery"])
def test_a_denied_query_answers_as_k3_answers_a_query_error(
    fake: FakeK3Cloud, operation: str
) -> None:
    fake.seed("BD_Customer", customer_rows(2))
    fake.deny("BD_Customer", "query")
    data = {"FormId": "BD_Customer", "FieldKeys": "FNumber,FNope"}  # refused before the keys
    reply = wire(fake, operation, data, "BD_Customer")
    status = reply[0][0]["Result"]["ResponseStatus"]
    assert len(reply) == 1
    assert len(reply[0]) == 1
    assert {k: status[k] for k in ("IsSuccess", "MsgCode", "ErrorCode", "Errors")} == {
        "IsSuccess": False,
        "MsgCode": 2,
        "ErrorCode": 500,
        "Errors": [{"FieldName": "", "Message": QUERY_DENIED, "DIndex": 0}],
    }


def test_the_clients_raise_permission_denied_for_a_denied_query(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    fake.seed("BD_Customer", customer_rows(3))
    fake.deny("bd_customer", "query")  # form ids in any case, as K/3 takes them
    client = harness.client(fake)
    for method, operation in (
        ("execute_bill_query", "ExecuteBillQuery"),
        ("bill_query", "BillQuery"),
    ):
        with pytest.raises(PermissionDeniedError) as info:
            harness.call(client, method, "BD_Customer", "FNumber")
        assert info.value.msg_code == 2
        assert info.value.message == QUERY_DENIED
        assert info.value.operation == f"{operation} BD_Customer"
    with pytest.raises(PermissionDeniedError):
        harness.collect(client, "iter_bill_query", "BD_Customer", "FNumber")
    with pytest.raises(PermissionDeniedError):
        harness.call(client, "view", "BD_Customer", number="C00001")
    # Other rights and other forms are untouched.
    saved = harness.call(client, "save", "BD_Customer", Customer(number="N1", name="New"))
    assert saved.number == "N1"
    assert harness.call(client, "execute_bill_query", "BD_Supplier", "FNumber") == []
    assert fake.denied("BD_CUSTOMER") == {"query"}


def test_a_denied_save_fails_the_whole_call_with_msg_code_2(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    fake.deny("BD_Customer", "save")
    for operation, data in (
        ("Save", {"Model": customer_rows(1)[0]}),
        ("BatchSave", {"Model": customer_rows(2)}),
    ):
        status = wire(fake, operation, data, "BD_Customer")["Result"]["ResponseStatus"]
        assert (status["IsSuccess"], status["MsgCode"], status["SuccessEntitys"]) == (False, 2, [])
        assert status["Errors"] == [{"FieldName": "", "Message": SAVE_DENIED}]
    client = harness.client(fake)
    with pytest.raises(PermissionDeniedError) as info:
        harness.call(client, "save", "BD_Customer", customer_rows(1)[0])
    assert (info.value.msg_code, info.value.message) == (2, SAVE_DENIED)
    result = harness.call(client, "batch_save", "BD_Customer", customer_rows(3))
    assert [(row.index, row.msg_code, row.uncertain) for row in result.failed] == [
        (0, 2, False),
        (1, 2, False),
        (2, 2, False),
    ]
    assert result.failed[0].message.endswith(f"(MsgCode 2): {SAVE_DENIED}")
    with pytest.raises(BatchSaveError):
        result.raise_for_failures()
    assert fake.records("BD_Customer") == []
    # Reading stays allowed.
    assert harness.call(client, "execute_bill_query", "BD_Customer", "FNumber") == []


def test_allow_gives_back_what_deny_took(harness: Harness, fake: FakeK3Cloud) -> None:
    fake.deny("BD_Customer", "query", "save")
    fake.allow("BD_Customer", "save")
    assert fake.denied("BD_Customer") == {"query"}
    client = harness.client(fake)
    harness.call(client, "save", "BD_Customer", customer_rows(1)[0])
    fake.allow("BD_Customer", "query")
    assert harness.call(client, "execute_bill_query", "BD_Customer", "FNumber") == [["C00001"]]
    assert fake.denied("BD_Customer") == set()


@pytest.mark.parametrize(
    ("permission", "method", "kwargs"),
    [
        ("submit", "submit", {"numbers": ["C00001"]}),
        ("audit", "audit", {"numbers": ["C00001"]}),
        ("audit", "unaudit", {"numbers": ["C00001"]}),
        ("delete", "delete", {"numbers": ["C00001"]}),
        ("allocate", "allocate", {"ids": [100001], "to_orgs": [1]}),
    ],
)
def test_each_permission_guards_its_operations(
    harness: Harness, fake: FakeK3Cloud, permission: str, method: str, kwargs: dict[str, Any]
) -> None:
    fake.seed("BD_Customer", customer_rows(1))
    fake.deny("BD_Customer", permission)
    with pytest.raises(PermissionDeniedError) as info:
        harness.call(harness.client(fake), method, "BD_Customer", **kwargs)
    assert "权限" in info.value.message
    assert fake.records("BD_Customer")[0]["FDocumentStatus"] == "C"  # untouched


def test_deny_names_what_it_takes(fake: FakeK3Cloud) -> None:
    assert set(PERMISSIONS) == {"query", "save", "submit", "audit", "delete", "allocate"}
    with pytest.raises(ValueError, match=r"unknown permission \['read'\]: known are query"):
        fake.deny("BD_Customer", "read")
    with pytest.raises(ValueError, match="at least one permission"):
        fake.deny("BD_Customer")
    with pytest.raises(ValueError, match="form_id"):
        fake.allow("", "query")


# -- the organisation form -------------------------------------------------------------------


def test_org_form_lists_the_organisations(harness: Harness) -> None:
    fake = orgs_fake()
    fake.add_organization(12, "400", name="华东销售公司")
    client = harness.client(fake)
    rows = harness.call(client, "execute_bill_query", ORG_FORM_ID, ORG_KEYS)
    assert rows == [
        [1, "100", "组织100"],
        [7, "200", "组织200"],
        [9, "300", "组织300"],
        [12, "400", "华东销售公司"],
    ]
    objects = harness.call(client, "bill_query", ORG_FORM_ID, "FNumber,FOrgID")
    assert objects[0] == {"FNumber": "100", "FOrgID": 1}
    assert fake.records(ORG_FORM_ID)[-1] == {
        "FOrgID": 12,
        "FNumber": "400",
        "FName": "华东销售公司",
    }


def test_org_form_filters_and_pages_like_any_form(harness: Harness) -> None:
    fake = orgs_fake()
    client = harness.client(fake)
    one = harness.call(
        client, "execute_bill_query", "org_organizations", "FOrgID", filter_string="FNumber = '100'"
    )
    assert one == [[1]]
    picked = harness.call(
        client,
        "bill_query",
        ORG_FORM_ID,
        "FNumber",
        filter_string=filters.in_("FNumber", ["300", "999", "100"]),
        order_string="FNumber desc",
    )
    assert picked == [{"FNumber": "300"}, {"FNumber": "100"}]
    assert (
        harness.call(
            client, "execute_bill_query", ORG_FORM_ID, "FNumber", filter_string="FNumber = '999'"
        )
        == []
    )
    paged = harness.collect(
        client, "iter_bill_query", ORG_FORM_ID, "FNumber", order_string="FOrgID", page_size=2
    )
    assert paged == [["100"], ["200"], ["300"]]
    assert fake.call_count("ExecuteBillQuery") == 4  # 1 + 1 + 2 pages


def test_org_form_knows_only_its_fields_and_customers_point_at_its_ids(harness: Harness) -> None:
    fake = orgs_fake()
    fake.seed("BD_Customer", [{**customer_rows(1)[0], "FUseOrgId": {"FNumber": "200"}}])
    client = harness.client(fake)
    with pytest.raises(FieldNotFoundError, match="FDocumentStatus"):
        harness.call(client, "execute_bill_query", ORG_FORM_ID, "FNumber,FDocumentStatus")
    ((use_org,),) = harness.call(client, "execute_bill_query", "BD_Customer", "FUseOrgId")
    rows = harness.call(
        client, "execute_bill_query", ORG_FORM_ID, "FNumber", filter_string=f"FOrgID = {use_org}"
    )
    assert rows == [["200"]]


def test_org_form_is_read_only(harness: Harness) -> None:
    fake = orgs_fake()
    client = harness.client(fake)
    with pytest.raises(OperationNotAllowedError) as info:
        harness.call(client, "save", ORG_FORM_ID, {"FNumber": "500", "FName": "新组织"})
    assert info.value.msg_code == 12
    result = harness.call(client, "batch_save", ORG_FORM_ID, [{"FNumber": "500"}])
    assert [row.msg_code for row in result.failed] == [12]
    with pytest.raises(OperationNotAllowedError):
        harness.call(client, "delete", ORG_FORM_ID, numbers=["100"])
    with pytest.raises(ValueError, match="read-only"):
        fake.seed(ORG_FORM_ID, [{"FNumber": "500"}])
    assert fake.organizations == {1: "100", 7: "200", 9: "300"}
    assert [r["FNumber"] for r in fake.records(ORG_FORM_ID)] == ["100", "200", "300"]
    assert harness.call(client, "view", ORG_FORM_ID, number="200")["FOrgID"] == 7


def test_org_form_can_be_denied_too(harness: Harness) -> None:
    fake = orgs_fake()
    fake.deny(ORG_FORM_ID, "query")
    with pytest.raises(PermissionDeniedError) as info:
        harness.call(harness.client(fake), "execute_bill_query", ORG_FORM_ID, "FNumber")
    assert info.value.message == NO_PERMISSION_MESSAGE.format(form=ORG_FORM_ID, right="查看")


def test_add_organization_checks_the_name() -> None:
    fake = orgs_fake()
    with pytest.raises(ValueError, match="names are non-empty text"):
        fake.add_organization(20, "500", name="")
    with pytest.raises(ValueError, match="must differ"):
        fake.add_organization(1, "600")
    assert fake.organizations == {1: "100", 7: "200", 9: "300"}
