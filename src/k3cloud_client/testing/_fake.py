"""``FakeK3Cloud``: the forms and their operations (``Save``, ``BatchSave``, ``Allocate``,
``Submit``/``Audit``/``UnAudit``/``Delete``, ``View``, the two queries) over the record store,
with ``BD_Customer``'s rules, behind the HTTP surface of ``_http``."""

from __future__ import annotations

import contextlib
import copy
import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._filter import check_field, parse_filter, parse_order, sort_by
from ._http import K3HttpSurface, Operation
from ._permissions import Permissions
from ._replies import DUPLICATE_NUMBER_MESSAGE, Fail, RowResults, error_entry, reply_status
from ._store import DEFAULT_ORGANIZATIONS, ORG_FORM_ID, REF_FIELDS, Form, Orgs, clone, org_number

# The wording of the organisation and allocation refusals below is this simulator's own (the
# real texts were not found); their MsgCodes follow the documented meanings.
_UNKNOWN_ORG_MESSAGE = "字段“{label}”的值[{number}]在系统中不存在"
_ORG_CHANGE_MESSAGE = "字段“{label}”保存后不允许修改"
_NOT_AUDITED_MESSAGE = "[{number}]未审核，不允许分配"
_NOT_MASTER_MESSAGE = "[{number}]不是创建组织的数据，不允许分配"
_ALREADY_ALLOCATED_MESSAGE = "[{number}]已分配到组织[{org}]"
_ORG_LABELS = {"FCreateOrgId": "创建组织", "FUseOrgId": "使用组织"}


class FakeK3Cloud(K3HttpSurface):
    """A strict in-memory K/3 Cloud (see the module docs).

    Authentication: requests with signed headers are checked with the real algorithm against
    ``acct_id``/``user_name``/``app_id``/``app_secret`` (timestamps within ``max_skew`` seconds of
    ``clock``); a mismatch gets HTTP 500 ``Fail to verify thirty passport``. Otherwise the request
    needs a session from ``ValidateUser`` (``password``), ``LoginByAppSecret`` or ``LoginBySign``;
    without a live one the reply is MsgCode 1. ``expire_sessions()`` ends every session.
    ``clock`` (the server's clock, also what every reply's ``Date`` header says) is ``fake.clock``.

    Organisations: ``organizations`` maps internal ids to numbers (default ``{1: "100"}``). A new
    ``BD_Customer`` is stored in its ``FUseOrgId`` (else its ``FCreateOrgId``, else
    ``default_org``, the first organisation unless told otherwise) with ``FMASTERID`` = its own
    ``FCUSTID``; ``Allocate`` copies it to other organisations. ``number_scope="use_org"`` (the
    default) lets a number exist once per use organisation; ``"account"`` once per account
    (allocated copies apart), for accounts whose coding rules forbid independent re-use.
    ``ORG_Organizations`` answers the two queries (and ``View``) with the organisations, fields
    ``FOrgID`` (the internal id), ``FNumber`` and ``FName`` (``组织<number>`` unless
    ``add_organization`` names it); it is read-only: any other operation on it is refused with
    MsgCode 12 (operation not allowed).

    Permissions: ``deny(form_id, *permissions)`` takes rights away from the user as a K/3 role
    would, ``allow(...)`` gives them back; each of ``PERMISSIONS`` governs operations:
    ``"query"`` (``ExecuteBillQuery``, ``BillQuery``, ``View``), ``"save"`` (``Save``,
    ``BatchSave``), ``"submit"``, ``"audit"`` (``Audit``, ``UnAudit``), ``"delete"``,
    ``"allocate"``. A denied operation is refused as a whole with MsgCode 2 (no permission) and
    ``NO_PERMISSION_MESSAGE``: a query in its error-as-a-row shape, anything else in a
    ``ResponseStatus``.
    """

    def __init__(
        self,
        *,
        acct_id: str,
        user_name: str,
        app_id: str | None = None,
        app_secret: str | None = None,
        password: str | None = None,
        lcid: int = 2052,
        clock: Callable[[], float] = time.time,
        max_skew: float = 86400,
        organizations: Mapping[int, str] = DEFAULT_ORGANIZATIONS,
        default_org: str | None = None,
        number_scope: str = "use_org",
    ) -> None:
        super().__init__(
            acct_id=acct_id,
            user_name=user_name,
            app_id=app_id,
            app_secret=app_secret,
            password=password,
            lcid=lcid,
            clock=clock,
            max_skew=max_skew,
        )
        if number_scope not in ("use_org", "account"):
            raise ValueError(f"number_scope is 'use_org' or 'account', not {number_scope!r}")
        self._orgs = Orgs(organizations, default_org)
        self.number_scope = number_scope
        self._forms: dict[str, Form] = {ORG_FORM_ID.upper(): Form(ORG_FORM_ID, self._orgs)}
        self._permissions = Permissions()

    # -- inspection and set-up -----------------------------------------------------------------

    @property
    def organizations(self) -> dict[int, str]:
        """The organisations: internal id -> number."""
        with self._lock:
            return dict(self._orgs.by_id)

    def add_organization(self, org_id: int, number: str, name: str | None = None) -> None:
        """Add an organisation (internal id ``org_id``, number ``number``, ``name``: by default
        ``组织<number>``), as an account gains one; ValueError if the id or number is taken."""
        with self._lock:
            self._orgs.add(org_id, number, name)
            self._forms[ORG_FORM_ID.upper()].load_organizations()

    def deny(self, form_id: str, *permissions: str) -> None:
        """Take ``permissions`` (see ``PERMISSIONS``) on ``form_id`` away from the user: the
        operations they govern are refused with MsgCode 2 until ``allow`` gives them back."""
        with self._lock:
            self._permissions.deny(form_id, permissions)

    def allow(self, form_id: str, *permissions: str) -> None:
        """Give back ``permissions`` on ``form_id`` that ``deny`` took (others stay denied)."""
        with self._lock:
            self._permissions.allow(form_id, permissions)

    def denied(self, form_id: str) -> set[str]:
        """The permissions on ``form_id`` the user lacks now."""
        with self._lock:
            return self._permissions.denied(form_id)

    def records(self, form_id: str) -> list[dict[str, Any]]:
        """Copies of the stored records of ``form_id``, in the order they were created."""
        with self._lock:
            form = self._forms.get(form_id.upper())
            return [copy.deepcopy(row) for row in form.rows.values()] if form else []

    def seed(self, form_id: str, rows: Iterable[Mapping[str, Any]]) -> list[int]:
        """Store ``rows`` as existing (audited unless they say otherwise); their new ids.

        ``BD_Customer`` rows land in their ``FUseOrgId`` as a save puts them (an organisation may
        be given as ``{"FNumber": "200"}`` or ``"200"``); ``FMASTERID`` defaults to the new id.
        ValueError for a number already held (see ``number_scope``) or an unknown organisation.
        """
        with self._lock:
            form = self._writable(form_id)
            ids = []
            for given in rows:
                row = copy.deepcopy(dict(given))
                if form.is_customer:
                    for key in REF_FIELDS:
                        if isinstance(row.get(key), str | int) and not isinstance(row[key], bool):
                            row[key] = {"FNumber": str(row[key])}
                    try:
                        self._place(row)
                    except Fail as fail:
                        raise ValueError(f"seed: {form_id}: {fail.message}") from None
                number = row.get("FNumber")
                if number is not None:
                    try:
                        master = row.get("FMASTERID")
                        self._check_number(form, row, set(), own_id=None, master=master)
                    except Fail:
                        where = f" in organisation {form.org_of(row)}" if form.is_customer else ""
                        raise ValueError(
                            f"seed: {form_id} number {number!r} already exists{where}"
                        ) from None
                row[form.id_key] = row.get(form.id_key) or form.new_id()
                if form.is_customer:
                    row["FMASTERID"] = row.get("FMASTERID") or row[form.id_key]
                row.setdefault("FDocumentStatus", "C")
                row.setdefault("FForbidStatus", "A")
                form.put(row)
                ids.append(row[form.id_key])
            return ids

    def allocate(
        self,
        form_id: str,
        number: str,
        *,
        to_orgs: Iterable[str],
        from_org: str | None = None,
        audited: bool = True,
    ) -> list[int]:
        """Allocate (分配) the record numbered ``number`` to the organisations numbered
        ``to_orgs`` as the ``Allocate`` operation does; the new copies' ids. The record is the
        creating organisation's copy unless ``from_org`` names another. ``audited`` copies are
        audited (``IsAutoSubmitAndAudit``). ValueError if the operation would refuse any."""
        with self._lock:
            form = self._writable(form_id)
            holders = form.holders(number)
            if from_org is not None:
                source = form.find(number=number, org=from_org)
            else:
                masters = [i for i in holders.values() if form.rows[i].get("FMASTERID") == i]
                source = form.rows[masters[0]] if masters else form.find(number=number)
            if source is None:
                raise ValueError(f"allocate: {form_id} has no record numbered {number!r}")
            ids = []
            for org in to_orgs:
                org_id = self._orgs.by_number.get(str(org))
                if org_id is None:
                    raise ValueError(f"allocate: unknown organisation number {org!r}")
                try:
                    copied = self._allocate_one(form, source[form.id_key], org_id, audited)
                except Fail as fail:
                    raise ValueError(f"allocate: {fail.message}") from None
                ids.append(copied[form.id_key])
            return ids

    def _operations(self) -> dict[str, Operation]:
        return {
            "Save": self._save,
            "BatchSave": self._batch_save,
            "Submit": lambda f, d: self._operate(f, d, self._submit_one, "submit"),
            "Audit": lambda f, d: self._operate(f, d, self._audit_one, "audit"),
            "UnAudit": lambda f, d: self._operate(f, d, self._unaudit_one, "audit"),
            "Delete": lambda f, d: self._operate(f, d, self._delete_one, "delete"),
            "View": self._view,
            "Allocate": self._allocate,
            "ExecuteBillQuery": lambda f, d: self._query(d, as_objects=False),
            "BillQuery": lambda f, d: self._query(d, as_objects=True),
        }

    def _form(self, form_id: Any, permission: str | None = None) -> Form:
        """The form named ``form_id`` (made on first use). With ``permission``, an operation
        needing it is about to work on the form: refused if the user lacks it (MsgCode 2) or
        the form is read-only and it is not ``"query"`` (MsgCode 12)."""
        if not isinstance(form_id, str) or not form_id:
            raise Fail("表单 ID 不能为空（formid）", code=5)
        key = form_id.upper()
        if key not in self._forms:
            self._forms[key] = Form(form_id, self._orgs)
        form = self._forms[key]
        if permission is not None:
            self._permissions.check(form, permission)
        return form

    def _writable(self, form_id: str) -> Form:
        """For the set-up methods: the form, unless it is read-only (ValueError)."""
        form = self._form(form_id)
        if form.read_only:
            raise ValueError(f"{form.form_id} is read-only: add_organization adds organisations")
        return form

    # -- saving ------------------------------------------------------------------------------------

    def _batch_save(self, form_id: Any, data: dict[str, Any]) -> Any:
        form = self._form(form_id, "save")
        models = data.get("Model")
        if not isinstance(models, list):
            raise Fail("BatchSave 的 Model 必须是数组", code=8, field="Model")
        return self._save_rows(form, models, data)

    def _save(self, form_id: Any, data: dict[str, Any]) -> Any:
        form = self._form(form_id, "save")
        model = data.get("Model")
        if not isinstance(model, dict):
            raise Fail("Save 的 Model 必须是对象", code=8, field="Model")
        reply = self._save_rows(form, [model], data)
        entities = reply["Result"]["ResponseStatus"]["SuccessEntitys"]
        if entities:
            reply["Result"]["Id"] = entities[0]["Id"]
            reply["Result"]["Number"] = entities[0]["Number"]
        return reply

    def _save_rows(self, form: Form, models: list[Any], data: dict[str, Any]) -> Any:
        update_fields = _field_list(data, "NeedUpDateFields")
        return_fields = _field_list(data, "NeedReturnFields")
        audited = bool(data.get("IsAutoSubmitAndAudit"))
        results = RowResults()
        returned: list[dict[str, Any]] = []
        numbers_in_call: set[tuple[str, str]] = set()
        for index, model in enumerate(models):
            try:
                row = self._save_one(form, model, update_fields, audited, numbers_in_call)
            except Fail as fail:
                results.refused(index, fail)
                continue
            results.done(index, row, form.id_key)
            returned.append({key: clone(row.get(key)) for key in return_fields})
        reply = results.reply()
        reply["Result"]["NeedReturnData"] = returned or [{}]
        return reply

    def _save_one(
        self,
        form: Form,
        model: Any,
        update_fields: list[str],
        audited: bool,
        numbers_in_call: set[tuple[str, str]],
    ) -> dict[str, Any]:
        if not isinstance(model, dict):
            raise Fail("Model 的元素必须是对象", code=8)
        for key in REF_FIELDS:
            if key in model and not (
                isinstance(model[key], dict) and isinstance(model[key].get("FNumber"), str | int)
            ):
                raise Fail(
                    f'字段 {key} 的值须为 {{"FNumber": ...}} 形式的基础资料引用', code=9, field=key
                )
        # ``model`` was parsed from this request's body: nothing else holds it or what it
        # contains, so the stored row may take its values without copying them.
        row_id = model.get(form.id_key)
        if row_id not in (None, 0, "", "0"):
            row = form.find(id=row_id)
            if row is None:
                raise Fail(
                    f"{form.id_key}={row_id} 的数据不存在，可能已被删除", code=10, field=form.id_key
                )
            fields = [
                f
                for f in (update_fields or list(model))
                if f in model and f not in (form.id_key, "FMASTERID")
            ]
            changed: dict[str, Any] = clone(row)
            changed.update({f: model[f] for f in fields})
            if form.is_customer:
                # An update works on this one record: its organisations stay what they are.
                for key in REF_FIELDS:
                    if key in fields and org_number(model[key]) != org_number(row.get(key)):
                        raise Fail(
                            _ORG_CHANGE_MESSAGE.format(label=_ORG_LABELS[key]), code=11, field=key
                        )
                    if key in fields and key in row:
                        changed[key] = row[key]
            self._check_number(
                form,
                changed,
                numbers_in_call,
                own_id=row[form.id_key],
                master=row.get("FMASTERID"),
            )
        else:
            changed = dict(model)
            changed.pop(form.id_key, None)
            changed.pop("FMASTERID", None)
            if changed.get("FNumber") in (None, ""):
                changed["FNumber"] = (
                    f"{'CUST' if form.is_customer else 'NO'}{len(form.rows) + 1:06d}"
                )
            if form.is_customer:
                if not changed.get("FName"):
                    raise Fail("字段“客户名称”是必填项", code=11, field="FName")
                self._place(changed)
            self._check_number(form, changed, numbers_in_call, own_id=None, master=None)
            changed[form.id_key] = form.new_id()
            if form.is_customer:
                changed["FMASTERID"] = changed[form.id_key]
            changed["FDocumentStatus"] = "A"
            changed.setdefault("FForbidStatus", "A")
        if audited:
            changed["FDocumentStatus"] = "C"
        numbers_in_call.add(self._number_key(form, changed))
        form.put(changed)
        return changed

    def _place(self, row: dict[str, Any]) -> None:
        """Give a new customer its organisations (use org: the given one, else the creating one,
        else the default), or refuse an unknown one."""
        use = org_number(row.get("FUseOrgId"))
        create = org_number(row.get("FCreateOrgId"))
        use = use or create or self._orgs.default
        for key, number in (("FCreateOrgId", create or use), ("FUseOrgId", use)):
            if number not in self._orgs.by_number:
                raise Fail(
                    _UNKNOWN_ORG_MESSAGE.format(label=_ORG_LABELS[key], number=number),
                    code=9,
                    field=key,
                )
            row[key] = {"FNumber": number}

    def _number_key(self, form: Form, row: dict[str, Any]) -> tuple[str, str]:
        """Where ``row``'s number must be unique: (organisation or "" for the account, number)."""
        org = form.org_of(row) if self.number_scope == "use_org" else ""
        return org, str(row.get("FNumber"))

    def _check_number(
        self,
        form: Form,
        row: dict[str, Any],
        numbers_in_call: set[tuple[str, str]],
        *,
        own_id: int | None,
        master: Any,
    ) -> None:
        """Refuse ``row``'s number if another record holds it where it must be unique: in the
        same use organisation, or (``number_scope="account"``) anywhere but in the copies of
        ``row``'s own master record."""
        number = str(row.get("FNumber"))
        holders = form.holders(number)
        if self.number_scope == "use_org" or not form.is_customer:
            holder = holders.get(form.org_of(row))
            clash = holder is not None and holder != own_id
        else:
            clash = any(
                i != own_id and (master is None or form.rows[i].get("FMASTERID") != master)
                for i in holders.values()
            )
        if clash or self._number_key(form, row) in numbers_in_call:
            raise Fail(DUPLICATE_NUMBER_MESSAGE.format(number=number), code=11, field="FNumber")

    # -- allocation --------------------------------------------------------------------------------

    def _allocate(self, form_id: Any, data: dict[str, Any]) -> Any:
        form = self._form(form_id, "allocate")
        if not form.is_customer:
            raise Fail(f"FakeK3Cloud 只模拟 BD_Customer 的分配，不支持 {form.form_id}", code=12)
        pk_ids = _id_list(data.get("PkIds"), "PkIds")
        org_ids = _id_list(data.get("TOrgIds"), "TOrgIds")
        audited = bool(data.get("IsAutoSubmitAndAudit"))
        results = RowResults()
        # One result per (record, organisation) pair, records outermost; DIndex is its position.
        for index, (pk, org_id) in enumerate(itertools.product(pk_ids, org_ids)):
            try:
                copied = self._allocate_one(form, pk, org_id, audited)
            except Fail as fail:
                results.refused(index, fail)
                continue
            results.done(index, copied, form.id_key)
        return results.reply()

    def _allocate_one(self, form: Form, pk: Any, org_id: Any, audited: bool) -> dict[str, Any]:
        """Copy record ``pk`` into organisation ``org_id`` (an internal id): a new id, the same
        number, creating organisation and ``FMASTERID``."""
        source = form.find(id=pk)
        if source is None:
            raise Fail(f"内码为[{pk}]的数据不存在", code=10)
        number = source.get("FNumber")
        try:
            target = self._orgs.by_id.get(int(org_id))
        except (TypeError, ValueError):
            target = None
        if target is None:
            raise Fail(f"组织内码为[{org_id}]的组织不存在", code=10)
        master = source.get("FMASTERID")
        if master != source[form.id_key]:
            raise Fail(_NOT_MASTER_MESSAGE.format(number=number), code=11)
        if source.get("FDocumentStatus") != "C":
            raise Fail(_NOT_AUDITED_MESSAGE.format(number=number), code=11)
        held = form.find(number=number, org=target)
        if held is not None and held.get("FMASTERID") == master:
            raise Fail(_ALREADY_ALLOCATED_MESSAGE.format(number=number, org=target), code=11)
        copied: dict[str, Any] = clone(source)
        copied["FUseOrgId"] = {"FNumber": target}
        self._check_number(form, copied, set(), own_id=None, master=master)
        copied[form.id_key] = form.new_id()
        copied["FDocumentStatus"] = "C" if audited else "A"
        copied["FForbidStatus"] = "A"
        form.put(copied)
        return copied

    # -- document operations -----------------------------------------------------------------------

    def _operate(
        self,
        form_id: Any,
        data: dict[str, Any],
        apply: Callable[[Form, dict[str, Any]], None],
        permission: str,
    ) -> Any:
        form = self._form(form_id, permission)
        numbers = data.get("Numbers") or []
        ids = data.get("Ids") or ""
        if isinstance(ids, str):
            ids = [i.strip() for i in ids.split(",") if i.strip()]
        if not isinstance(numbers, list) or not isinstance(ids, list) or not (numbers or ids):
            raise Fail("须给出 Numbers（数组）或 Ids（逗号分隔）", code=8)
        targets = [("number", n) for n in numbers] + [("id", i) for i in ids]
        org = self._context_org(data)
        results = RowResults()
        for index, (kind, key) in enumerate(targets):
            row = form.find(number=key, org=org) if kind == "number" else form.find(id=key)
            try:
                if row is None:
                    raise Fail(
                        f"{'编码' if kind == 'number' else '内码'}为[{key}]的数据不存在", code=10
                    )
                apply(form, row)
            except Fail as fail:
                results.refused(index, fail)
                continue
            # The row as found: ``Delete`` takes it out of the store, not its id or number.
            results.done(index, row, form.id_key)
        return results.reply()

    def _context_org(self, data: dict[str, Any]) -> str | None:
        """The organisation whose record a number names: ``CreateOrgId`` (an internal id; 0 or
        absent: none, and ``Form.find`` takes the default organisation's)."""
        value: Any = data.get("CreateOrgId")
        if value in (None, "", 0, "0"):
            return None
        try:
            number = self._orgs.by_id.get(int(value))
        except (TypeError, ValueError):
            number = None
        if number is None:
            raise Fail(f"组织内码为[{value}]的组织不存在", code=10, field="CreateOrgId")
        return number

    @staticmethod
    def _transition(row: dict[str, Any], allowed: str, to: str, verb: str) -> None:
        status = row.get("FDocumentStatus", "A")
        if status not in allowed:
            raise Fail(f"[{row.get('FNumber')}] 单据状态为 {status}，不允许{verb}", code=11)
        row["FDocumentStatus"] = to

    def _submit_one(self, form: Form, row: dict[str, Any]) -> None:
        self._transition(row, "AD", "B", "提交")

    def _audit_one(self, form: Form, row: dict[str, Any]) -> None:
        self._transition(row, "B", "C", "审核")

    def _unaudit_one(self, form: Form, row: dict[str, Any]) -> None:
        self._transition(row, "C", "D", "反审核")

    def _delete_one(self, form: Form, row: dict[str, Any]) -> None:
        self._transition(row, "AD", row.get("FDocumentStatus", "A"), "删除")
        form.remove(row)

    def _view(self, form_id: Any, data: dict[str, Any]) -> Any:
        form = self._form(form_id, "query")
        if data.get("Id") not in (None, "", 0):
            row = form.find(id=data["Id"])
        elif data.get("Number"):
            row = form.find(number=data["Number"], org=self._context_org(data))
        else:
            raise Fail("须给出 Number 或 Id", code=8)
        if row is None:
            raise Fail("单据不存在或已被删除", code=10)
        reply = reply_status()
        document = copy.deepcopy(row)
        document.update({"Id": row[form.id_key], "Number": row.get("FNumber")})
        reply["Result"]["Result"] = document
        return reply

    # -- queries -----------------------------------------------------------------------------------

    def _query(self, data: dict[str, Any], *, as_objects: bool) -> Any:
        try:
            form = self._form(data.get("FormId"), "query")
            keys = [k.strip() for k in str(data.get("FieldKeys") or "").split(",") if k.strip()]
            if not keys:
                raise Fail("FieldKeys 不能为空", code=8)
            known = form.known_fields()
            for key in keys:
                check_field(key, known)
            where = parse_filter(str(data.get("FilterString") or ""), known, form.value)
            order = parse_order(str(data.get("OrderString") or ""), known)
            top, start, limit = (
                _non_negative(data.get(name), name) for name in ("TopRowCount", "StartRow", "Limit")
            )
        except Fail as fail:
            return [
                [reply_status(errors=[error_entry(fail.message, 0, fail.field)], code=fail.code)]
            ]
        rows = [row for row in form.rows.values() if where(row)]
        for key, descending in reversed(order):
            rows.sort(key=sort_by(key, form.value), reverse=descending)
        if top:
            rows = rows[:top]
        rows = rows[start : start + limit] if limit else rows[start:]
        value = form.value
        if as_objects:
            return [{key: value(row, key) for key in keys} for row in rows]
        return [[value(row, key) for key in keys] for row in rows]


def _field_list(data: dict[str, Any], name: str) -> list[str]:
    """``NeedUpDateFields`` / ``NeedReturnFields``: absent, or a list of field keys (text)."""
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Fail(f"{name} 必须是字段标识（文本）的数组，收到 {_shape(value)}", code=8, field=name)
    return value


def _shape(value: Any) -> str:
    """A short description of what arrived (a type, and for a list its items' types)."""
    if isinstance(value, list):
        kinds = sorted({type(item).__name__ for item in value})
        return f"list of {', '.join(kinds)}" if kinds else "list"
    return type(value).__name__


def _id_list(value: Any, name: str) -> list[str]:
    """``"1,2"`` (or one integer) -> ``["1", "2"]``: a comma-separated list of internal ids."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise Fail(
            f"{name} 须为逗号分隔的内码文本，收到 {type(value).__name__}", code=8, field=name
        )
    ids = [part.strip() for part in value.split(",") if part.strip()]
    if not ids:
        raise Fail(f"{name} 不能为空", code=8, field=name)
    return ids


def _non_negative(value: object, name: str) -> int:
    """A row count: absent, an integer, or its digits as text (as Json.NET reads an ``int``)."""
    if value is None or value == "":
        return 0
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # left as text: refused below
            value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Fail(f"{name} 必须是整数", code=8, field=name)
    if value < 0:
        raise Fail(f"{name} 不能为负数", code=8, field=name)
    return value


def customer_rows(count: int, *, prefix: str = "C", start: int = 1) -> list[dict[str, Any]]:
    """``count`` ``BD_Customer`` model objects numbered ``C00001``..., for seeding and tests."""
    return [
        {
            "FNumber": f"{prefix}{n:05d}",
            "FName": f"Customer {n}",
            "FCreateOrgId": {"FNumber": "100"},
            "FUseOrgId": {"FNumber": "100"},
        }
        for n in range(start, start + count)
    ]
