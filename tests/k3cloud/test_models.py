"""Customer <-> BD_Customer model objects, and the reply models."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k3cloud_client import Customer, ResponseStatus
from k3cloud_client.models import converter


def test_customer_model_object() -> None:
    assert Customer("C001", "Acme").to_wire() == {
        "FNumber": "C001",
        "FName": "Acme",
        "FCreateOrgId": {"FNumber": "100"},
        "FUseOrgId": {"FNumber": "100"},
    }
    full = Customer(
        "C002",
        "Beta",
        create_org="101",
        use_org=102,  # type: ignore[arg-type]
        description="VIP",
        id=100123,
        extra={"FShortName": "B", "FTEL": "123"},
    )
    assert converter.unstructure(full) == {
        "FNumber": "C002",
        "FName": "Beta",
        "FCreateOrgId": {"FNumber": "101"},
        "FUseOrgId": {"FNumber": "102"},
        "FDescription": "VIP",
        "FCUSTID": 100123,
        "FShortName": "B",
        "FTEL": "123",
    }


def test_customer_is_frozen_and_validated() -> None:
    customer = Customer("C1", "x")
    with pytest.raises(AttributeError):
        customer.number = "C2"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Customer(None, "x")  # type: ignore[arg-type]


def test_customer_from_wire_keeps_unknown_fields() -> None:
    model = {
        "FNumber": "C1",
        "FName": "x",
        "FCreateOrgId": {"FNumber": 100},
        "FCUSTID": 7,
        "FTEL": "1",
    }
    customer = Customer.from_wire(model)
    assert (customer.number, customer.create_org, customer.use_org, customer.id) == (
        "C1",
        "100",
        "100",
        7,
    )
    assert customer.extra == {"FTEL": "1"}
    assert customer.to_wire() == model


_text = st.text(max_size=8)
_org = st.one_of(_text, st.integers(min_value=0, max_value=999))


@given(
    st.fixed_dictionaries(
        {"FNumber": _text, "FName": _text},
        optional={
            "FCreateOrgId": st.builds(lambda n: {"FNumber": n}, _org),
            "FUseOrgId": st.builds(lambda n: {"FNumber": n}, _org),
            "FDescription": _text,
            "FCUSTID": st.integers(min_value=0, max_value=10**9),
            "FShortName": _text,
            "F_PAEZ_Extra": st.one_of(_text, st.integers(), st.none()),
        },
    )
)
def test_customer_round_trip_is_unchanged(model: dict[str, Any]) -> None:
    assert Customer.from_wire(model).to_wire() == model


def test_response_status_reads_the_reference_shape() -> None:
    status = converter.structure(
        {
            "ErrorCode": 500,
            "IsSuccess": False,
            "Errors": [{"FieldName": "FNumber", "Message": "dup", "DIndex": 0}],
            "SuccessEntitys": [
                {"Id": 100123, "Number": "C001", "DIndex": 1},
                {"Id": "a1b2", "Number": "X"},
            ],
            "SuccessMessages": [],
            "MsgCode": 11,
        },
        ResponseStatus,
    )
    assert (status.is_success, status.msg_code, status.error_code, status.message) == (
        False,
        11,
        500,
        "dup",
    )
    assert [(e.id, e.number, e.d_index) for e in status.success_entitys] == [
        (100123, "C001", 1),
        ("a1b2", "X", None),
    ]
    assert status["SuccessMessages"] == []
