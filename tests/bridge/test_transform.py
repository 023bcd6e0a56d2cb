"""The scheme's mapping, its overrides, composition and the declarative table."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from huke_client import Trade
from huke_k3_bridge import (
    SCHEME,
    SCHEME_COLLECTION,
    CustomerTransform,
    SkipTrade,
    TemplateError,
    trade_to_customer,
)
from k3cloud_client import Customer

WIRE = {
    "tid": "HK0000000001",
    "source": "2",
    "buyerNick": "张三🌸",
    "buyerCid": "wm00000000a1",
    "createTime": 1732700000000,
    "payment": "128.00",
    "title": "有机绿茶礼盒 250g",
}


def trade(**changes: Any) -> Trade:
    wire = {**WIRE, **changes}
    return Trade.from_wire({k: v for k, v in wire.items() if v is not ...})


def test_scheme_mapping_exact_model() -> None:
    customer = trade_to_customer(trade())
    assert customer.to_wire() == {
        "FNumber": "wm00000000a1",
        "FName": "张三🌸",
        "FCreateOrgId": {"FNumber": "100"},
        "FUseOrgId": {"FNumber": "100"},
    }


def test_description_lookup_mapping_and_callable() -> None:
    ids = {"wm00000000a1": "UID-42"}
    assert CustomerTransform(description=ids)(trade()).to_wire()["FDescription"] == "UID-42"
    by_call = CustomerTransform(description=lambda cid: f"U-{cid[-2:]}")
    assert by_call(trade()).description == "U-a1"
    assert CustomerTransform(description={})(trade()).description is None


def test_plain_dicts_work_too() -> None:
    assert trade_to_customer(dict(WIRE)).number == "wm00000000a1"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"buyerCid": ...}, "trade has no buyerCid"),
        ({"buyerCid": None}, "buyerCid is null"),
        ({"buyerCid": "   "}, "buyerCid is blank"),
        ({"buyerCid": ""}, "buyerCid is blank"),
    ],
)
def test_trade_without_cid_is_skipped_with_reason(changes: dict[str, Any], reason: str) -> None:
    wire = {k: v for k, v in {**WIRE, **changes}.items() if v is not ...}
    with pytest.raises(SkipTrade) as caught:
        trade_to_customer(wire)
    assert caught.value.reason == reason


@pytest.mark.parametrize("bad", [["wm1"], {"id": 1}, True])
def test_non_text_cid_is_skipped(bad: Any) -> None:
    with pytest.raises(SkipTrade, match=f"buyerCid is {type(bad).__name__}"):
        trade_to_customer({**WIRE, "buyerCid": bad})


def test_numeric_cid_becomes_text_and_is_stripped() -> None:
    assert trade_to_customer({**WIRE, "buyerCid": 12345}).number == "12345"
    assert trade_to_customer({**WIRE, "buyerCid": "  wm9 "}).number == "wm9"


@pytest.mark.parametrize("nick", [None, "", "  ", ...])
def test_name_falls_back_to_cid(nick: Any) -> None:
    wire = {k: v for k, v in {**WIRE, "buyerNick": nick}.items() if v is not ...}
    assert trade_to_customer(wire).name == "wm00000000a1"


def test_name_fallback_configurable() -> None:
    wire = {**WIRE, "buyerNick": ""}
    assert CustomerTransform(name_fallback="客户{{buyerCid}}")(wire).name == "客户wm00000000a1"
    assert CustomerTransform(name_fallback=lambda t: "匿名")(wire).name == "匿名"
    with pytest.raises(SkipTrade, match="no name fallback"):
        CustomerTransform(name_fallback=None)(wire)


def test_orgs_configurable() -> None:
    model = CustomerTransform(create_org="200", use_org="300")(trade()).to_wire()
    assert model["FCreateOrgId"] == {"FNumber": "200"}
    assert model["FUseOrgId"] == {"FNumber": "300"}


def test_with_fields_overrides_one_field_in_one_line() -> None:
    base = CustomerTransform()
    custom = base.with_fields(FDescription=lambda t: f"paid {t['payment']}")
    assert custom(trade()).description == "paid 128.00"
    assert base(trade()).description is None  # immutable: the original is unchanged
    titled = base.with_fields(FName="{{buyerNick}}（{{title}}）")
    assert titled(trade()).name == "张三🌸（有机绿茶礼盒 250g）"
    assert base.with_fields(FShortName="{{buyerNick}}")(trade()).to_wire()["FShortName"] == "张三🌸"
    assert base.with_fields(FDescription=None)(trade()).description is None


def test_with_fields_absent_template_field_is_an_error() -> None:
    broken = CustomerTransform().with_fields(FDescription="{{noSuchField}}")
    with pytest.raises(TemplateError, match="'noSuchField'"):
        broken(trade())


def test_reserved_and_call_keys_rejected() -> None:
    with pytest.raises(ValueError, match="FCUSTID is set by the bridge"):
        CustomerTransform().with_fields(FCUSTID=1)
    with pytest.raises(ValueError, match="describes the call"):
        CustomerTransform().with_fields(FormId="BD_Supplier")


def test_then_composes_steps_in_order() -> None:
    def upper(t: Any, c: Customer) -> Customer:
        return attrs.evolve(c, name=c.name.upper())

    def tag(t: Any, c: Customer) -> Customer:
        return attrs.evolve(c, description=f"{c.name}/{t['tid']}")

    transform = CustomerTransform().then(upper).then(tag)
    customer = transform({**WIRE, "buyerNick": "lily"})
    assert customer.name == "LILY"
    assert customer.description == "LILY/HK0000000001"
    assert transform.steps == (upper, tag)


def test_step_returning_something_else_is_an_error() -> None:
    transform = CustomerTransform().then(lambda t, c: {"FName": "x"})  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="returned dict, not a Customer"):
        transform(trade())


def test_from_template_scheme_equals_default() -> None:
    transform = CustomerTransform.from_template(SCHEME)
    assert transform(trade()) == trade_to_customer(trade())
    assert dict(transform.save_flags) == {
        "IsAutoSubmitAndAudit": True,
        "IsVerifyBaseDataField": False,
    }


def test_from_template_with_lookup_source_and_callables() -> None:
    table = {**SCHEME, "FName": lambda t: t["buyerNick"] + "!", "FUseOrgId": "200"}
    transform = CustomerTransform.from_template(
        table, lookups={SCHEME_COLLECTION: {"wm00000000a1": "唯一-7"}}
    )
    model = transform(trade()).to_wire()
    assert model == {
        "FNumber": "wm00000000a1",
        "FName": "张三🌸!",
        "FCreateOrgId": {"FNumber": "100"},
        "FUseOrgId": {"FNumber": "200"},
        "FDescription": "唯一-7",
    }


def test_from_template_checks_call_rows() -> None:
    with pytest.raises(ValueError, match="BD_Customer"):
        CustomerTransform.from_template({**SCHEME, "FormId": "BD_Supplier"})
    with pytest.raises(ValueError, match="BatchSave"):
        CustomerTransform.from_template({**SCHEME, "Operation": "Save"})
    with pytest.raises(ValueError, match="True or False"):
        CustomerTransform.from_template({**SCHEME, "IsAutoSubmitAndAudit": "yes"})
    flags = CustomerTransform.from_template({**SCHEME, "IsAutoSubmitAndAudit": False}).save_flags
    assert flags["IsAutoSubmitAndAudit"] is False


def test_template_number_from_absent_field_skips() -> None:
    transform = CustomerTransform.from_template(
        {"FNumber": "{{memberNo}}", "FName": "{{buyerNick}}"}
    )
    with pytest.raises(SkipTrade, match="trade has no memberNo"):
        transform(trade())
    assert transform(trade(memberNo="M-1")).number == "M-1"


def test_transform_is_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        CustomerTransform().create_org = "200"  # type: ignore[misc]
