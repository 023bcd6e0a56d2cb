"""Templates: ``{{wireField}}`` substitution, absent fields, and nothing ever evaluated."""

from __future__ import annotations

import pytest

from huke_k3_bridge import SCHEME, SCHEME_COLLECTION, Lookup, Template, TemplateError
from huke_k3_bridge._template import resolve

TRADE = {
    "tid": "HK0001",
    "buyerNick": "张三",
    "buyerCid": "wm01",
    "payment": 99.5,
    "num": 2,
    "shop": {"name": "旗舰店"},
    "nothing": None,
    "tags": ["a"],
    "paid": True,
}


def test_render_fills_placeholders_from_wire_fields() -> None:
    assert Template("{{buyerNick}}").render(TRADE) == "张三"
    assert Template("VIP {{ buyerNick }} ({{buyerCid}})").render(TRADE) == "VIP 张三 (wm01)"
    assert Template("{{payment}} x {{num}}").render(TRADE) == "99.5 x 2"
    assert Template("{{shop.name}}").render(TRADE) == "旗舰店"
    assert Template("plain").render(TRADE) == "plain"


def test_template_lists_its_fields() -> None:
    assert Template("{{a}}-{{ b }}").fields == ("a", "b")
    assert Template("none").fields == ()


def test_null_renders_empty() -> None:
    assert Template("[{{nothing}}]").render(TRADE) == "[]"


def test_absent_field_is_a_clear_error_naming_field_target_and_trade() -> None:
    with pytest.raises(TemplateError) as caught:
        Template("{{buyerNickname}}").render(TRADE, target="FName")
    error = caught.value
    assert error.field == "buyerNickname"
    assert error.target == "FName"
    message = str(error)
    assert "'buyerNickname'" in message
    assert "for FName" in message
    assert "trade 'HK0001'" in message
    assert "buyerCid, buyerNick" in message  # what the trade does have


@pytest.mark.parametrize("field", ["tags", "paid", "shop"])
def test_non_text_field_is_an_error(field: str) -> None:
    with pytest.raises(TemplateError, match=f"field '{field}' of trade 'HK0001' is"):
        Template("x{{" + field + "}}").render(TRADE)


@pytest.mark.parametrize(
    "text",
    [
        "{{__import__('os')}}",
        "{{__import__('os').system('echo pwned')}}",
        "{{ trade.__class__ }}",
        "{{1+1}}",
        "{{buyerNick.__len__}}",
    ],
)
def test_no_eval_only_field_names(text: str) -> None:
    with pytest.raises(TemplateError, match="does not have"):
        Template(text).render(TRADE)


def test_lookup_resolves_through_a_mapping_or_a_callable() -> None:
    spec = Lookup("coll", key="{{buyerCid}}")
    assert resolve(spec, TRADE, target="FDescription", lookups={"coll": {"wm01": "U-1"}}) == "U-1"
    assert (
        resolve(spec, TRADE, target="FDescription", lookups={"coll": lambda k: k + "!"}) == "wm01!"
    )
    assert resolve(spec, TRADE, target="FDescription", lookups={"coll": {}}) is None
    assert resolve(spec, TRADE, target="FDescription") is None


def test_resolve_constants_templates_and_callables() -> None:
    assert resolve("100", TRADE, target="FUseOrgId") == "100"
    assert resolve(True, TRADE, target="X") is True
    assert resolve(None, TRADE, target="X") is None
    assert resolve(lambda t: t["num"] * 2, TRADE, target="X") == 4
    assert resolve("{{num}}", TRADE, target="X") == "2"


def test_scheme_holds_the_table() -> None:
    assert dict(SCHEME) == {
        "FName": "{{buyerNick}}",
        "FNumber": "{{buyerCid}}",
        "FCreateOrgId": "100",
        "FUseOrgId": "100",
        "FDescription": Lookup(
            "dd359ae0-f1c0-3d0a-b38e-df1d6bf1f756", key="{{buyerCid}}", field="唯一ID", where="cid"
        ),
        "FormId": "BD_Customer",
        "Operation": "BatchSave",
        "IsAutoSubmitAndAudit": True,
        "IsVerifyBaseDataField": False,
    }
    assert SCHEME_COLLECTION == "dd359ae0-f1c0-3d0a-b38e-df1d6bf1f756"
    with pytest.raises(TypeError):
        SCHEME["FName"] = "x"  # type: ignore[index]
