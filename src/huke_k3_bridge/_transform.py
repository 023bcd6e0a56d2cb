"""Turning a Huke trade into a K/3 Cloud customer: the scheme's mapping, configurable and
composable, and preparing each fetched trade with whatever transform a run was given (its
customer checked to be one K/3 Cloud can take, or why it has none)."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

import attrs
from typing_extensions import Self

from _huke_k3_core import short_repr, wire_text
from k3cloud_client import Customer

from ._errors import error_text
from ._template import (
    CALL_KEYS,
    SCHEME,
    FieldSpec,
    Lookup,
    LookupSource,
    Template,
    TemplateError,
    check_template,
    compile_template,
    is_template,
    lookup,
    optional_text,
    resolve,
)
from ._trade import TradeLike, junk_key, trade_id, wire_fields

#: A transform: one trade in, one customer out (or `SkipTrade`).
Transform: TypeAlias = Callable[[Any], Customer]
#: A composition step: ``(trade, customer so far) -> customer``.
CustomerStep: TypeAlias = Callable[[Any, Customer], Customer]
#: Where a customer's name comes from when the nickname is empty.
NameFallback: TypeAlias = str | Callable[[Any], str | None] | None

#: The fields the bridge itself sets; a mapping may not.
_RESERVED = frozenset({"FCUSTID"})
_MAIN = ("FNumber", "FName", "FCreateOrgId", "FUseOrgId", "FDescription")
#: How the scheme saves: submitted and audited in the same call, base data not verified.
SCHEME_SAVE_FLAGS: Mapping[str, bool] = MappingProxyType(
    {key: SCHEME[key] for key in ("IsAutoSubmitAndAudit", "IsVerifyBaseDataField")}
)


class SkipTrade(Exception):
    """Raised by a transform for a trade that cannot become a customer.

    The sync reports the trade as ``skipped`` with ``reason``; it is not an error. A step of
    `CustomerTransform.then` may raise it too:

    ```python
    def only_paid(trade, customer):
        if trade.get("payStatus") != "paid":
            raise SkipTrade("not paid yet")
        return customer

    transform = CustomerTransform().then(only_paid)
    ```
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        #: Why the trade was skipped, as shown in the report.
        self.reason = reason


#: Every ``BatchSave`` option a transform may set (its ``data`` keys beside ``Model``, as the Web
#: API names them) and the ``batch_save`` argument that sends it (``None``: sent as an extra
#: option under its wire name). ``NeedUpDateFields`` is not one: the bridge sets it for updates.
SAVE_OPTIONS: Mapping[str, str | None] = MappingProxyType(
    {
        "IsAutoSubmitAndAudit": "is_auto_submit_and_audit",
        "IsVerifyBaseDataField": "is_verify_base_data_field",
        "IsDeleteEntry": "is_delete_entry",
        "ValidateFlag": "validate_flag",
        "NumberSearch": "number_search",
        "BatchCount": "batch_count",
        "InterationFlags": "interation_flags",
        "NeedReturnFields": "need_return_fields",
        "IsEntryBatchFill": None,
        "IsAutoAdjustField": None,
        "IgnoreInterationFlag": None,
        "IsControlPrecision": None,
        "ValidateRepeatJson": None,
        "SubSystemId": None,
    }
)
_TEXT_OPTIONS = frozenset({"InterationFlags", "SubSystemId"})


def check_save_options(options: Mapping[str, Any], where: str = "save_flags") -> None:
    """Raise ``ValueError`` unless every option is a ``BatchSave`` option with a value of its
    type: an option that would not reach the wire, or reach it as something else, is refused
    here rather than ignored at the call."""
    for name, value in options.items():
        if name not in SAVE_OPTIONS:
            known = ", ".join(SAVE_OPTIONS)
            hint = (
                " (the bridge sets NeedUpDateFields itself, for updates)"
                if name == "NeedUpDateFields"
                else ""
            )
            raise ValueError(
                f"{where}: {name!r} is not a BatchSave option{hint}; the options are: {known}"
            )
        if name == "BatchCount":
            ok = type(value) is int and value >= 1
            wanted = "an int >= 1"
        elif name == "NeedReturnFields":
            ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
            wanted = "a list of field keys"
        elif name in _TEXT_OPTIONS:
            ok, wanted = isinstance(value, str), "text"
        else:
            ok, wanted = isinstance(value, bool), "True or False"
        if not ok:
            raise ValueError(f"{where}: {name} must be {wanted}, not {value!r}")


def save_arguments(options: Mapping[str, Any]) -> dict[str, Any]:
    """``batch_save`` keyword arguments that send ``options`` (wire names) as they are."""
    return {SAVE_OPTIONS[name] or name: value for name, value in options.items()}


def _freeze(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


def _check_field_names(fields: Mapping[str, Any]) -> None:
    for key, spec in fields.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"field names must be non-empty text, got {key!r}")
        if key in _RESERVED:
            raise ValueError(f"{key} is set by the bridge (existing customers are updated by it)")
        if key in CALL_KEYS:
            raise ValueError(
                f"{key} describes the call, not a field of the customer: "
                "use CustomerTransform.from_template for a full scheme table"
            )
        # A malformed template is refused now, once, rather than failing every trade.
        check_template(spec.key if isinstance(spec, Lookup) else spec, key)


@functools.lru_cache(maxsize=256)
def _single_placeholder(spec: str) -> str | None:
    """The field name when ``spec`` is exactly one placeholder (``"{{buyerCid}}"``)."""
    template = Template(spec)
    if template.parts[0] == "" and len(template.parts) == 3 and template.parts[2] == "":
        return template.parts[1]
    return None


def _missing_number_reason(spec: FieldSpec, trade: TradeLike, error: Exception | None) -> str:
    """A short, specific reason why a trade has no customer number."""
    name = _single_placeholder(spec) if isinstance(spec, str) and is_template(spec) else None
    if name is not None:
        fields = wire_fields(trade)
        if name not in fields:
            return f"trade has no {name}"
        value = fields[name]
        if value is None:
            return f"{name} is null"
        if wire_text(value) is None:
            return f"{name} is {type(value).__name__} {short_repr(value, 40)}, not text"
        return f"{name} is blank"
    if error is not None:
        return f"no customer number: {error}"
    return "no customer number: FNumber is empty"


def _default_name_fallback() -> NameFallback:
    return "{{buyerCid}}"


@attrs.frozen
class CustomerTransform:
    """The scheme's trade -> ``BD_Customer`` mapping, with every part configurable.

    Called with a trade, it returns a ``k3cloud_client.Customer``:

    - ``FNumber`` = ``buyerCid`` (stripped). A trade without one raises `SkipTrade`.
    - ``FName`` = ``buyerNick``; when that is empty, ``name_fallback`` (a template, by default
      ``"{{buyerCid}}"``, or a callable; ``None`` skips such trades instead).
    - ``FCreateOrgId`` / ``FUseOrgId`` = ``create_org`` / ``use_org`` (``"100"``).
    - ``FDescription`` = ``description[buyerCid]``: the stand-in for the scheme's "find 唯一ID in
      collection … where cid = buyerCid". A mapping or a callable ``cid -> str | None``.

    It is immutable; `with_fields` and `then` return changed copies:

    ```python
    transform = CustomerTransform(description=unique_ids).with_fields(
        FName=lambda trade: trade["buyerNick"].title(),
    ).then(lambda trade, customer: attrs.evolve(customer, use_org="200"))
    ```

    A template that cannot be read (see `Template`) raises `TemplateError` here, when the
    transform is built.
    """

    #: ``FCreateOrgId``: the creating organisation's number.
    create_org: str = "100"
    #: ``FUseOrgId``: the using organisation's number.
    use_org: str = "100"
    #: Source of ``FDescription``, keyed by customer number (buyerCid).
    description: LookupSource | None = None
    #: Name used when the nickname is empty: a template, a callable ``trade -> str``, or None.
    name_fallback: NameFallback = attrs.field(factory=_default_name_fallback)
    #: Per-field overrides, K/3 field name -> template, constant, callable or ``Lookup``.
    fields: Mapping[str, FieldSpec] = attrs.field(factory=dict, converter=_freeze)
    #: Data sets for ``Lookup`` values, by collection id.
    lookups: Mapping[str, LookupSource] = attrs.field(factory=dict, converter=_freeze)
    #: Composition steps applied in order to the customer built from the fields.
    steps: tuple[CustomerStep, ...] = ()
    #: BatchSave options for customers this transform makes, by their Web API names (the
    #: scheme's two by default); any of ``SAVE_OPTIONS``, each sent as given.
    save_flags: Mapping[str, bool] = attrs.field(
        factory=lambda: dict(SCHEME_SAVE_FLAGS), converter=_freeze
    )

    def __attrs_post_init__(self) -> None:
        _check_field_names(self.fields)
        check_template(self.name_fallback, "name_fallback")
        check_save_options(self.save_flags)

    # -- building -----------------------------------------------------------------------------

    def with_fields(self, **fields: FieldSpec) -> Self:
        """A copy where the named K/3 fields come from the given specs.

        Each value is a ``{{wireField}}`` template (``{{wireField|default}}`` for a field trades
        may lack), a constant, a callable ``trade -> value``, or a ``Lookup``.
        ``FDescription=None`` leaves the description empty. Fields that are not
        one of ``Customer``'s own go into the model as they are (``FShortName=...``).
        """
        return attrs.evolve(self, fields={**self.fields, **fields})

    def then(self, step: CustomerStep) -> Self:
        """A copy that passes each customer through ``step(trade, customer) -> customer``.

        A step that raises `SkipTrade` skips the trade with its reason; any other exception
        (or a result that is not a ``Customer``) fails the trade.
        """
        if not callable(step):
            raise TypeError(f"a step must be callable, not {type(step).__name__}")
        return attrs.evolve(self, steps=(*self.steps, step))

    @classmethod
    def from_template(
        cls,
        table: Mapping[str, Any],
        *,
        lookups: Mapping[str, LookupSource] | None = None,
        name_fallback: NameFallback = "{{buyerCid}}",
    ) -> CustomerTransform:
        """A transform from a table that reads like the scheme's (see ``SCHEME``).

        Model fields (``FName``, ``FNumber``, ...) map to templates, constants, callables or
        ``Lookup`` values; the call rows (``FormId``, ``Operation``, ``IsAutoSubmitAndAudit``,
        ``IsVerifyBaseDataField``) are checked and become the save flags. ``lookups`` supplies
        the data sets named by ``Lookup`` values; ``name_fallback`` is as for the class.
        """
        fields = {k: v for k, v in table.items() if k not in CALL_KEYS}
        form_id = table.get("FormId", "BD_Customer")
        if form_id != "BD_Customer":
            raise ValueError(f"a customer table saves FormId 'BD_Customer', not {form_id!r}")
        operation = table.get("Operation", "BatchSave")
        if operation != "BatchSave":
            raise ValueError(f"the bridge saves with Operation 'BatchSave', not {operation!r}")
        flags = dict(SCHEME_SAVE_FLAGS)
        for key in ("IsAutoSubmitAndAudit", "IsVerifyBaseDataField"):
            if key in table:
                flags[key] = table[key]
        check_save_options(flags, "the template's options")
        return cls(
            fields=fields, lookups=lookups or {}, save_flags=flags, name_fallback=name_fallback
        )

    # -- applying -----------------------------------------------------------------------------

    def __call__(self, trade: TradeLike) -> Customer:
        """The customer for ``trade``; raises `SkipTrade` when there can be none."""
        number = self._number(trade)
        name = self._name(trade)
        create_org = self._text(trade, "FCreateOrgId", self.create_org)
        use_org = self._text(trade, "FUseOrgId", self.use_org)
        if "FDescription" in self.fields:
            description = self._optional_text(trade, "FDescription")
        else:
            description = lookup(self.description, number)
        extra = {
            key: resolve(spec, trade, target=key, lookups=self.lookups)
            for key, spec in self.fields.items()
            if key not in _MAIN
        }
        customer = Customer(
            number,
            name,
            create_org=create_org,
            use_org=use_org,
            description=description,
            extra=extra,
        )
        for step in self.steps:
            result = step(trade, customer)
            if not isinstance(result, Customer):
                raise TypeError(
                    f"transform step {getattr(step, '__name__', step)!r} returned "
                    f"{type(result).__name__}, not a Customer"
                )
            customer = result
        return customer

    def _number(self, trade: TradeLike) -> str:
        spec = self.fields.get("FNumber", "{{buyerCid}}")
        try:
            value = resolve(spec, trade, target="FNumber", lookups=self.lookups)
        except TemplateError as exc:
            raise SkipTrade(_missing_number_reason(spec, trade, exc)) from None
        text = wire_text(value)
        if value is not None and text is None:
            raise SkipTrade(f"FNumber is {type(value).__name__} {short_repr(value, 40)}, not text")
        if text is None or not text.strip():
            raise SkipTrade(_missing_number_reason(spec, trade, None))
        template = compile_template(spec) if isinstance(spec, str) else None
        if template is not None and len(template.parts) > 1 and template.single_field is None:
            # "HK-{{buyerCid}}" of a trade without a buyerCid is "HK-": one junk customer for
            # every such trade. Every placeholder of the number must hold something. (A number
            # that is one placeholder alone was checked above: it is not blank.)
            empty = template.empty_fields(trade)
            if empty:
                raise SkipTrade(
                    f"FNumber template {short_repr(spec, 40)} would give "
                    f"{short_repr(text.strip(), 40)}: {', '.join(empty)} "
                    f"{'is' if len(empty) == 1 else 'are'} missing or blank"
                )
        return text.strip()

    def _name(self, trade: TradeLike) -> str:
        spec = self.fields.get("FName", "{{buyerNick}}")
        try:
            name = wire_text(resolve(spec, trade, target="FName", lookups=self.lookups))
        except TemplateError:
            # A missing or non-text nickname is what the fallback is for.
            name = None
        if name is not None and name.strip():
            return name.strip()
        fallback = self.name_fallback
        if fallback is None:
            raise SkipTrade("buyerNick is empty and no name fallback is configured")
        value = resolve(fallback, trade, target="FName", lookups=self.lookups)
        text = wire_text(value)
        if text is None or not text.strip():
            raise SkipTrade("buyerNick is empty and the name fallback gave no name")
        return text.strip()

    def _text(self, trade: TradeLike, target: str, default: str) -> str:
        value = self._optional_text(trade, target) if target in self.fields else default
        if value is None or not value.strip():
            raise ValueError(f"{target} is empty")
        return value

    def _optional_text(self, trade: TradeLike, target: str) -> str | None:
        value = resolve(self.fields[target], trade, target=target, lookups=self.lookups)
        return optional_text(
            value, lambda: f"{target} is {type(value).__name__} {short_repr(value, 40)}, not text"
        )


_SCHEME_TRANSFORM = CustomerTransform()


def trade_to_customer(trade: TradeLike) -> Customer:
    """The integration scheme's mapping of one trade to one ``BD_Customer``.

    ``FName`` = ``buyerNick`` (``buyerCid`` when the nickname is empty), ``FNumber`` =
    ``buyerCid``, ``FCreateOrgId`` = ``FUseOrgId`` = ``"100"``, no ``FDescription`` (the scheme's
    collection is yours: pass it as ``CustomerTransform(description=...)``). A trade without a
    ``buyerCid`` raises `SkipTrade`, which the sync reports as skipped.
    """
    return _SCHEME_TRANSFORM(trade)


# -- one fetched trade, prepared --------------------------------------------------------------


@attrs.define(slots=True)  # not frozen: made for every trade, and frozen init costs 3x
class PreparedTrade:
    """What a trade gives on its own, whatever its place in the stream: its ids, and its
    customer or why it has none. Made as pages arrive; recorded in stream order by the ledger."""

    trade_id: str | None
    buyer_cid: str | None
    customer: Customer | None
    #: Why there is no customer: ``("skipped" | "failed", reason)``.
    failure: tuple[Literal["skipped", "failed"], str] | None = None
    order_key: Any = None
    #: Why ``order_by`` failed for this trade.
    order_error: str | None = None


def prepare_trade(
    trade: TradeLike, transform: Transform, order_by: Callable[[Any], Any] | None
) -> PreparedTrade:
    """The per-trade work that depends on no other trade (transform, checks, ids); never raises
    for bad data or a failing transform.

    It reads no ledger, so the async engine runs it for each page as soon as the page arrives,
    in whatever order the sub-windows deliver them.
    """
    try:
        fields = wire_fields(trade)
        cid = wire_text(fields.get("buyerCid"))
    except Exception:
        cid = None
    tid = trade_id(trade)
    buyer_cid = None if cid is None else cid[:200]
    try:
        customer = transform(trade)
        if not isinstance(customer, Customer):
            raise TypeError(
                f"the transform returned {type(customer).__name__}, not a k3cloud_client.Customer"
            )
        junk = junk_key(customer.number)
        if junk is not None:
            raise SkipTrade(f"{junk}: no customer is made of it")
        _encodable(customer.to_wire())
    except SkipTrade as skip:
        return PreparedTrade(
            tid, buyer_cid, None, ("skipped", skip.reason or "skipped by the transform")
        )
    except Exception as exc:  # a transform's bug or bad data: this trade fails, the run goes on
        return PreparedTrade(
            tid, buyer_cid, None, ("failed", f"transform failed: {error_text(exc)}")
        )
    order_key = order_error = None
    if order_by is not None:
        try:
            order_key = order_by(trade)
        except Exception as exc:
            order_error = error_text(exc)
    return PreparedTrade(tid, buyer_cid, customer, None, order_key, order_error)


def _encodable(model: Mapping[str, Any]) -> None:
    """Raise ValueError unless ``model`` can be sent (JSON, UTF-8: no lone surrogates, no NaN)."""
    if _surely_encodable(model):
        return
    try:
        json.dumps(model, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise ValueError(f"the customer cannot be sent as JSON: {exc}") from None


def _plain(value: Any) -> bool:
    """Whether ``value`` is a JSON scalar whose encoding cannot fail."""
    kind = type(value)
    if kind is str:
        # The only text that fails is text with a lone surrogate, which UTF-8 cannot encode.
        if value.isascii():
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if kind is float:
        return math.isfinite(value)
    return kind is int or kind is bool or value is None


def _surely_encodable(model: Mapping[str, Any]) -> bool:
    """Whether ``model`` is a dict of plain scalars and dicts of them (a customer's
    ``{"FNumber": org}`` references): the shape of nearly every customer, checked without
    encoding it. False means "encode it to find out", not "cannot be sent"."""
    if type(model) is not dict:
        return False
    for key, value in model.items():
        if not _plain(key):
            return False
        if type(value) is dict:
            for inner_key, inner_value in value.items():
                if not (_plain(inner_key) and _plain(inner_value)):
                    return False
        elif not _plain(value):
            return False
    return True
