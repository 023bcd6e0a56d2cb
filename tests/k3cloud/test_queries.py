"""ExecuteBillQuery / BillQuery: bodies, paging, the error dressed as a row, safe filters."""

from __future__ import annotations

import json

import httpx
import pytest

from _huke_k3_core.testing import Fault
from k3cloud_client import (
    FieldNotFoundError,
    K3CloudAPIError,
    K3CloudError,
    K3CloudResponseError,
    filters,
)
from k3cloud_client.testing import FakeK3Cloud, customer_rows

from .conftest import Harness

INJECTION = "x' or '1'='1"


@pytest.fixture
def seeded(fake: FakeK3Cloud) -> FakeK3Cloud:
    fake.seed("BD_Customer", customer_rows(25))
    fake.seed("BD_Customer", [{"FNumber": INJECTION, "FName": "tricky"}])
    return fake


def test_execute_bill_query_body_and_rows(harness: Harness, seeded: FakeK3Cloud) -> None:
    client = harness.client(seeded)
    rows = harness.call(
        client,
        "execute_bill_query",
        "BD_Customer",
        ["FNumber", "FName", "FCreateOrgId.FNumber"],
        filter_string=filters.in_("FNumber", ["C00003", "C00001"]),
        order_string="FNumber desc",
        limit=10,
    )
    assert rows == [["C00003", "Customer 3", "100"], ["C00001", "Customer 1", "100"]]
    (request,) = [r for r in seeded.received if "ExecuteBillQuery" in r.url.path]
    assert json.loads(request.content) == {
        "data": {
            "FormId": "BD_Customer",
            "FieldKeys": "FNumber,FName,FCreateOrgId.FNumber",
            "FilterString": "FNumber in ('C00003','C00001')",
            "OrderString": "FNumber desc",
            "TopRowCount": 0,
            "StartRow": 0,
            "Limit": 10,
        }
    }


def test_field_keys_as_text_are_normalised(harness: Harness, seeded: FakeK3Cloud) -> None:
    rows = harness.call(
        harness.client(seeded), "execute_bill_query", "BD_Customer", " FNumber , FName ", limit=1
    )
    assert rows == [["C00001", "Customer 1"]]


@pytest.mark.parametrize("keys", ["", ",", [], ["FNumber", ""], "FNumber;drop"])
def test_bad_field_keys_are_refused_before_sending(
    harness: Harness, fake: FakeK3Cloud, keys: object
) -> None:
    with pytest.raises(ValueError):
        harness.call(harness.client(fake), "execute_bill_query", "BD_Customer", keys)
    assert fake.request_count == 0


def test_embedded_query_error_is_raised_not_returned(harness: Harness, seeded: FakeK3Cloud) -> None:
    with pytest.raises(FieldNotFoundError) as info:
        harness.call(harness.client(seeded), "execute_bill_query", "BD_Customer", "FNumber,FNope")
    assert info.value.msg_code == 9
    assert info.value.message == "元数据中标识为FNope的字段不存在"
    assert info.value.errors[0].field_name == "FNope"
    assert str(info.value) == (
        "ExecuteBillQuery BD_Customer failed (MsgCode 9): 元数据中标识为FNope的字段不存在"
    )


def test_a_single_column_error_row_is_not_mistaken_for_data(harness: Harness) -> None:
    # A naive parser would return this as one row of one column.
    body = [
        [
            {
                "Result": {
                    "ResponseStatus": {
                        "IsSuccess": False,
                        "MsgCode": 4,
                        "Errors": [{"Message": "boom"}],
                    }
                }
            }
        ]
    ]
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    with pytest.raises(K3CloudAPIError, match=r"MsgCode 4\): boom") as info:
        harness.call(
            harness.client(transport=transport), "execute_bill_query", "BD_Customer", "FNumber"
        )
    assert type(info.value) is K3CloudAPIError


@pytest.mark.parametrize(
    "body",
    [{"rows": []}, [1, 2], [{"a": 1}], "text"],
)
def test_unexpected_query_shapes_are_response_errors(harness: Harness, body: object) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    with pytest.raises(K3CloudResponseError, match="answered, not a list of rows"):
        harness.call(
            harness.client(transport=transport), "execute_bill_query", "BD_Customer", "FNumber"
        )


def test_iter_bill_query_pages_until_a_short_page(harness: Harness, seeded: FakeK3Cloud) -> None:
    rows = harness.collect(
        harness.client(seeded),
        "iter_bill_query",
        "BD_Customer",
        "FNumber",
        page_size=10,
        order_string="FNumber",
    )
    assert [r[0] for r in rows] == [f"C{n:05d}" for n in range(1, 26)] + [INJECTION]
    starts = [
        (json.loads(r.content)["data"]["StartRow"], json.loads(r.content)["data"]["Limit"])
        for r in seeded.received
    ]
    assert starts == [(0, 10), (10, 10), (20, 10)]


def test_iter_bill_query_stops_on_an_empty_page_after_full_ones(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    fake.seed("BD_Customer", customer_rows(20))
    rows = harness.collect(
        harness.client(fake), "iter_bill_query", "BD_Customer", "FNumber", page_size=10
    )
    assert len(rows) == 20
    assert fake.call_count("ExecuteBillQuery") == 3


def test_iter_bill_query_is_bounded(harness: Harness) -> None:
    # A server that ignores StartRow answers full pages forever.
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=[["A"]] * 5))
    with pytest.raises(K3CloudError, match="full pages 3 times"):
        harness.collect(
            harness.client(transport=transport),
            "iter_bill_query",
            "BD_Customer",
            "FNumber",
            page_size=5,
            max_pages=3,
        )


def test_top_row_count_and_start_row(harness: Harness, seeded: FakeK3Cloud) -> None:
    client = harness.client(seeded)
    rows = harness.call(client, "execute_bill_query", "BD_Customer", "FNumber", top_row_count=3)
    assert rows == [["C00001"], ["C00002"], ["C00003"]]
    rows = harness.call(
        client, "execute_bill_query", "BD_Customer", "FNumber", start_row=24, limit=5
    )
    assert rows == [["C00025"], [INJECTION]]


def test_bill_query_returns_objects(harness: Harness, seeded: FakeK3Cloud) -> None:
    objects = harness.call(
        harness.client(seeded),
        "bill_query",
        "BD_Customer",
        "FNumber,FName",
        filter_string=filters.eq("FNumber", "C00002"),
    )
    assert objects == [{"FNumber": "C00002", "FName": "Customer 2"}]
    assert "BillQuery.common.kdsvc" in seeded.received[-1].url.path


def test_queries_are_retried_after_a_timeout(harness: Harness, seeded: FakeK3Cloud) -> None:
    seeded.inject(Fault.timeout(), path="ExecuteBillQuery")
    seeded.inject_rate_limit(path="ExecuteBillQuery")
    rows = harness.call(
        harness.client(seeded), "execute_bill_query", "BD_Customer", "FNumber", limit=1
    )
    assert rows == [["C00001"]]
    assert seeded.call_count("ExecuteBillQuery") == 3


def test_quoted_injection_finds_the_exact_row_or_nothing(
    harness: Harness, seeded: FakeK3Cloud
) -> None:
    client = harness.client(seeded)
    exact = harness.call(
        client,
        "execute_bill_query",
        "BD_Customer",
        "FName",
        filter_string=filters.eq("FNumber", INJECTION),
    )
    assert exact == [["tricky"]]
    nothing = harness.call(
        client,
        "execute_bill_query",
        "BD_Customer",
        "FName",
        filter_string=filters.in_("FNumber", ["nope' or '1'='1"]),
    )
    assert nothing == []
    # What the quoting prevents: pasted in raw, the value matches every row.
    raw = harness.call(
        client,
        "execute_bill_query",
        "BD_Customer",
        "FName",
        filter_string="FNumber = 'nope' or '1'='1'",
    )
    assert len(raw) == 26
