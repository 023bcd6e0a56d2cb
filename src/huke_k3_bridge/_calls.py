"""The K/3 Cloud client call each of the ledger's operations becomes, and how its reply is read.

The engine's side of an operation: ``k3.iter_bill_query`` for an :class:`ExistenceQuery` (its
rows read into a :data:`Found`), ``k3.batch_save`` for a :class:`SaveBatch`. The same for the
sync and the async client: only the engine's way of waiting differs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from _huke_k3_core import plural, short_repr, wire_text
from k3cloud_client import filters

from ._operations import ExistenceQuery, Found, Operation, SaveBatch, operation_size
from ._transform import save_arguments

logger = logging.getLogger("huke_k3_bridge")

#: The query that tells whether customers exist: internal id, number and use organisation
#: (asked for, not only filtered on: a row of another organisation is never taken for the
#: customer's own, even from a server that ignores part of the filter)...
EXISTENCE_ORG_FIELD = "FUseOrgId"
EXISTENCE_FIELDS = f"FCUSTID,FNumber,{EXISTENCE_ORG_FIELD}.FNumber"
#: ...restricted to the customer's use organisation (by its number), read page by page.
EXISTENCE_PAGE = 2000
#: Fields never sent in ``NeedUpDateFields``: the key, the number and the organisations, which
#: K/3 Cloud fixes when the customer is created.
_NOT_UPDATED = frozenset({"FCUSTID", "FNumber", "FCreateOrgId", "FUseOrgId"})


@attrs.frozen
class K3Call:
    """One operation as a client call: the method, its arguments, and how its reply is read."""

    op: ExistenceQuery | SaveBatch
    method: Literal["iter_bill_query", "batch_save"]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    @property
    def rows(self) -> bool:
        """Whether the reply is rows (pages of an iterator) rather than one result."""
        return self.method == "iter_bill_query"

    def send(self, k3: Any) -> Any:
        """Make the call on ``k3``, a sync or an async client: what the method returns."""
        return getattr(k3, self.method)(*self.args, **self.kwargs)

    def read(self, reply: Any) -> Any:
        """The operation's result from the call's reply (a query's rows: every page of them)."""
        if isinstance(self.op, ExistenceQuery):
            return rows_to_found(reply, self.op.org)
        return reply


@attrs.frozen
class Calls:
    """The calls of one run's operations: on its form, with its transform's save flags."""

    form_id: str
    save_flags: Mapping[str, Any]

    def of(self, op: ExistenceQuery | SaveBatch) -> K3Call:
        if isinstance(op, ExistenceQuery):
            return K3Call(op, "iter_bill_query", *existence_query_call(op, self.form_id))
        return K3Call(op, "batch_save", *save_call(op, self.form_id, self.save_flags))


def failed(op: Operation, exc: Exception) -> Exception:
    """The result of a call that raised: the exception itself, recorded against its rows (the
    run goes on)."""
    what = "Lookup" if isinstance(op, ExistenceQuery) else "Save"
    logger.warning("%s of %s failed: %s", what, plural(operation_size(op), "customer"), exc)
    return exc


def save_call(
    op: SaveBatch, form_id: str, save_flags: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments of ``batch_save`` for ``op``."""
    kwargs: dict[str, Any] = {
        "chunk_size": max(len(op.customers), 1),
        **save_arguments(save_flags),
    }
    if op.kind == "update":
        keys: dict[str, None] = {}
        for customer in op.customers:
            keys.update(dict.fromkeys(k for k in customer.to_wire() if k not in _NOT_UPDATED))
        kwargs["need_update_fields"] = list(keys)
    return (form_id, list(op.customers)), kwargs


def existence_query_call(
    op: ExistenceQuery, form_id: str
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments of ``iter_bill_query`` for ``op``: the numbers, in the customer's use
    organisation only (another organisation's copy is another record), every page."""
    condition = filters.in_("FNumber", op.numbers)
    if op.org:
        condition = filters.and_(condition, filters.eq(f"{EXISTENCE_ORG_FIELD}.FNumber", op.org))
    return (form_id, EXISTENCE_FIELDS), {
        "filter_string": condition,
        "order_string": "FCUSTID",
        "page_size": EXISTENCE_PAGE,
    }


def rows_to_found(rows: Iterable[Any], org: str = "") -> Found:
    """The ids per number in the rows of an existence query (``EXISTENCE_FIELDS``) in
    organisation ``org``.

    A row of another organisation is left out. A row without the organisation column is an
    error (``ValueError``, the query fails): which organisation it belongs to cannot be told.
    """
    found: Found = {}
    for row in rows:
        if not isinstance(row, list | tuple) or len(row) < 2:
            continue
        cid, number = row[0], row[1]
        text = wire_text(number)
        if text is None or isinstance(cid, bool) or not isinstance(cid, int | str):
            continue
        if org:
            if len(row) < 3:
                raise ValueError(
                    f"the lookup's reply has rows without {EXISTENCE_ORG_FIELD}.FNumber (asked for "
                    f"{EXISTENCE_FIELDS}), e.g. {short_repr(list(row), 80)}: which organisation a "
                    "customer belongs to cannot be told"
                )
            if wire_text(row[2]) != org:
                continue
        ids = found.setdefault(text, [])
        if cid not in ids:
            ids.append(cid)
    return found
