"""Optional fields in templates (``{{field|default}}``), malformed templates refused where they
are written, and ``SkipTrade`` raised by a ``then`` step, in both engines."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huke_client.testing import fake_trade
from huke_k3_bridge import (
    CustomerTransform,
    Lookup,
    SkipTrade,
    Template,
    TemplateError,
)
from huke_k3_bridge._template import resolve
from huke_k3_bridge._transform import prepare_trade
from k3cloud_client import Customer

from .conftest import Stage

TRADE: dict[str, Any] = {
    "tid": "T1",
    "buyerNick": "张三",
    "buyerCid": "wm01",
    "shopName": "旗舰店",
    "nothing": None,
    "blank": "  ",
    "empty": "",
    "zero": 0,
    "tags": ["a"],
    "shop": {"name": "分店"},
}


def escape_default(text: str) -> str:
    """``text`` written as a placeholder's default, as docs/custom-transforms.md says to write
    it: ``\\``, ``|``, ``{`` and ``}`` escaped with a backslash."""
    return "".join("\\" + char if char in "\\|{}" else char for char in text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{shopName|未知店铺}}", "旗舰店"),  # present: the field, not the default
        ("{{absent|未知店铺}}", "未知店铺"),
        ("{{nothing|未知店铺}}", "未知店铺"),  # null is missing
        ("{{blank|未知店铺}}", "未知店铺"),  # so is blank text
        ("{{empty|未知店铺}}", "未知店铺"),
        ("{{zero|none}}", "0"),  # a number is a value, even 0
        ("{{absent|}}", ""),
        ("{{ absent | 未知 店铺 }}", "未知 店铺"),  # spaces around name and default dropped
        ("{{shop.name|-}} / {{shop.city|-}}", "分店 / -"),  # nested fields too
        ("[{{buyerNick}}@{{absent|无店}}] {{buyerCid|x}}!", "[张三@无店] wm01!"),
        (r"{{absent|a\|b}}", "a|b"),
        (r"{{absent|\}\}}}", "}}"),
        (r"{{absent|\{\{x\}\}}}", "{{x}}"),
        (r"{{absent|C:\\}}", "C:\\"),
        (r"{{absent|C:\temp}}", r"C:\temp"),  # a backslash before anything else is itself
        ("{{absent|a}b}}", "a}b"),  # a single brace needs no escape
    ],
)
def test_a_default_stands_in_for_a_missing_field(text: str, expected: str) -> None:
    assert Template(text).render(TRADE) == expected


def test_without_a_default_an_absent_field_still_fails_and_null_is_empty() -> None:
    with pytest.raises(TemplateError, match="names field 'absent'"):
        Template("{{absent}}").render(TRADE)
    assert Template("[{{nothing}}]").render(TRADE) == "[]"
    assert Template("[{{blank}}]").render(TRADE) == "[  ]"


@pytest.mark.parametrize("field", ["tags", "shop"])
def test_a_default_does_not_hide_a_value_that_is_not_text(field: str) -> None:
    with pytest.raises(TemplateError, match=f"field '{field}' of trade 'T1' is"):
        Template("{{" + field + "|x}}").render(TRADE)


def test_template_exposes_fields_and_defaults() -> None:
    template = Template("a {{x}} b {{ y | why }} {{z|}}")
    assert template.fields == ("x", "y", "z")
    assert template.defaults == (None, "why", "")
    assert template.single_field is None
    assert Template("{{buyerCid|}}").single_field == "buyerCid"


@pytest.mark.parametrize(
    ("text", "column", "problem"),
    [
        ("{{x|a|b}}", 6, "a second '|' in the default of 'x': write \\| for a '|'"),
        ("ab{{|d}}", 3, "the placeholder names no field"),
        ("{{ }}", 1, "the placeholder names no field"),
        ("{{x|{{y}}}}", 5, "'{{' in the default of 'x': a default is plain text"),
        ("x{{y|a\\}}", 2, "the placeholder of 'y' is not closed"),
    ],
)
def test_a_malformed_template_is_refused_naming_the_column(
    text: str, column: int, problem: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        Template(text)
    message = str(caught.value)
    assert f"column {column}: {problem}" in message
    assert repr(text) in message


def test_an_unclosed_opening_is_text_as_before() -> None:
    assert Template("{{buyerNick}} {{ no close").render(TRADE) == "张三 {{ no close"
    assert Template("a|b }} c").render(TRADE) == "a|b }} c"


@pytest.mark.parametrize(
    ("fields", "target"),
    [
        ({"FShortName": "{{x|a|b}}"}, "FShortName"),
        ({"FName": "{{|x}}"}, "FName"),
        ({"FDescription": Lookup("c", key="{{buyerCid|a|b}}")}, "FDescription"),
    ],
)
def test_a_transform_refuses_a_malformed_template_when_built(
    fields: dict[str, Any], target: str
) -> None:
    with pytest.raises(TemplateError, match=rf"^{target}: template ") as caught:
        CustomerTransform().with_fields(**fields)
    assert caught.value.target == target
    with pytest.raises(TemplateError, match=r"^FName: template "):
        CustomerTransform.from_template({"FName": "{{buyerNick|a|b}}", "FNumber": "{{buyerCid}}"})
    with pytest.raises(TemplateError, match=r"^name_fallback: template "):
        CustomerTransform(name_fallback="{{x|{{y}}}}")


def test_defaults_in_a_transform_keep_trades_that_lack_the_field() -> None:
    transform = CustomerTransform().with_fields(
        FShortName="{{shopName|未知店铺}}", FDescription="{{remark|}}"
    )
    wire = transform({"tid": "T", "buyerNick": "李四", "buyerCid": "wm9"}).to_wire()
    assert wire["FShortName"] == "未知店铺"
    assert wire["FDescription"] == ""
    assert transform(TRADE).to_wire()["FShortName"] == "旗舰店"
    # Before defaults, such a trade failed: the same mapping without them still does.
    strict = CustomerTransform().with_fields(FShortName="{{shopName}}")
    prepared = prepare_trade({"tid": "T", "buyerCid": "wm9"}, strict, None)
    assert prepared.failure is not None
    assert prepared.failure[0] == "failed"
    assert "'shopName'" in prepared.failure[1]


def test_a_number_default_counts_as_text_but_an_empty_one_skips() -> None:
    guest = CustomerTransform().with_fields(FNumber="HK-{{buyerCid|GUEST}}")
    assert guest({"tid": "T", "buyerNick": "游客"}).number == "HK-GUEST"
    empty = CustomerTransform().with_fields(FNumber="HK-{{buyerCid|}}")
    with pytest.raises(SkipTrade, match="buyerCid is missing or blank"):
        empty({"tid": "T", "buyerNick": "游客"})
    with pytest.raises(SkipTrade, match="trade has no buyerCid"):
        CustomerTransform().with_fields(FNumber="{{buyerCid|}}")({"tid": "T"})


def test_a_name_default_replaces_the_fallback() -> None:
    transform = CustomerTransform(name_fallback=None).with_fields(FName="{{buyerNick|无名}}")
    assert transform({"tid": "T", "buyerCid": "wm1", "buyerNick": ""}).name == "无名"


def test_lookup_keys_and_from_template_tables_take_defaults() -> None:
    spec = Lookup("coll", key="{{buyerCid|guest}}")
    found = resolve(spec, {"tid": "T"}, target="FDescription", lookups={"coll": {"guest": "G"}})
    assert found == "G"
    transform = CustomerTransform.from_template(
        {"FName": "{{buyerNick|匿名}}", "FNumber": "{{buyerCid}}", "FShortName": "{{a|b}}"}
    )
    assert transform({"buyerCid": "wm1"}).to_wire()["FShortName"] == "b"
    assert transform({"buyerCid": "wm1"}).name == "匿名"


# -- properties ---------------------------------------------------------------------------------

NAME = st.text(
    alphabet=st.characters(blacklist_characters="{}|\\", blacklist_categories=["Cs"]), min_size=1
).filter(lambda name: name.strip() == name and name != "")
LITERAL = st.text(max_size=8).filter(lambda text: "{{" not in text and "}}" not in text)
DEFAULT = st.one_of(st.none(), st.text(max_size=10))


@settings(max_examples=300, deadline=None)
@given(default=st.text())
def test_any_default_survives_escaping(default: str) -> None:
    """``escape_default`` is the inverse of reading a default: whatever the text (braces, bars,
    backslashes), the placeholder renders it (but for the spaces at its ends)."""
    template = Template("{{absent|" + escape_default(default) + "}}")
    assert template.render({}) == default.strip()
    assert template.defaults == (default.strip(),)


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.tuples(LITERAL, NAME, DEFAULT, st.booleans()), max_size=4),
    tail=LITERAL,
    value=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=5),
)
def test_render_is_literals_and_values_or_defaults(
    pieces: list[tuple[str, str, str | None, bool]], tail: str, value: str
) -> None:
    """A template written from literal texts and placeholders (each with or without a default,
    its field present or absent) renders as the same texts with each field's value, or its
    default where the field is missing; it reads back the names and defaults it was written
    with. (A literal that ends in "{" would join the placeholder's "{{" and is left out.)"""
    pieces = [(literal.removesuffix("{"), *rest) for literal, *rest in pieces]
    text, trade = "", {}
    for literal, name, default, present in pieces:
        placeholder = name if default is None else f"{name}|{escape_default(default)}"
        text += literal + "{{" + placeholder + "}}"
        if present:
            trade[name] = value
    text += tail
    expected: str | None = ""
    for literal, name, default, _ in pieces:
        if default is None:
            shown = trade.get(name)
        else:
            shown = trade[name] if trade.get(name, "").strip() else default.strip()
        expected = None if expected is None or shown is None else expected + literal + shown
    template = Template(text)
    assert template.fields == tuple(name for _, name, _, _ in pieces)
    assert template.defaults == tuple(
        None if default is None else default.strip() for _, _, default, _ in pieces
    )
    if expected is None:
        with pytest.raises(TemplateError, match="does not have"):
            template.render(trade)
    else:
        assert template.render(trade) == expected + tail


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet="{}|\\ ab", max_size=16))
def test_any_text_parses_or_is_refused_clearly(text: str) -> None:
    """No text crashes the parser: it is a template or a TemplateError naming a column."""
    try:
        template = Template(text)
    except TemplateError as exc:
        refusal = str(exc)
    else:
        assert len(template.parts) == 2 * len(template.defaults) + 1
        return
    assert re.search(r", column \d+: ", refusal), refusal


# -- SkipTrade from a chained step, in both engines ---------------------------------------------


def _only_paid(trade: Any, customer: Customer) -> Customer:
    if trade.get("payStatus") != "paid":
        raise SkipTrade(f"not paid yet ({trade.get('payStatus')})")
    return customer


def _stage_with_a_paid_and_an_unpaid_trade() -> Stage:
    stage = Stage()
    at = stage.start + 60_000
    stage.fake_huke.add_trades(
        [
            fake_trade(create_time=at, tid="PAID", buyer_cid="wm1", payStatus="paid"),
            fake_trade(create_time=at + 1, tid="OPEN", buyer_cid="wm2", payStatus="open"),
        ]
    )
    return stage


def _check(report: Any, stage: Stage) -> None:
    assert report.counts["created"] == 1
    assert report.counts["skipped"] == 1
    assert report.counts["failed"] == 0
    (skipped,) = report.by_status("skipped")
    assert (skipped.trade_id, skipped.reason) == ("OPEN", "not paid yet (open)")
    assert set(stage.customers()) == {"wm1"}


def test_a_step_raising_skiptrade_skips_the_trade_sync() -> None:
    stage = _stage_with_a_paid_and_an_unpaid_trade()
    _check(stage.sync(transform=CustomerTransform().then(_only_paid)), stage)


async def test_a_step_raising_skiptrade_skips_the_trade_async() -> None:
    stage = _stage_with_a_paid_and_an_unpaid_trade()
    _check(await stage.async_sync(transform=CustomerTransform().then(_only_paid)), stage)
