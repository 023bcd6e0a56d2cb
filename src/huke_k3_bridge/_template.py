r"""Declarative field mappings that read like the integration scheme's table.

A mapping such as ``{"FName": "{{buyerNick}}", "FNumber": "{{buyerCid}}", "FCreateOrgId": "100"}``
says, per K/3 Cloud field, where its value comes from:

- a text with ``{{wireField}}`` placeholders, filled from the trade's wire fields;
- a plain constant (``"100"``, ``True``);
- a callable ``trade -> value``;
- a `Lookup` into a keyed data set (the scheme's ``_findCollection``).

A placeholder may give a default for a field a trade lacks: ``{{shopName|未知店铺}}`` renders
``未知店铺`` when ``shopName`` is missing (absent, null, or blank text), ``{{shopName|}}`` renders
nothing. In a default, ``\|``, ``\{``, ``\}`` and ``\\`` stand for ``|``, ``{``, ``}`` and ``\``;
a bare ``|`` or ``{{`` there is refused (`TemplateError`, naming the column).

Placeholders are parsed by a small scanner and filled by a dictionary look-up: the text between
the braces is only ever a field *name* (and a default text). Nothing is evaluated, so
``{{__import__('os')}}`` is just the name of a field that no trade has.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeAlias

import attrs

from _huke_k3_core import short_repr, wire_text

from ._trade import SHORT, TradeLike, describe_trade, wire_fields

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_OPEN, _CLOSE, _BAR, _ESCAPE = "{{", "}}", "|", "\\"
#: What a backslash makes literal in a default; before anything else it is itself.
_ESCAPABLE = frozenset("\\|{}")

#: Where a looked-up value comes from: a mapping ``key -> value`` or a callable ``key -> value``.
LookupSource: TypeAlias = Mapping[str, str] | Callable[[str], str | None]


class TemplateError(ValueError):
    """A template cannot be read, or a field of it could not be filled from a trade.

    Raised when a placeholder without a default names a wire field the trade does not have (the
    message names the K/3 field, the placeholder and the trade), and when a template's text is
    malformed (the message names the column: an empty field name, a bare ``|`` in a default, a
    placeholder that is not closed).
    """

    def __init__(self, message: str, *, target: str | None, field: str | None) -> None:
        super().__init__(message)
        #: The K/3 Cloud field being filled (``"FName"``), when known.
        self.target = target
        #: The wire field the placeholder names (``"buyerNick"``).
        self.field = field


@attrs.frozen
class Lookup:
    """A value found in a user-owned keyed data set: the scheme's ``_findCollection``.

    The scheme's ``FDescription`` reads "find 唯一ID in collection dd359ae0-… where
    cid = {{buyerCid}}". ``Lookup`` records that sentence; the data itself is supplied when the
    transform is built (``CustomerTransform.from_template(..., lookups={collection: source})``)
    as a mapping or a callable. Without a source the field is left empty.
    """

    #: The data set's id (the scheme's collection uuid).
    collection: str
    #: Template of the key to look up, e.g. ``"{{buyerCid}}"``.
    key: str = "{{buyerCid}}"
    #: The value's name in the data set (documentation: the source returns it directly).
    field: str = "唯一ID"
    #: The data set's key column (documentation, as above).
    where: str = "cid"


#: The integration scheme's collection behind ``FDescription``.
SCHEME_COLLECTION = "dd359ae0-f1c0-3d0a-b38e-df1d6bf1f756"

#: The integration scheme's target table, row for row: K/3 Cloud field -> value.
SCHEME: Mapping[str, Any] = MappingProxyType(
    {
        "FName": "{{buyerNick}}",
        "FNumber": "{{buyerCid}}",
        "FCreateOrgId": "100",
        "FUseOrgId": "100",
        "FDescription": Lookup(SCHEME_COLLECTION, key="{{buyerCid}}", field="唯一ID", where="cid"),
        "FormId": "BD_Customer",
        "Operation": "BatchSave",
        "IsAutoSubmitAndAudit": True,
        "IsVerifyBaseDataField": False,
    }
)

#: Rows of a scheme table that describe the call rather than a field of the model.
CALL_KEYS = frozenset({"FormId", "Operation", "IsAutoSubmitAndAudit", "IsVerifyBaseDataField"})

#: What one field of a mapping may be: a template or constant, a callable, or a lookup.
FieldSpec: TypeAlias = str | int | float | bool | Lookup | Callable[[Any], Any] | None


def _malformed(text: str, index: int, problem: str, field: str | None = None) -> TemplateError:
    return TemplateError(
        f"template {short_repr(text, SHORT)}, column {index + 1}: {problem}",
        target=None,
        field=field,
    )


def _placeholder(text: str, start: int) -> tuple[str, str | None, int]:
    """The field name and default of the placeholder opening at ``start`` (a ``}}`` follows it),
    and where the text after it begins."""
    inner = start + len(_OPEN)
    close = text.find(_CLOSE, inner)
    bar = text.find(_BAR, inner, close)
    name = text[inner : close if bar < 0 else bar].strip()
    if not name:
        raise _malformed(text, start, "the placeholder names no field")
    if bar < 0:
        return name, None, close + len(_CLOSE)
    chars: list[str] = []
    index = bar + 1
    while index < len(text):
        char = text[index]
        if char == _ESCAPE and text[index + 1 : index + 2] in _ESCAPABLE:
            chars.append(text[index + 1])
            index += 2
        elif text.startswith(_CLOSE, index):
            return name, "".join(chars).strip(), index + len(_CLOSE)
        elif char == _BAR:
            raise _malformed(
                text, index, f"a second '|' in the default of {name!r}: write \\| for a '|'", name
            )
        elif text.startswith(_OPEN, index):
            raise _malformed(
                text,
                index,
                f"'{{{{' in the default of {name!r}: a default is plain text, placeholders do "
                "not nest (write \\{ for a '{')",
                name,
            )
        else:
            chars.append(char)
            index += 1
    raise _malformed(
        text, start, f"the placeholder of {name!r} is not closed: its default escapes every '}}}}'"
    )


def _parse(text: str) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    """Literal text and field names, alternating, and each placeholder's default."""
    parts: list[str] = []
    defaults: list[str | None] = []
    position = 0
    while True:
        start = text.find(_OPEN, position)
        # A "{{" that no "}}" follows is text, as it always was: only a closed pair is a
        # placeholder.
        if start < 0 or text.find(_CLOSE, start + len(_OPEN)) < 0:
            parts.append(text[position:])
            return tuple(parts), tuple(defaults)
        parts.append(text[position:start])
        name, default, position = _placeholder(text, start)
        parts.append(name)
        defaults.append(default)


def _missing(found: bool, value: Any) -> bool:
    """Whether a placeholder's default stands in: the field is absent, null or blank text."""
    return not found or value is None or (isinstance(value, str) and not value.strip())


def _lookup_field(fields: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    if name in fields:
        return True, fields[name]
    # ``a.b`` walks into nested objects, for wire fields that hold one.
    if "." in name:
        current: Any = fields
        for part in name.split("."):
            if not isinstance(current, Mapping) or part not in current:
                return False, None
            current = current[part]
        return True, current
    return False, None


@attrs.frozen
class Template:
    """A text with ``{{wireField}}`` placeholders, parsed once.

    ``Template("VIP {{buyerNick}}").render(trade)`` gives ``"VIP 张三"``. A placeholder whose field
    is absent raises `TemplateError`; a field that is present but null renders as ``""``; a
    field holding a list, an object or a boolean is not text and raises as well.

    ``{{field|default}}`` renders ``default`` when the field is missing: absent, null, or blank
    text (empty or only spaces); ``{{field|}}`` renders nothing then. Spaces around the name and
    the default are dropped. A default stands in for a missing value, not for a wrong one: a
    list or a boolean still raises. A malformed text raises `TemplateError` here, naming
    the column.
    """

    text: str
    #: Literal text and field names, alternating, starting with text.
    parts: tuple[str, ...] = attrs.field(init=False, repr=False)
    #: Each placeholder's default, in order (``None``: it has none).
    defaults: tuple[str | None, ...] = attrs.field(init=False, repr=False)
    #: The field name when the template is exactly one placeholder (``"{{buyerCid}}"``).
    _single: str | None = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        parts, defaults = _parse(self.text)
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "defaults", defaults)
        single = parts[1] if len(parts) == 3 and not parts[0] and not parts[2] else None
        object.__setattr__(self, "_single", single)

    @property
    def single_field(self) -> str | None:
        """The field name when the template is exactly one placeholder, else None."""
        return self._single

    @property
    def fields(self) -> tuple[str, ...]:
        """The wire fields the template reads, in order."""
        return self.parts[1::2]

    def empty_fields(self, trade: TradeLike) -> list[str]:
        """The placeholders that would render as nothing for ``trade`` (their field absent, null
        or blank, and no default with text in its place), leaving only the template's fixed
        text."""
        fields = wire_fields(trade)
        empty = []
        for name, default in zip(self.fields, self.defaults, strict=True):
            found, value = _lookup_field(fields, name)
            text = wire_text(value) if found else None
            if _missing(found, value):
                text = default
            if text is None or not text.strip():
                empty.append(name)
        return empty

    def render(self, trade: TradeLike, *, target: str | None = None) -> str:
        """The text with every placeholder replaced by the trade's field as text."""
        fields = wire_fields(trade)
        single = self._single
        # The mappings of a sync are mostly "{{field}}" of a text field, rendered for every
        # trade: that case is the field itself, without the general loop below.
        if single is not None and self.defaults[0] is None and single in fields:
            value = fields[single]
            if type(value) is str:
                return value
        out: list[str] = []
        for i, part in enumerate(self.parts):
            if i % 2 == 0:
                out.append(part)
                continue
            found, value = _lookup_field(fields, part)
            default = self.defaults[i // 2]
            if default is not None and _missing(found, value):
                out.append(default)
                continue
            where = f" for {target}" if target else ""
            if not found:
                seen = ", ".join(sorted(map(str, fields))[:20]) or "none"
                raise TemplateError(
                    f"template {short_repr(self.text, SHORT)}{where} names field "
                    f"{short_repr(part, SHORT)}, which {describe_trade(trade)} does not have "
                    f"(its fields: {seen})",
                    target=target,
                    field=part,
                )
            if value is None:
                continue
            text = wire_text(value)
            if text is None:
                raise TemplateError(
                    f"template {short_repr(self.text, SHORT)}{where}: field "
                    f"{short_repr(part, SHORT)} of {describe_trade(trade)} is "
                    f"{type(value).__name__} {short_repr(value, SHORT)}, not text",
                    target=target,
                    field=part,
                )
            out.append(text)
        return "".join(out)


@functools.lru_cache(maxsize=1024)
def compile_template(text: str) -> Template:
    """``Template(text)``, parsed once per distinct text."""
    return Template(text)


def check_template(spec: object, target: str) -> None:
    """Raise `TemplateError` naming ``target`` when ``spec`` is a template that cannot be
    read, so that a transform refuses it when it is built rather than at every trade."""
    if not isinstance(spec, str) or not is_template(spec):
        return
    try:
        compile_template(spec)
    except TemplateError as exc:
        raise TemplateError(f"{target}: {exc}", target=target, field=exc.field) from None


def is_template(value: object) -> bool:
    """Whether a mapping value is a template (a text with at least one placeholder)."""
    return isinstance(value, str) and _PLACEHOLDER.search(value) is not None


def lookup(source: LookupSource | None, key: str) -> str | None:
    """``source[key]`` (or ``source(key)``), ``None`` when the key is not there."""
    if source is None:
        return None
    value = source.get(key) if isinstance(source, Mapping) else source(key)
    return optional_text(
        value, lambda: f"lookup of {short_repr(key, SHORT)} gave {type(value).__name__}, not text"
    )


def optional_text(value: Any, refusal: Callable[[], str]) -> str | None:
    """``value`` as text, ``None`` as ``None``; anything else (a list, a boolean ...) raises
    ``TypeError(refusal())``: a value that is not text never silently becomes some."""
    if value is None:
        return None
    text = wire_text(value)
    if text is None:
        raise TypeError(refusal())
    return text


def resolve(
    spec: FieldSpec,
    trade: TradeLike,
    *,
    target: str,
    lookups: Mapping[str, LookupSource] | None = None,
) -> Any:
    """The value of one mapping field for ``trade``."""
    if isinstance(spec, str):
        template = compile_template(spec)
        # A text without placeholders is a constant (``parts`` is then the text alone).
        return template.render(trade, target=target) if len(template.parts) > 1 else spec
    if isinstance(spec, Lookup):
        key = compile_template(spec.key).render(trade, target=target)
        return lookup((lookups or {}).get(spec.collection), key)
    if callable(spec):
        return spec(trade)
    return spec
