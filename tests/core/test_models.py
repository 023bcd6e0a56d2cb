from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from _huke_k3_core import WireModel, make_converter, to_camel
from _huke_k3_core._models import WireFieldError


@attrs.frozen
class Sample(WireModel):
    buyer_nick: str | None = None
    buyer_cid: str | None = None
    amount: float | None = None
    code: str | None = attrs.field(default=None, metadata={"wire": "FNumber"})


converter = make_converter()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def test_to_camel() -> None:
    assert to_camel("buyer_nick") == "buyerNick"
    assert to_camel("page_size_2") == "pageSize2"
    assert to_camel("plain") == "plain"


def test_known_fields_are_mapped_and_unknown_kept() -> None:
    wire = {"buyerNick": "张三", "buyerCid": 42, "FNumber": "C1", "extra": {"a": [1]}}
    model = converter.structure(wire, Sample)
    assert model.buyer_nick == "张三"
    assert model.buyer_cid == "42"
    assert model.code == "C1"
    assert model["extra"] == {"a": [1]}
    assert "extra" in model
    assert converter.unstructure(model) == wire


def test_unknown_wire_field_lookup_names_the_fields_it_has() -> None:
    model = converter.structure({"buyerNick": "x"}, Sample)
    with pytest.raises(KeyError, match=r"no wire field 'nope' \(its wire fields: buyerNick\)"):
        model["nope"]


def test_wrong_type_names_model_field_and_value() -> None:
    with pytest.raises(WireFieldError, match=r"Sample\.buyerNick: .*dict.*received \{'a': 1\}"):
        converter.structure({"buyerNick": {"a": 1}}, Sample)
    with pytest.raises(WireFieldError, match="expected a JSON object"):
        converter.structure(["not", "an", "object"], Sample)


def test_booleans_are_not_text() -> None:
    with pytest.raises(WireFieldError):
        converter.structure({"buyerCid": True}, Sample)


def test_changed_field_wins_over_raw_on_unstructure() -> None:
    model = converter.structure({"buyerCid": 7, "x": 1}, Sample)
    assert converter.unstructure(attrs.evolve(model, buyer_cid="8")) == {"buyerCid": "8", "x": 1}


def test_raw_cannot_be_mutated_through_the_model() -> None:
    model = converter.structure({"buyerNick": "a"}, Sample)
    with pytest.raises(TypeError):
        model.raw["buyerNick"] = "b"  # type: ignore[index]


def test_models_are_hashable_and_comparable() -> None:
    a = converter.structure({"buyerNick": "a", "x": [1]}, Sample)
    b = converter.structure({"buyerNick": "a", "x": [1]}, Sample)
    assert a == b
    assert hash(a) == hash(b)


#: Sample's own wire keys: a field takes only values of its type, so the extra keys avoid them.
DECLARED = {"buyerNick", "buyerCid", "amount", "FNumber"}
EXTRA_KEYS = st.text(max_size=8).filter(lambda key: key not in DECLARED)


@given(st.dictionaries(EXTRA_KEYS, json_values, max_size=6), st.text(), st.integers())
def test_round_trip_is_exact(extra: dict[str, Any], nick: str, cid: int) -> None:
    wire = {**extra, "buyerNick": nick, "buyerCid": cid}
    assert converter.unstructure(converter.structure(wire, Sample)) == wire


def test_structure_lenient_keeps_what_it_can_and_reports_the_rest() -> None:
    from _huke_k3_core import structure_lenient

    wire = {"buyerNick": ["not", "text"], "buyerCid": 5, "amount": "x", "other": 1}
    model, problems = structure_lenient(converter, wire, Sample)
    assert model.buyer_nick is None
    assert model.buyer_cid == "5"
    assert model.amount is None
    assert dict(model.raw) == wire
    assert sorted(p.wire_key for p in problems) == ["amount", "buyerNick"]
    clean, none = structure_lenient(converter, {"buyerNick": "a"}, Sample)
    assert clean.buyer_nick == "a"
    assert none == []
