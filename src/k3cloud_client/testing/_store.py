"""The simulator's record store: the account's organisations, and each form's records by
internal id with a number index per use organisation. The organisation form
(``ORG_Organizations``) is read-only: its records are the organisations themselves."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from typing import Any

#: The organisations of a new fake: internal id -> organisation number (the main org, "100").
DEFAULT_ORGANIZATIONS: Mapping[int, str] = {1: "100"}
#: Fields ``BD_Customer`` has besides the ones found in stored records.
_CUSTOMER_FIELDS = frozenset(
    {
        "FCUSTID",
        "FMASTERID",
        "FNumber",
        "FName",
        "FShortName",
        "FDescription",
        "FCreateOrgId",
        "FUseOrgId",
        "FDocumentStatus",
        "FForbidStatus",
        "FCustTypeId",
        "FGroup",
        "FTEL",
        "FADDRESS",
    }
)
_GENERIC_FIELDS = frozenset({"FID", "FNumber", "FName", "FDocumentStatus", "FForbidStatus"})
REF_FIELDS = ("FCreateOrgId", "FUseOrgId")
#: The organisation form: queried for the organisations, never written through the API.
ORG_FORM_ID = "ORG_Organizations"
#: Its fields: the internal id (what ``FUseOrgId`` holds), the number and the name.
ORG_FIELDS = ("FOrgID", "FNumber", "FName")


class Orgs:
    """The account's organisations: internal id <-> number, and the one used by default."""

    def __init__(self, table: Mapping[int, str], default: str | None) -> None:
        self.by_id: dict[int, str] = {}
        self.by_number: dict[str, int] = {}
        #: internal id -> name (``FName``)
        self.names: dict[int, str] = {}
        for org_id, number in table.items():
            self.add(org_id, number)
        if not self.by_id:
            raise ValueError("organizations needs at least one organisation")
        self.default = next(iter(self.by_id.values())) if default is None else default
        if self.default not in self.by_number:
            raise ValueError(f"default_org {default!r} is not one of {sorted(self.by_number)}")

    def add(self, org_id: int, number: str, name: str | None = None) -> None:
        """Add an organisation; ``name`` defaults to ``组织<number>``."""
        if isinstance(org_id, bool) or not isinstance(org_id, int) or org_id <= 0:
            raise ValueError(f"organisation ids are positive integers, got {org_id!r}")
        if not isinstance(number, str) or not number:
            raise ValueError(f"organisation numbers are non-empty text, got {number!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"organisation names are non-empty text, got {name!r}")
        if org_id in self.by_id or number in self.by_number:
            raise ValueError(f"organisation ids and numbers must differ: {org_id!r} {number!r}")
        self.by_id[org_id] = number
        self.by_number[number] = org_id
        self.names[org_id] = name or f"组织{number}"


def org_number(reference: Any) -> str | None:
    """The organisation number in a ``{"FNumber": ...}`` reference (None if absent or empty)."""
    if isinstance(reference, dict) and reference.get("FNumber") not in (None, ""):
        return str(reference["FNumber"])
    return None


class Form:
    """One form's records, by internal id, with a number index per use organisation.

    ``BD_Customer`` records belong to organisations (``FUseOrgId``); other forms keep one flat
    index (organisation ``""``). ``ORG_Organizations`` is ``read_only``: its records are
    ``orgs``, copied by ``load_organizations``.
    """

    def __init__(self, form_id: str, orgs: Orgs) -> None:
        self.form_id = form_id
        self.orgs = orgs
        self.is_customer = form_id.upper() == "BD_CUSTOMER"
        self.read_only = form_id.upper() == ORG_FORM_ID.upper()
        self.id_key = "FCUSTID" if self.is_customer else "FOrgID" if self.read_only else "FID"
        self.rows: dict[int, dict[str, Any]] = {}
        #: number -> {use organisation number: internal id}
        self.numbers: dict[str, dict[str, int]] = {}
        self._ids = itertools.count(100001)
        if self.read_only:
            self.load_organizations()

    def new_id(self) -> int:
        return next(self._ids)

    def load_organizations(self) -> None:
        """Make the records of the organisation form the organisations held now."""
        self.rows.clear()
        self.numbers.clear()
        for org_id, number in self.orgs.by_id.items():
            self.put({"FOrgID": org_id, "FNumber": number, "FName": self.orgs.names[org_id]})

    def known_fields(self) -> set[str]:
        if self.read_only:  # exactly its fields: nothing stored there adds any
            return set(ORG_FIELDS)
        known = set(_CUSTOMER_FIELDS if self.is_customer else _GENERIC_FIELDS) | {self.id_key}
        for row in self.rows.values():
            known.update(row)
        return known

    def org_of(self, row: dict[str, Any]) -> str:
        return (org_number(row.get("FUseOrgId")) or "") if self.is_customer else ""

    def holders(self, number: Any) -> dict[str, int]:
        """The records numbered ``number``: use organisation -> internal id."""
        return self.numbers.get(str(number), {})

    def find(
        self, *, number: Any = None, id: Any = None, org: str | None = None
    ) -> dict[str, Any] | None:
        """By id, or by number in ``org`` (without one: the default organisation's record, else
        the first one created)."""
        if id is not None:
            try:
                return self.rows.get(int(id))
            except (TypeError, ValueError):
                return None
        holders = self.holders(number)
        if org is not None and self.is_customer:
            row_id = holders.get(org)
        else:
            row_id = holders.get(self.orgs.default if self.is_customer else "")
            if row_id is None and holders:
                row_id = min(holders.values())
        return None if row_id is None else self.rows[row_id]

    def value(self, row: dict[str, Any], key: str) -> Any:
        """The value a query returns for ``key``: a bare organisation field is the internal id,
        as on a real server (``FUseOrgId.FNumber`` is the number)."""
        if self.is_customer and key in REF_FIELDS:
            number = org_number(row.get(key))
            return None if number is None else self.orgs.by_number.get(number)
        return field_value(row, key)

    def put(self, row: dict[str, Any]) -> None:
        row_id = row[self.id_key]
        old = self.rows.get(row_id)
        if old is not None:
            self._unindex(old)
        self.rows[row_id] = row
        if row.get("FNumber") is not None:
            self.numbers.setdefault(str(row["FNumber"]), {})[self.org_of(row)] = row_id

    def remove(self, row: dict[str, Any]) -> None:
        del self.rows[row[self.id_key]]
        self._unindex(row)

    def _unindex(self, row: dict[str, Any]) -> None:
        number = str(row.get("FNumber"))
        holders = self.numbers.get(number)
        org = self.org_of(row)
        if holders is not None and holders.get(org) == row[self.id_key]:
            del holders[org]
            if not holders:
                del self.numbers[number]


def clone(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars), several times cheaper than
    ``copy.deepcopy``, which it falls back to for anything else (data given to ``seed``)."""
    kind = type(value)
    if kind is dict:
        return {key: clone(item) for key, item in value.items()}
    if kind is list:
        return [clone(item) for item in value]
    if kind in _SCALARS:
        return value
    return copy.deepcopy(value)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def field_value(row: dict[str, Any], key: str) -> Any:
    """``row[key]``; for ``FUseOrgId.FNumber`` (or a bare reference field), the number in it."""
    head, _, tail = key.partition(".")
    value = row.get(head)
    if isinstance(value, dict):
        return value.get(tail or "FNumber")
    return None if tail else value
