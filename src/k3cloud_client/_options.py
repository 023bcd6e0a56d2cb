"""The options of a save and of a query: each declared once, as a frozen class built once per
call from the keyword arguments users write (or given whole as ``options=``), and turned into
its wire form here.

A new save option is one field of ``SaveOptions`` and one key of ``SaveKwargs``; a new query
option one field of ``QueryOptions`` and one key of ``QueryKwargs`` / ``PagedQueryKwargs``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import attrs
from typing_extensions import TypedDict

from _huke_k3_core import FrozenDict

from ._wire import check_form_id
from .filters import field_key

__all__ = [
    "DEFAULT_MAX_PAGES",
    "DEFAULT_PAGE_SIZE",
    "MAX_LIMIT",
    "FieldKeys",
    "PagedQueryKwargs",
    "QueryKwargs",
    "QueryOptions",
    "SaveKwargs",
    "SaveOptions",
    "check_range",
    "wire_options",
]

#: Rows per ExecuteBillQuery page unless told otherwise.
DEFAULT_PAGE_SIZE = 2000
#: The largest ``Limit`` the server documents.
MAX_LIMIT = 10_000
#: Default cap on the pages one ``iter_bill_query`` may fetch (a server ignoring ``StartRow``
#: would otherwise page forever).
DEFAULT_MAX_PAGES = 10_000
#: The largest row number or count: the server reads them as 32-bit integers.
MAX_ROW = 2**31 - 1

#: The field keys of a query: ``"FNumber,FName"`` or ``["FNumber", "FName"]``.
FieldKeys = str | Sequence[str]

# -- wire names --------------------------------------------------------------------------------

#: Option names whose wire spelling the generic snake_case -> PascalCase rule gets wrong.
_WIRE_NAMES = {"need_update_fields": "NeedUpDateFields"}
_RESERVED = frozenset({"Model", "formid", "FormId"})


def wire_option(name: str) -> str:
    """``is_entry_batch_fill`` -> ``IsEntryBatchFill``; a name already in wire form is kept."""
    if name in _WIRE_NAMES:
        return _WIRE_NAMES[name]
    if name[:1].isupper():
        return name
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def wire_options(named: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """The ``data`` keys beside ``Model``: named options (None = left out) then ``extra`` ones."""
    options = {wire_option(k): v for k, v in named.items() if v is not None}
    for name, value in extra.items():
        key = wire_option(name)
        if key in _RESERVED:
            raise TypeError(f"{name!r} cannot be passed as an option: the SDK sets it")
        if key in options:
            raise TypeError(f"option {name!r} repeats a named argument ({key})")
        options[key] = value
    return options


# -- saves -------------------------------------------------------------------------------------


class SaveKwargs(TypedDict, total=False):
    """The keyword arguments of ``batch_save`` and ``save`` that set ``SaveOptions`` fields (see
    there). At run time any other keyword is an extra option as well (``is_new_option=True`` is
    sent as ``IsNewOption``); typed code puts those in ``extra``."""

    need_update_fields: Sequence[str] | None
    need_return_fields: Sequence[str] | None
    is_auto_submit_and_audit: bool
    is_verify_base_data_field: bool
    is_delete_entry: bool
    validate_flag: bool
    number_search: bool
    batch_count: int | None
    interation_flags: str | None
    is_entry_batch_fill: bool | None
    is_auto_adjust_field: bool | None
    ignore_interation_flag: bool | None
    is_control_precision: bool | None
    validate_repeat_json: bool | None
    sub_system_id: str | None
    extra: Mapping[str, Any]


def _field_names(value: Sequence[str] | None) -> tuple[str, ...] | None:
    # An empty list asks for nothing: not sent, as None.
    return tuple(value) if value else None


def _frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return FrozenDict(value)


@attrs.frozen
class SaveOptions:
    """The options of a ``BatchSave`` or ``Save`` call, with the documented defaults.

    ``need_update_fields`` (sent as ``NeedUpDateFields``) names the fields an update changes,
    ``need_return_fields`` those the reply returns; ``None`` sends neither. ``batch_count``,
    ``interation_flags`` (sic, as on the wire) and the other documented options
    (``is_entry_batch_fill`` -> ``IsEntryBatchFill``, ``is_auto_adjust_field``,
    ``ignore_interation_flag``, ``is_control_precision``, ``validate_repeat_json``,
    ``sub_system_id``) are sent only when given. ``extra`` holds any other option, spelled in
    snake_case or in wire form (``{"is_new_option": True}`` is sent as ``IsNewOption``).

    The clients build one from their keyword arguments; pass one as ``options=`` to reuse it
    (keyword arguments given with it take precedence).
    """

    need_update_fields: tuple[str, ...] | None = attrs.field(default=None, converter=_field_names)
    need_return_fields: tuple[str, ...] | None = attrs.field(default=None, converter=_field_names)
    is_auto_submit_and_audit: bool = False
    is_verify_base_data_field: bool = False
    is_delete_entry: bool = True
    validate_flag: bool = True
    number_search: bool = True
    batch_count: int | None = None
    interation_flags: str | None = None
    # The Web API's other documented options: None leaves each out, so the server's default holds.
    is_entry_batch_fill: bool | None = None
    is_auto_adjust_field: bool | None = None
    ignore_interation_flag: bool | None = None
    is_control_precision: bool | None = None
    validate_repeat_json: bool | None = None
    sub_system_id: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen, hash=False)

    @classmethod
    def build(cls, options: SaveOptions | None, keywords: Mapping[str, Any]) -> SaveOptions:
        """``options`` (the defaults when None) with a call's keyword arguments on top: a
        keyword that names no field is an extra option."""
        base = _check_options(cls, options) or _DEFAULT_SAVE
        if not keywords:
            return base
        declared: dict[str, Any] = {}
        extra = dict(base.extra)
        for name, value in keywords.items():
            if name in _SAVE_FIELDS:
                declared[name] = value
            elif name == "extra":
                extra.update(value)
            else:
                extra[name] = value
        return attrs.evolve(base, **declared, extra=extra)

    def to_wire(self) -> dict[str, Any]:
        """The ``data`` keys beside ``Model``, in the documented order, then the extra ones;
        TypeError for an extra option the SDK sets itself or one that repeats a field."""
        named = {
            "need_update_fields": _as_list(self.need_update_fields),
            "need_return_fields": _as_list(self.need_return_fields),
            "is_auto_submit_and_audit": self.is_auto_submit_and_audit,
            "is_verify_base_data_field": self.is_verify_base_data_field,
            "is_delete_entry": self.is_delete_entry,
            "validate_flag": self.validate_flag,
            "number_search": self.number_search,
            "batch_count": self.batch_count,
            "interation_flags": self.interation_flags,
            "is_entry_batch_fill": self.is_entry_batch_fill,
            "is_auto_adjust_field": self.is_auto_adjust_field,
            "ignore_interation_flag": self.ignore_interation_flag,
            "is_control_precision": self.is_control_precision,
            "validate_repeat_json": self.validate_repeat_json,
            "sub_system_id": self.sub_system_id,
        }
        return wire_options(named, self.extra)


def _as_list(names: tuple[str, ...] | None) -> list[str] | None:
    return None if names is None else list(names)


_DEFAULT_SAVE = SaveOptions()
_SAVE_FIELDS = frozenset(field.name for field in attrs.fields(SaveOptions)) - {"extra"}


# -- queries -----------------------------------------------------------------------------------


class _QueryKwargs(TypedDict, total=False):
    filter_string: str
    order_string: str
    start_row: int
    top_row_count: int


class QueryKwargs(_QueryKwargs, total=False):
    """The keyword arguments of ``execute_bill_query`` and ``bill_query`` (``QueryOptions``
    fields): one call's ``Limit`` is ``limit``."""

    limit: int


class PagedQueryKwargs(_QueryKwargs, total=False):
    """The keyword arguments of ``iter_bill_query`` (``QueryOptions`` fields): each page's
    ``Limit`` is ``page_size`` (the field ``limit``), at most ``max_pages`` pages."""

    page_size: int
    max_pages: int


_ONE_CALL_KEYWORDS = QueryKwargs.__optional_keys__
_PAGED_KEYWORDS = PagedQueryKwargs.__optional_keys__


@attrs.frozen
class QueryOptions:
    """What a bill query asks beside the form and its field keys.

    ``filter_string`` and ``order_string`` are SQL-like text (build the filter with
    ``k3cloud_client.filters``); ``start_row`` is the first row, ``top_row_count`` caps the rows
    the server considers (0: all). ``limit`` is the rows of one call: ``Limit`` of
    ``execute_bill_query``/``bill_query``, the page size of ``iter_bill_query`` (its keyword
    ``page_size``), which fetches at most ``max_pages`` pages.

    The clients build one from their keyword arguments; pass one as ``options=`` to reuse it
    (keyword arguments given with it take precedence).
    """

    filter_string: str = ""
    order_string: str = ""
    start_row: int = 0
    limit: int = DEFAULT_PAGE_SIZE
    top_row_count: int = 0
    max_pages: int = DEFAULT_MAX_PAGES

    @classmethod
    def build(
        cls,
        options: QueryOptions | None,
        keywords: Mapping[str, Any],
        *,
        method: str,
        paged: bool = False,
    ) -> QueryOptions:
        """``options`` (the defaults when None) with the keyword arguments ``method`` took on
        top; TypeError for a keyword ``method`` does not take, as Python raises it."""
        base = _check_options(cls, options) or _DEFAULT_QUERY
        if not keywords:
            return base
        accepted = _PAGED_KEYWORDS if paged else _ONE_CALL_KEYWORDS
        values = dict(keywords)
        for name in values:
            if name not in accepted:
                raise TypeError(f"{method}() got an unexpected keyword argument {name!r}")
        if "page_size" in values:
            values["limit"] = values.pop("page_size")
        return attrs.evolve(base, **values)

    def body(self, form_id: str, field_keys: FieldKeys) -> dict[str, Any]:
        """The ``ExecuteBillQuery``/``BillQuery`` body; ValueError for a value the server would
        refuse."""
        check_form_id(form_id)
        check_range("start_row", self.start_row, 0, MAX_ROW)
        check_range("limit", self.limit, 0, MAX_LIMIT)
        check_range("top_row_count", self.top_row_count, 0, MAX_ROW)
        return {
            "data": {
                "FormId": form_id,
                "FieldKeys": _wire_field_keys(field_keys),
                "FilterString": self.filter_string,
                "OrderString": self.order_string,
                "TopRowCount": self.top_row_count,
                "StartRow": self.start_row,
                "Limit": self.limit,
            }
        }


_DEFAULT_QUERY = QueryOptions()


def _wire_field_keys(field_keys: FieldKeys) -> str:
    keys = field_keys.split(",") if isinstance(field_keys, str) else list(field_keys)
    keys = [k.strip() for k in keys]
    if not keys or not all(keys):
        raise ValueError(f"field_keys must name at least one field, got {field_keys!r}")
    return ",".join(field_key(k) for k in keys)


def check_range(name: str, value: int, low: int, high: int) -> None:
    """ValueError naming ``name`` unless ``value`` is an integer from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")


_O = TypeVar("_O")


def _check_options(cls: type[_O], options: object) -> _O | None:
    if options is None:
        return None
    if not isinstance(options, cls):
        raise TypeError(f"options= takes a {cls.__name__}, not {type(options).__name__}")
    return options
