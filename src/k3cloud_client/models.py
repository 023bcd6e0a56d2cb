"""Models of K/3 Cloud's wire objects and of the results this SDK builds, and THE converter.

``converter`` turns wire objects into these models and back (``converter.structure(obj,
ResponseStatus)``, ``converter.unstructure(customer)``); ``Customer.to_wire()`` /
``Customer.from_wire()`` are the same for one customer.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
from typing_extensions import Self

from _huke_k3_core import (
    Id,
    WireFieldError,
    WireModel,
    json_type,
    make_converter,
    plural,
    wire_text,
)
from _huke_k3_core._html import Html, paragraph, table

from .errors import BatchSaveError

__all__ = [
    "BatchSaveResult",
    "Customer",
    "ErrorDetail",
    "FailedRow",
    "Id",
    "OperationRow",
    "ResponseStatus",
    "SavedRow",
    "SuccessEntity",
    "converter",
]


@attrs.frozen
class ErrorDetail(WireModel):
    """One entry of a reply's ``Errors``: what failed, in which field, for which row (``DIndex``)."""

    message: str = attrs.field(default="", metadata={"wire": "Message"})
    field_name: str | None = attrs.field(default=None, metadata={"wire": "FieldName"})
    d_index: int | None = attrs.field(default=None, metadata={"wire": "DIndex"})


@attrs.frozen
class SuccessEntity(WireModel):
    """One entry of a reply's ``SuccessEntitys``: a row that was saved (or submitted, audited...)."""

    id: Id | None = attrs.field(default=None, metadata={"wire": "Id"})
    number: str | None = attrs.field(default=None, metadata={"wire": "Number"})
    d_index: int | None = attrs.field(default=None, metadata={"wire": "DIndex"})


@attrs.frozen
class ResponseStatus(WireModel):
    """A reply's ``Result.ResponseStatus``."""

    is_success: bool = attrs.field(default=False, metadata={"wire": "IsSuccess"})
    msg_code: int = attrs.field(default=0, metadata={"wire": "MsgCode"})
    error_code: int | None = attrs.field(default=None, metadata={"wire": "ErrorCode"})
    errors: list[ErrorDetail] = attrs.field(factory=list, metadata={"wire": "Errors"})

    @functools.cached_property
    def success_entitys(self) -> list[SuccessEntity]:
        """The reply's ``SuccessEntitys`` as models (made on first use: a BatchSave reply has one
        per saved row, and the batch bookkeeping reads the three fields it needs directly)."""
        entities = self.raw.get("SuccessEntitys")
        if entities is None:
            return []
        if not isinstance(entities, list):
            raise WireFieldError("ResponseStatus", "SuccessEntitys", entities, "expected a list")
        return [converter.structure(entity, SuccessEntity) for entity in entities]

    @property
    def success_count(self) -> int:
        """How many ``SuccessEntitys`` the reply holds (without making their models)."""
        entities = self.raw.get("SuccessEntitys")
        return len(entities) if isinstance(entities, list) else 0

    @property
    def message(self) -> str:
        """The errors' messages, joined (``"no error message"`` when the server gave none)."""
        return "; ".join(e.message for e in self.errors if e.message) or "no error message"


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


def _text(value: object) -> str:
    """An organisation number or a name: text, or an integer as text (a float is no number of
    an organisation, and ``100.0`` must not become ``"100.0"``)."""
    text = None if isinstance(value, float) else wire_text(value)
    if text is None:
        raise TypeError(f"expected text, not {type(value).__name__}")
    return text


@attrs.frozen
class Customer(WireModel):
    """A ``BD_Customer`` (customer master data) row.

    ``customer.to_wire()`` (or ``converter.unstructure(customer)``) gives the ``Model`` object
    ``BatchSave`` expects: ``FNumber``, ``FName``, ``FCreateOrgId``/``FUseOrgId`` as
    ``{"FNumber": org}``, ``FDescription`` when given, ``FCUSTID`` when ``id`` is set (an update),
    and every key of ``extra`` (other wire fields, e.g. ``{"FShortName": "ACME"}``).
    """

    number: str = attrs.field(validator=attrs.validators.instance_of(str))
    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    create_org: str = attrs.field(default="100", kw_only=True, converter=_text)
    use_org: str = attrs.field(default="100", kw_only=True, converter=_text)
    description: str | None = attrs.field(default=None, kw_only=True)
    id: Id | None = attrs.field(default=None, kw_only=True)
    extra: Mapping[str, Any] = attrs.field(
        factory=dict, kw_only=True, hash=False, converter=_frozen_mapping
    )

    def to_wire(self) -> dict[str, Any]:
        """The ``BD_Customer`` model object (see the class docs)."""
        model: dict[str, Any] = converter.unstructure(self)
        return model

    @classmethod
    def from_wire(cls, model: Mapping[str, Any]) -> Self:
        """A customer from a ``BD_Customer`` model object; unknown keys go to ``extra``."""
        customer: Self = converter.structure(model, cls)
        return customer

    def to_model(self) -> dict[str, Any]:
        """Deprecated: ``to_wire()``."""
        _renamed("to_model", "to_wire")
        return self.to_wire()

    @classmethod
    def from_model(cls, model: Mapping[str, Any]) -> Self:
        """Deprecated: ``from_wire()``."""
        _renamed("from_model", "from_wire")
        return cls.from_wire(model)


def _renamed(old: str, new: str) -> None:
    warnings.warn(
        f"Customer.{old}() is renamed Customer.{new}(): call that "
        f"(the old name goes away in a future release)",
        DeprecationWarning,
        stacklevel=3,
    )


_CUSTOMER_KEYS = ("FNumber", "FName", "FCreateOrgId", "FUseOrgId", "FDescription", "FCUSTID")


def _ref_number(value: Any) -> Any:
    """``{"FNumber": "100"}`` -> ``"100"``: how K/3 Cloud refers to base data such as orgs."""
    return value.get("FNumber") if isinstance(value, Mapping) else value


def _structure_customer(data: Any, cls: type[Customer]) -> Customer:
    if not isinstance(data, Mapping):
        raise WireFieldError(cls.__name__, "<object>", data, "expected a JSON object")
    values: dict[str, Any] = {}
    for key, name, ref in (
        ("FNumber", "number", False),
        ("FName", "name", False),
        ("FCreateOrgId", "create_org", True),
        ("FUseOrgId", "use_org", True),
        ("FDescription", "description", False),
    ):
        value = _ref_number(data[key]) if ref and key in data else data.get(key)
        if value is None:
            continue
        try:
            values[name] = _text(value)
        except TypeError as exc:
            raise WireFieldError(cls.__name__, key, data[key], str(exc)) from None
    if data.get("FCUSTID") not in (None, 0, ""):
        values["id"] = _structure_id(data["FCUSTID"], Id)
    extra = {k: v for k, v in data.items() if k not in _CUSTOMER_KEYS}
    values.setdefault("number", "")
    values.setdefault("name", "")
    return cls(**values, extra=extra, raw=data)


def _unstructure_customer(customer: Customer) -> dict[str, Any]:
    raw = customer.raw
    fields: dict[str, Any] = {
        "FNumber": customer.number,
        "FName": customer.name,
        "FCreateOrgId": {"FNumber": customer.create_org},
        "FUseOrgId": {"FNumber": customer.use_org},
    }
    if customer.description is not None:
        fields["FDescription"] = customer.description
    if customer.id is not None:
        fields["FCUSTID"] = customer.id
    out = dict(raw)
    for key, value in fields.items():
        # What was received wins where it still means the same (an org number received as 100),
        # and a default the received object did not carry is not added to it.
        if key in raw and _same(raw[key], value):
            continue
        if raw and key not in raw and value == _DEFAULTS.get(key):
            continue
        out[key] = value
    out.update(customer.extra)
    return out


_DEFAULTS: dict[str, Any] = {
    "FNumber": "",
    "FName": "",
    "FCreateOrgId": {"FNumber": "100"},
    "FUseOrgId": {"FNumber": "100"},
}


def _same(received: Any, value: Any) -> bool:
    if isinstance(value, Mapping):
        return isinstance(received, Mapping) and _same(_ref_number(received), value["FNumber"])
    return received == value or (isinstance(received, int) and str(received) == value)


def _structure_id(value: Any, _: Any) -> Id:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"expected an id (a number or text), not {type(value).__name__}")
    return value


@attrs.frozen
class SavedRow:
    """A row an operation acted on: saved (``batch_save``, ``save``), submitted, audited,
    un-audited, deleted, or the copy ``allocate`` made.

    ``index`` is its position in the caller's input (for ``submit`` and the like, in the numbers
    then ids given; for ``allocate``, the (record, organisation) pair); ``id`` and ``number``
    are the server's.
    """

    index: int
    id: Id | None
    number: str | None


OperationRow = SavedRow
"""What ``submit``, ``audit``, ``unaudit``, ``delete`` and ``allocate`` return: a row the
operation acted on. The same class as ``SavedRow`` (so results compare, print and pass
``isinstance`` checks as they always have); the name says what the row is."""


@attrs.frozen
class FailedRow:
    """An input row that was not (surely) saved.

    ``index`` is its position in the caller's input; ``field_name``, ``message`` and ``msg_code``
    say why. ``uncertain`` is True when the call's outcome is unknown (a timeout, or the reply was
    lost after the request reached the server): the row MAY have been saved, so look it up before
    sending it again.
    """

    index: int
    field_name: str | None
    message: str
    msg_code: int | None
    uncertain: bool = False
    number: str | None = None


@attrs.frozen
class BatchSaveResult:
    """The outcome of ``batch_save``: every input index is in exactly one of ``saved``/``failed``.

    ``responses`` holds the decoded reply of every call that was answered, in chunk order.
    """

    saved: list[SavedRow]
    failed: list[FailedRow]
    responses: list[Any] = attrs.field(factory=list, repr=False)

    @property
    def ok(self) -> bool:
        """True when every row was saved."""
        return not self.failed

    @property
    def uncertain(self) -> list[FailedRow]:
        """The failed rows whose call may have reached the server (they may have been saved)."""
        return [row for row in self.failed if row.uncertain]

    def raise_for_failures(self) -> Self:
        """Raise ``BatchSaveError`` if any row failed; return ``self`` otherwise (for chaining)."""
        if self.failed:
            raise BatchSaveError(self)
        return self

    def _repr_html_(self) -> str:
        """A notebook's view: the counts, then the first rows, those that failed first.

        Messages are shown as the client made them (already redacted); no reply body is."""
        uncertain = len(self.uncertain)
        calls = len(self.responses)
        maybe = " (they may have been saved: look them up before sending again)"
        summary = paragraph(
            f"{len(self.saved)} saved, {len(self.failed) - uncertain} failed, {uncertain} "
            f"uncertain{maybe if uncertain else ''}; "
            f"{plural(calls, 'call')} answered",
            bold="BatchSave: all saved" if self.ok else "BatchSave: NOT all saved",
        )
        rows: list[tuple[object, ...]] = [
            (
                row.index,
                row.number,
                "",
                "uncertain" if row.uncertain else "failed",
                row.message if row.field_name is None else f"{row.field_name}: {row.message}",
            )
            for row in self.failed[:_HTML_ROWS]
        ]
        rows.extend(
            (row.index, row.number, row.id, "saved", "")
            for row in self.saved[: _HTML_ROWS - len(rows)]
        )
        more = len(self.failed) + len(self.saved) - len(rows)
        headers = ("index", "number", "id", "status", "message")
        listing = table(headers, rows, more=more, more_hint="see result.saved and result.failed")
        return Html(f"{summary}\n{listing}")


#: Rows of a result a notebook shows; the rest are counted.
_HTML_ROWS = 20


def _is_id(cls: Any) -> bool:
    return bool(cls == Id or cls == (Id | None))


def _structure_optional_id(value: Any, cls: Any) -> Id | None:
    return None if value is None else _structure_id(value, cls)


#: ``json_type``'s names in the words of this package's messages.
_JSON_WORDS = {
    "null": "null",
    "boolean": "a boolean",
    "integer": "a number",
    "number": "a number",
    "string": "a string",
    "object": "an object",
    "array": "a list",
}


def _json_kind(value: object) -> str:
    """What a decoded JSON value is, in JSON's words (for errors saying what arrived)."""
    # A tuple (an "array" to json_type) is no JSON a decoder makes: named by its type.
    kind = type(value).__name__ if isinstance(value, tuple) else json_type(value)
    return _JSON_WORDS.get(kind, f"a {kind}")


def _structure_bool(value: Any, _: Any) -> bool:
    # cattrs' default is bool(value): "false" and "0" would be True. A K/3 boolean that is not a
    # JSON boolean is a reply this SDK cannot read, never a guess.
    if isinstance(value, bool):
        return value
    raise TypeError(f"expected a JSON boolean (true or false), got {_json_kind(value)}")


def _structure_status(data: Any, cls: type[ResponseStatus]) -> ResponseStatus:
    # IsSuccess decides whether a write is reported done: absent or null must not pass for
    # false (the generic structuring leaves absent/null fields at their default).
    if isinstance(data, Mapping):
        if "IsSuccess" not in data:
            raise ValueError(
                "ResponseStatus.IsSuccess: missing, where a JSON boolean (true or false) must "
                "say whether the call succeeded"
            )
        flag = data["IsSuccess"]
        if not isinstance(flag, bool):
            raise WireFieldError(
                "ResponseStatus",
                "IsSuccess",
                flag,
                f"expected a JSON boolean (true or false), got {_json_kind(flag)}",
            )
    status: ResponseStatus = _structure_status_fields(data, cls)
    return status


#: The package's one converter: wire objects <-> models.
converter = make_converter()
converter.register_structure_hook(bool, _structure_bool)
converter.register_structure_hook_func(_is_id, _structure_optional_id)
converter.register_structure_hook(Customer, _structure_customer)
converter.register_unstructure_hook(Customer, _unstructure_customer)
_structure_status_fields = converter.get_structure_hook(ResponseStatus)
converter.register_structure_hook(ResponseStatus, _structure_status)
