"""Wire models: frozen attrs classes that keep every field they were given.

A ``WireModel`` subclass declares the fields the SDK understands (snake_case); the converter maps
them to wire names (camelCase, or ``metadata={"wire": ...}``) and keeps the whole wire object in
``raw``, so that unstructuring gives back exactly what was received, unknown fields included.
"""

from __future__ import annotations

import re
import types
import typing
import weakref
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import attrs
import cattrs

from ._text import short_repr, wire_text

_CAMEL_BOUNDARY = re.compile(r"_([a-z0-9])")
_EMPTY: Mapping[str, Any] = MappingProxyType({})
#: An internal id as K/3 Cloud and Huke send it: a number or its text.
Id = int | str
M = TypeVar("M", bound="WireModel")


def to_camel(name: str) -> str:
    """``buyer_nick`` -> ``buyerNick``."""
    return _CAMEL_BOUNDARY.sub(lambda m: m.group(1).upper(), name)


def wire_name(field: attrs.Attribute[Any]) -> str:
    return str(field.metadata.get("wire", to_camel(field.name)))


class WireFieldError(ValueError):
    """A wire field could not be turned into the declared attribute type."""

    def __init__(self, model: str, wire_key: str, value: Any, reason: str) -> None:
        super().__init__(f"{model}.{wire_key}: {reason} (received {short_repr(value, 80)})")
        self.model = model
        self.wire_key = wire_key
        self.value = value


@attrs.frozen
class WireModel:
    """Base of the models that mirror a wire object. ``raw`` is the object as received."""

    raw: Mapping[str, Any] = attrs.field(
        factory=lambda: _EMPTY, kw_only=True, repr=False, hash=False, converter=MappingProxyType
    )

    def __getitem__(self, wire_key: str) -> Any:
        try:
            return self.raw[wire_key]
        except KeyError:
            known = ", ".join(sorted(self.raw)) or "none"
            raise KeyError(
                f"{type(self).__name__} has no wire field {wire_key!r} (its wire fields: {known})"
            ) from None

    def get(self, wire_key: str, default: Any = None) -> Any:
        return self.raw.get(wire_key, default)

    def __contains__(self, wire_key: object) -> bool:
        return wire_key in self.raw

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)


_PASS_THROUGH = frozenset({str, int, float, bool})


def _without_none(type_: Any) -> Any:
    """``X`` for ``X | None`` (the structure loop has already skipped ``None``)."""
    args = typing.get_args(type_)
    if args and type(None) in args and typing.get_origin(type_) in (typing.Union, types.UnionType):
        rest = tuple(a for a in args if a is not type(None))
        return rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007 - runtime value
    return type_


#: One declared field as the structure loop reads it: attribute name, wire key, type, the type a
#: value may already have to pass unconverted, and the converter's hook for the type.
_FieldPlan = tuple[str, str, Any, Any, Callable[[Any, Any], Any]]
#: The field plan behind each structure hook the factory made, for ``structure_lenient``.
_PLANS: weakref.WeakKeyDictionary[Callable[..., Any], list[_FieldPlan]] = (
    weakref.WeakKeyDictionary()
)


def _field_plan(converter: cattrs.Converter, cls: type[WireModel]) -> list[_FieldPlan]:
    attrs.resolve_types(cls)
    plan = []
    for field in attrs.fields(cls):
        if field.name == "raw":
            continue
        type_ = _without_none(field.type)
        # A value already of the declared scalar type needs no conversion: the common case,
        # and the hot path of every page of every reply.
        exact = type_ if type_ in _PASS_THROUGH else None
        plan.append(
            (field.name, wire_name(field), type_, exact, converter.get_structure_hook(type_))
        )
    return plan


def _structure_fields(
    cls: type[M], plan: list[_FieldPlan], data: Any, problems: list[WireFieldError] | None
) -> M:
    """The one field loop. ``problems=None`` is strict: the first field that cannot be converted
    raises. With a list, such a field is left unset (its value stays in ``raw``) and its error is
    appended instead."""
    if type(data) is not dict and not isinstance(data, Mapping):
        raise WireFieldError(cls.__name__, "<object>", data, "expected a JSON object")
    kwargs: dict[str, Any] = {}
    for name, key, type_, exact, hook in plan:
        value = data.get(key)
        if value is None:
            continue
        if type(value) is exact:
            kwargs[name] = value
            continue
        try:
            kwargs[name] = hook(value, type_)
        except Exception as exc:  # re-raised or reported with where and what
            error = WireFieldError(cls.__name__, key, value, str(exc) or type(exc).__name__)
            if problems is None:
                raise error from exc
            problems.append(error)
    return cls(**kwargs, raw=data)


def _structure_factory(converter: cattrs.Converter) -> Callable[[type[Any]], Callable[..., Any]]:
    def factory(cls: type[WireModel]) -> Callable[[Any, Any], WireModel]:
        plan = _field_plan(converter, cls)

        def structure(data: Any, _: Any) -> WireModel:
            return _structure_fields(cls, plan, data, None)

        _PLANS[structure] = plan
        return structure

    return factory


def _unstructure_factory(converter: cattrs.Converter) -> Callable[[type[Any]], Callable[..., Any]]:
    def factory(cls: type[WireModel]) -> Callable[[WireModel], dict[str, Any]]:
        attrs.resolve_types(cls)
        plan = [
            (field.name, wire_name(field), field.type, converter.get_structure_hook(field.type))
            for field in attrs.fields(cls)
            if field.name != "raw"
        ]

        def unchanged(raw_value: Any, value: Any, type_: Any, hook: Callable[..., Any]) -> bool:
            try:
                return bool(hook(raw_value, type_) == value)
            except Exception:  # not comparable means changed
                return False

        def unstructure(obj: WireModel) -> dict[str, Any]:
            # The received object wins wherever a field still means the same value, so that
            # e.g. an id received as a number goes back as a number.
            out = dict(obj.raw)
            for name, key, type_, hook in plan:
                value = getattr(obj, name)
                if key in out:
                    if out[key] is None and value is None:
                        continue
                    if out[key] is not None and unchanged(out[key], value, type_, hook):
                        continue
                elif value is None:
                    continue
                out[key] = converter.unstructure(value)
            return out

        return unstructure

    return factory


def structure_lenient(
    converter: cattrs.Converter, data: Mapping[str, Any], cls: type[M]
) -> tuple[M, list[WireFieldError]]:
    """Like ``converter.structure(data, cls)``, but a declared field whose value cannot be
    converted is left unset (its value stays in ``raw``) and reported instead of raised.

    For records where one odd field must not cost the whole batch: the caller decides what to do
    with the record and the problems (the wire value is never lost).
    """
    plan = _PLANS.get(converter.get_structure_hook(cls))
    if plan is None:
        plan = _field_plan(converter, cls)
    problems: list[WireFieldError] = []
    return _structure_fields(cls, plan, data, problems), problems


def _is_wire_model(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, WireModel)


def _structure_text(value: Any, _: Any) -> str:
    """Text fields accept text and numbers (ids often arrive as either), nothing else."""
    # Any float, NaN included, as before: the bridge refuses a non-finite id where it matters.
    text = str(value) if isinstance(value, float) else wire_text(value)
    if text is None:
        raise TypeError(f"expected text or a number, not {type(value).__name__}")
    return text


def make_converter() -> cattrs.Converter:
    """A converter that knows ``WireModel`` classes; each client configures one, once."""
    converter = cattrs.Converter()
    converter.register_structure_hook(str, _structure_text)
    converter.register_structure_hook_factory(_is_wire_model, _structure_factory(converter))
    converter.register_unstructure_hook_factory(_is_wire_model, _unstructure_factory(converter))
    return converter
