"""``FakeK3Cloud``: a strict, in-memory K/3 Cloud Web API for tests.

It verifies what the real server verifies (the signed headers with the real algorithm, the
session of the session logins), stores forms in memory with ``BD_Customer``'s rules (one record
per use organisation, ``FNumber`` unique per use organisation, ``Allocate`` copying a record to
other organisations, per-row ``DIndex`` results, updates by ``FCUSTID``, document status), answers
``ExecuteBillQuery``/``BillQuery`` over the store with a real FilterString parser (never ``eval``),
and injects faults on demand. Use it behind ``httpx.MockTransport`` (``fake.transport()``) or a
real socket (``with fake.serve() as server: server.url``). Thread-safe.

It serves only the real routes, ``/k3cloud/Kingdee.BOS.WebApi.ServicesStub.<Service>.<Method>
.common.kdsvc`` (the ``k3cloud`` folder in any case, as IIS does), and answers any other path with
HTTP 404, so a wrong server URL fails in tests as it does in production. Every malformed request
gets a K/3-shaped error reply, never a dropped connection: a body that is not strict JSON
(``NaN``, ``Infinity``, numbers beyond a double, nesting deeper than ``MAX_JSON_DEPTH``) or field
lists that are not lists of text get MsgCode 8; a ``FilterString`` nested deeper than
``MAX_FILTER_DEPTH`` parentheses gets MsgCode 4.

```python
from k3cloud_client import Customer, K3CloudClient
from k3cloud_client.testing import FakeK3Cloud, TEST_APP_ID, TEST_APP_SECRET
import httpx

fake = FakeK3Cloud(acct_id="acct", user_name="api", app_id=TEST_APP_ID, app_secret=TEST_APP_SECRET)
client = K3CloudClient(
    "http://k3.test/k3cloud/", acct_id="acct", user_name="api", app_id=TEST_APP_ID,
    app_secret=TEST_APP_SECRET, http_client=httpx.Client(transport=fake.transport()),
)
```
"""

from __future__ import annotations

import base64
import collections
import contextlib
import copy
import hmac
import itertools
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

import httpx

from _huke_k3_core import dumps
from _huke_k3_core.testing import MAX_JSON_DEPTH, Fault, FaultInjectingSimulator, json_too_deep

from ._errors import PASSPORT_FAILURE
from ._signing import (
    AUTH_VERSION,
    SIGNED_HEADER_NAMES,
    decode_client_secret,
    login_sign,
    sig,
    split_app_id,
    string_to_sign,
)
from ._wire import AUTH_SERVICE, DYNAMIC_FORM_SERVICE, SERVICE_SUFFIX, SESSION_COOKIE

__all__ = [
    "DEFAULT_ORGANIZATIONS",
    "DUPLICATE_NUMBER_MESSAGE",
    "MAX_FILTER_DEPTH",
    "MAX_JSON_DEPTH",
    "PASSPORT_FAILURE",
    "SESSION_LOST_MESSAGE",
    "TEST_ACCT_ID",
    "TEST_APP_ID",
    "TEST_APP_SECRET",
    "TEST_USER_NAME",
    "FakeK3Cloud",
    "Fault",
    "customer_rows",
]

#: The official SDK's public demo credentials (no real server accepts them).
TEST_ACCT_ID = "5db25ac8d2b819"
TEST_USER_NAME = "webapi"
TEST_APP_ID = "204399_72epSbtEQMC92Vwt2d3LRa9LRqSc1tqJ"
TEST_APP_SECRET = "fb7d46647ac346dbb5fcd45b65512a45"

#: The real server's text for a duplicate number (format with the number).
DUPLICATE_NUMBER_MESSAGE = "违反字段唯一性要求：编码唯一。[{number}]在当前系统中已经被使用。"
SESSION_LOST_MESSAGE = "会话信息已丢失，请重新登录"
#: The organisations of a new fake: internal id -> organisation number (the main org, "100").
DEFAULT_ORGANIZATIONS: Mapping[int, str] = {1: "100"}
# The wording of the organisation and allocation refusals below is this simulator's own (the
# real texts were not found); their MsgCodes follow the documented meanings.
_UNKNOWN_ORG_MESSAGE = "字段“{label}”的值[{number}]在系统中不存在"
_ORG_CHANGE_MESSAGE = "字段“{label}”保存后不允许修改"
_NOT_AUDITED_MESSAGE = "[{number}]未审核，不允许分配"
_NOT_MASTER_MESSAGE = "[{number}]不是创建组织的数据，不允许分配"
_ALREADY_ALLOCATED_MESSAGE = "[{number}]已分配到组织[{org}]"
_ORG_LABELS = {"FCreateOrgId": "创建组织", "FUseOrgId": "使用组织"}
RATE_LIMIT_MESSAGE = "接口调用频率超出限制，请稍后再试"

_QUERY_OPS = frozenset({"ExecuteBillQuery", "BillQuery"})
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
_REF_FIELDS = ("FCreateOrgId", "FUseOrgId")
#: The only paths served, ``/k3cloud/Kingdee.BOS.WebApi.ServicesStub.<Service>.<Method>``
#: ``.common.kdsvc``; IIS matches the site's folder in any case (``/K3Cloud/`` works too).
_ROUTE = re.compile(
    r"/(?i:k3cloud)/(?P<service>Kingdee\.BOS\.WebApi\.ServicesStub\.[A-Za-z0-9_]+)"
    r"\.(?P<op>[A-Za-z0-9_]+)" + re.escape(SERVICE_SUFFIX)
)
#: Deepest JSON nesting a request may have (Json.NET 13's default ``MaxDepth``); a real request
#: needs a handful of levels, and deeper data would exhaust the simulator's recursion later.
#: Deepest parenthesis nesting of a ``FilterString`` (the real server passes it to SQL Server,
#: which refuses a statement "nested too deeply"); the parser recurses three frames per level.
MAX_FILTER_DEPTH = 64


class _Fail(Exception):
    """One row (or the whole call) refused, with K/3 Cloud's MsgCode."""

    def __init__(self, message: str, *, code: int, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


class _Orgs:
    """The account's organisations: internal id <-> number, and the one used by default."""

    def __init__(self, table: Mapping[int, str], default: str | None) -> None:
        self.by_id: dict[int, str] = {}
        self.by_number: dict[str, int] = {}
        for org_id, number in table.items():
            self.add(org_id, number)
        if not self.by_id:
            raise ValueError("organizations needs at least one organisation")
        self.default = next(iter(self.by_id.values())) if default is None else default
        if self.default not in self.by_number:
            raise ValueError(f"default_org {default!r} is not one of {sorted(self.by_number)}")

    def add(self, org_id: int, number: str) -> None:
        if isinstance(org_id, bool) or not isinstance(org_id, int) or org_id <= 0:
            raise ValueError(f"organisation ids are positive integers, got {org_id!r}")
        if not isinstance(number, str) or not number:
            raise ValueError(f"organisation numbers are non-empty text, got {number!r}")
        if org_id in self.by_id or number in self.by_number:
            raise ValueError(f"organisation ids and numbers must differ: {org_id!r} {number!r}")
        self.by_id[org_id] = number
        self.by_number[number] = org_id


def _org_number(reference: Any) -> str | None:
    """The organisation number in a ``{"FNumber": ...}`` reference (None if absent or empty)."""
    if isinstance(reference, dict) and reference.get("FNumber") not in (None, ""):
        return str(reference["FNumber"])
    return None


class _Form:
    """One form's records, by internal id, with a number index per use organisation.

    ``BD_Customer`` records belong to organisations (``FUseOrgId``); other forms keep one flat
    index (organisation ``""``).
    """

    def __init__(self, form_id: str, orgs: _Orgs) -> None:
        self.form_id = form_id
        self.orgs = orgs
        self.is_customer = form_id.upper() == "BD_CUSTOMER"
        self.id_key = "FCUSTID" if self.is_customer else "FID"
        self.rows: dict[int, dict[str, Any]] = {}
        #: number -> {use organisation number: internal id}
        self.numbers: dict[str, dict[str, int]] = {}
        self._ids = itertools.count(100001)

    def new_id(self) -> int:
        return next(self._ids)

    def known_fields(self) -> set[str]:
        known = set(_CUSTOMER_FIELDS if self.is_customer else _GENERIC_FIELDS) | {self.id_key}
        for row in self.rows.values():
            known.update(row)
        return known

    def org_of(self, row: dict[str, Any]) -> str:
        return (_org_number(row.get("FUseOrgId")) or "") if self.is_customer else ""

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
        if self.is_customer and key in _REF_FIELDS:
            number = _org_number(row.get(key))
            return None if number is None else self.orgs.by_number.get(number)
        return _value(row, key)

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


class FakeK3Cloud(FaultInjectingSimulator):
    """A strict in-memory K/3 Cloud (see the module docs).

    Authentication: requests with signed headers are checked with the real algorithm against
    ``acct_id``/``user_name``/``app_id``/``app_secret`` (timestamps within ``max_skew`` seconds of
    ``clock``); a mismatch gets HTTP 500 ``Fail to verify thirty passport``. Otherwise the request
    needs a session from ``ValidateUser`` (``password``), ``LoginByAppSecret`` or ``LoginBySign``;
    without a live one the reply is MsgCode 1. ``expire_sessions()`` ends every session.

    Organisations: ``organizations`` maps internal ids to numbers (default ``{1: "100"}``). A new
    ``BD_Customer`` is stored in its ``FUseOrgId`` (else its ``FCreateOrgId``, else
    ``default_org``, the first organisation unless told otherwise) with ``FMASTERID`` = its own
    ``FCUSTID``; ``Allocate`` copies it to other organisations. ``number_scope="use_org"`` (the
    default) lets a number exist once per use organisation; ``"account"`` once per account
    (allocated copies apart), for accounts whose coding rules forbid independent re-use.
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
        super().__init__()
        if app_id is not None:
            split_app_id(app_id)
        if number_scope not in ("use_org", "account"):
            raise ValueError(f"number_scope is 'use_org' or 'account', not {number_scope!r}")
        self._orgs = _Orgs(organizations, default_org)
        self.number_scope = number_scope
        self.acct_id = acct_id
        self.user_name = user_name
        self.app_id = app_id
        self.lcid = lcid
        self.max_skew = max_skew
        self._app_secret = app_secret
        self._password = password
        self._clock = clock
        self._lock = threading.RLock()
        self._forms: dict[str, _Form] = {}
        self._sessions: dict[str, str] = {}
        self._logins = 0
        #: Requests per operation name (``BatchSave``, ``LoginBySign`` ...), faults included.
        self.calls: collections.Counter[str] = collections.Counter()
        #: Why signed requests were rejected, latest last (to debug a test, not to assert on).
        self.auth_failures: list[str] = []
        #: Whether a login reply carries the session id in ``KDSVCSessionId`` / as a cookie.
        self.session_id_in_body = True
        self.session_cookie = True

    # -- inspection and set-up -----------------------------------------------------------------

    @property
    def login_count(self) -> int:
        """Login requests received (successful or not)."""
        return self._logins

    @property
    def active_sessions(self) -> int:
        """Sessions currently alive."""
        with self._lock:
            return len(self._sessions)

    def session_ids(self) -> list[str]:
        """The ids of the live sessions (to check that none leaks into logs or errors)."""
        with self._lock:
            return list(self._sessions)

    def expire_sessions(self) -> None:
        """End every session: the next call with one gets MsgCode 1 (session lost)."""
        with self._lock:
            self._sessions.clear()

    @property
    def organizations(self) -> dict[int, str]:
        """The organisations: internal id -> number."""
        with self._lock:
            return dict(self._orgs.by_id)

    def add_organization(self, org_id: int, number: str) -> None:
        """Add an organisation (internal id ``org_id``, number ``number``), as an account gains
        one; ValueError if either is taken."""
        with self._lock:
            self._orgs.add(org_id, number)

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
            form = self._form(form_id)
            ids = []
            for given in rows:
                row = copy.deepcopy(dict(given))
                if form.is_customer:
                    for key in _REF_FIELDS:
                        if isinstance(row.get(key), str | int) and not isinstance(row[key], bool):
                            row[key] = {"FNumber": str(row[key])}
                    try:
                        self._place(row)
                    except _Fail as fail:
                        raise ValueError(f"seed: {form_id}: {fail.message}") from None
                number = row.get("FNumber")
                if number is not None:
                    try:
                        master = row.get("FMASTERID")
                        self._check_number(form, row, set(), own_id=None, master=master)
                    except _Fail:
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
            form = self._form(form_id)
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
                except _Fail as fail:
                    raise ValueError(f"allocate: {fail.message}") from None
                ids.append(copied[form.id_key])
            return ids

    def call_count(self, operation: str) -> int:
        """How many requests named ``operation`` (e.g. ``"BatchSave"``) were received."""
        return self.calls[operation]

    # -- faults --------------------------------------------------------------------------------

    def inject_rate_limit(self, *, times: int = 1, after: int = 0, path: str | None = None) -> None:
        """Answer MsgCode 14 (call-rate limit) instead of processing the request."""
        self.inject(self.rate_limit_fault(), times=times, after=after, path=path)

    def rate_limit_fault(self) -> Fault:
        """K/3 Cloud's rate-limit answer, HTTP 200 with MsgCode 14: what ``inject_rate_limit``
        sends, and what a request beyond ``limit_capacity`` gets."""
        body = _reply_status(errors=[_error(RATE_LIMIT_MESSAGE, 0)], code=14)
        return Fault.reply(dumps(body))

    def inject_reply_lost(self, *, times: int = 1, after: int = 0, path: str | None = None) -> None:
        """Process the request, then drop the connection before the reply (saved, reply lost)."""
        self.inject(Fault.reply_lost(), times=times, after=after, path=path)

    def inject_reply_timeout(
        self, *, times: int = 1, after: int = 0, path: str | None = None
    ) -> None:
        """Process the request, then never reply (saved, then a timeout)."""
        self.inject(Fault.reply_timeout(), times=times, after=after, path=path)

    # -- dispatch ------------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        # Counted before a fault may strike: a request the network lost was still sent.
        with self._lock:
            self.calls[_operation(request.url.path)] += 1
        return super().__call__(request)

    def handle(self, request: httpx.Request) -> httpx.Response:
        route = _ROUTE.fullmatch(request.url.path)
        if route is None:
            return _not_found(request)
        service, op = route["service"], route["op"]
        with self._lock:
            if service == AUTH_SERVICE:
                return self._auth_service(op, request)
            handler = self._operations().get(op) if service == DYNAMIC_FORM_SERVICE else None
            if handler is None:
                return _not_found(request)
            refused = self._authenticate(request, op)
            if refused is not None:
                return refused
            try:
                body = _loads(request.content)
                data = body.get("data") if isinstance(body, dict) else None
                if isinstance(data, str):  # older callers send data as a JSON string
                    data = _loads(data)
                if not isinstance(data, dict):
                    raise _Fail("缺少参数 data（须为 JSON 对象）", code=8)
                return _json(handler(body.get("formid"), data))
            except _Fail as fail:
                return _json(_status_for(op, [_error(fail.message, None, fail.field)], fail.code))

    def _operations(self) -> dict[str, Callable[[Any, dict[str, Any]], Any]]:
        return {
            "Save": self._save,
            "BatchSave": self._batch_save,
            "Submit": lambda f, d: self._operate(f, d, self._submit_one),
            "Audit": lambda f, d: self._operate(f, d, self._audit_one),
            "UnAudit": lambda f, d: self._operate(f, d, self._unaudit_one),
            "Delete": lambda f, d: self._operate(f, d, self._delete_one),
            "View": self._view,
            "Allocate": self._allocate,
            "ExecuteBillQuery": lambda f, d: self._query(d, as_objects=False),
            "BillQuery": lambda f, d: self._query(d, as_objects=True),
        }

    def _form(self, form_id: Any) -> _Form:
        if not isinstance(form_id, str) or not form_id:
            raise _Fail("表单 ID 不能为空（formid）", code=5)
        key = form_id.upper()
        if key not in self._forms:
            self._forms[key] = _Form(form_id, self._orgs)
        return self._forms[key]

    # -- authentication --------------------------------------------------------------------------

    def _authenticate(self, request: httpx.Request, op: str) -> httpx.Response | None:
        if "X-Kd-Appkey" in request.headers:
            reason = self._signature_problem(request)
            if reason is None:
                return None
            self.auth_failures.append(reason)
            return httpx.Response(
                500, text=PASSPORT_FAILURE, headers={"Content-Type": "text/plain; charset=utf-8"}
            )
        for session_id in _session_ids(request):
            if session_id in self._sessions:
                return None
        return _json(_status_for(op, [_error(SESSION_LOST_MESSAGE, 0)], code=1))

    def _signature_problem(self, request: httpx.Request) -> str | None:
        headers = request.headers
        if self.app_id is None or self._app_secret is None:
            return "signed headers received but the fake has no app_id/app_secret"
        if headers.get("X-Kd-Appkey") != self.app_id:
            return "X-Kd-Appkey is not the app id"
        client_id, encoded = split_app_id(self.app_id)
        expected = {
            "X-Api-ClientID": client_id,
            "X-Api-Auth-Version": AUTH_VERSION,
            "x-api-signheaders": SIGNED_HEADER_NAMES,
        }
        for name, value in expected.items():
            if headers.get(name) != value:
                return f"{name} is {headers.get(name)!r}, expected {value!r}"
        timestamp = headers.get("x-api-timestamp", "")
        nonce = headers.get("x-api-nonce", "")
        if not _is_unix_time(timestamp) or not nonce:
            return "x-api-timestamp / x-api-nonce missing or not a number"
        if abs(int(timestamp) - self._clock()) > self.max_skew:
            return f"x-api-timestamp {timestamp} is more than {self.max_skew}s from the clock"
        signature = sig(
            string_to_sign(request.url.path, timestamp, nonce), decode_client_secret(encoded)
        )
        if not _same(headers.get("X-Api-Signature", ""), signature):
            return "X-Api-Signature does not match the path, timestamp and nonce"
        try:
            app_data = base64.b64decode(headers.get("X-Kd-Appdata", ""), validate=True).decode()
        except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8 once decoded
            return "X-Kd-Appdata is not base64 of UTF-8 text"
        parts = app_data.rsplit(",", 2)
        if len(parts) != 3 or "," not in parts[0]:
            return f"X-Kd-Appdata is not 'acct,user,lcid,org': {app_data!r}"
        account, user = parts[0].split(",", 1)
        if account != self.acct_id or user != self.user_name:
            return f"X-Kd-Appdata names {account!r}/{user!r}, not this account and user"
        if not parts[1].isdigit() or not parts[2].isdigit():
            return f"X-Kd-Appdata's lcid and org are not numbers: {app_data!r}"
        expected_signature = sig(self.app_id + app_data, self._app_secret)
        if not _same(headers.get("X-Kd-Signature", ""), expected_signature):
            return "X-Kd-Signature does not match (wrong app secret?)"
        return None

    def _auth_service(self, op: str, request: httpx.Request) -> httpx.Response:
        try:
            body = _loads(request.content)
            parameters = body.get("parameters") if isinstance(body, dict) else None
            if isinstance(parameters, str):
                parameters = _loads(parameters)
        except _Fail:
            parameters = None
        if op == "Logout":
            for session_id in _session_ids(request):
                self._sessions.pop(session_id, None)
            return _json(True)
        checks: dict[str, Callable[[list[Any]], str | None]] = {
            "ValidateUser": self._check_password,
            "LoginByAppSecret": self._check_app_secret,
            "LoginBySign": self._check_sign,
        }
        check = checks.get(op)
        if check is None:
            return _not_found(request)
        self._logins += 1
        if not isinstance(parameters, list):
            return _json(_login_refused("参数 parameters 缺失或不是数组"))
        problem = check(parameters)
        if problem is not None:
            return _json(_login_refused(problem))
        session_id = secrets.token_hex(16)
        self._sessions[session_id] = self.user_name
        reply = {
            "Message": None,
            "MessageCode": "CheckPasswordPolicy",
            "LoginResultType": 1,
            "Context": {
                "UserLocale": "zh-CN",
                "DBid": self.acct_id,
                "UserName": self.user_name,
                "UserId": 100008,
                "DataCenterName": "FakeK3Cloud",
            },
            "KDSVCSessionId": session_id if self.session_id_in_body else None,
            "IsSuccessByAPI": True,
        }
        headers = [("Content-Type", "application/json; charset=utf-8")]
        if self.session_cookie:
            headers.append(("Set-Cookie", f"{SESSION_COOKIE}={session_id}; path=/"))
            headers.append(("Set-Cookie", f"ASP.NET_SessionId={secrets.token_hex(12)}; path=/"))
        return httpx.Response(200, content=dumps(reply), headers=headers)

    def _check_account(self, parameters: list[Any], count: int) -> str | None:
        if len(parameters) != count:
            return f"参数个数应为 {count}"
        if parameters[0] != self.acct_id:
            return "数据中心不存在"
        if parameters[1] != self.user_name:
            return "用户名或密码错误！"
        return None

    def _check_password(self, parameters: list[Any]) -> str | None:
        problem = self._check_account(parameters, 4)
        if problem is None and (self._password is None or parameters[2] != self._password):
            problem = "用户名或密码错误！"
        return problem

    def _check_app_secret(self, parameters: list[Any]) -> str | None:
        problem = self._check_account(parameters, 5)
        if problem is None and (
            self.app_id is None or parameters[2] != self.app_id or parameters[3] != self._app_secret
        ):
            problem = "第三方系统登录授权验证失败：应用 ID 或应用密钥错误"
        return problem

    def _check_sign(self, parameters: list[Any]) -> str | None:
        problem = self._check_account(parameters, 6)
        if problem is not None:
            return problem
        _, _, app_id, timestamp, sign, _ = parameters
        if self.app_id is None or self._app_secret is None or app_id != self.app_id:
            return "第三方系统登录授权验证失败：应用 ID 错误"
        if isinstance(timestamp, bool) or not _is_unix_time(str(timestamp)):
            return "时间戳格式错误"
        ts = int(timestamp)
        if abs(ts - self._clock()) > self.max_skew:
            return "签名已过期（时间戳与服务器时间相差过大）"
        expected = login_sign(self.acct_id, self.user_name, self.app_id, self._app_secret, ts)
        if not isinstance(sign, str) or not _same(sign, expected):
            return "签名验证失败"
        return None

    # -- saving ------------------------------------------------------------------------------------

    def _batch_save(self, form_id: Any, data: dict[str, Any]) -> Any:
        form = self._form(form_id)
        models = data.get("Model")
        if not isinstance(models, list):
            raise _Fail("BatchSave 的 Model 必须是数组", code=8, field="Model")
        return self._save_rows(form, models, data)

    def _save(self, form_id: Any, data: dict[str, Any]) -> Any:
        form = self._form(form_id)
        model = data.get("Model")
        if not isinstance(model, dict):
            raise _Fail("Save 的 Model 必须是对象", code=8, field="Model")
        reply = self._save_rows(form, [model], data)
        entities = reply["Result"]["ResponseStatus"]["SuccessEntitys"]
        if entities:
            reply["Result"]["Id"] = entities[0]["Id"]
            reply["Result"]["Number"] = entities[0]["Number"]
        return reply

    def _save_rows(self, form: _Form, models: list[Any], data: dict[str, Any]) -> Any:
        update_fields = _field_list(data, "NeedUpDateFields")
        return_fields = _field_list(data, "NeedReturnFields")
        audited = bool(data.get("IsAutoSubmitAndAudit"))
        successes: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        codes: list[int] = []
        returned: list[dict[str, Any]] = []
        numbers_in_call: set[tuple[str, str]] = set()
        for index, model in enumerate(models):
            try:
                row = self._save_one(form, model, update_fields, audited, numbers_in_call)
            except _Fail as fail:
                errors.append(_error(fail.message, index, fail.field))
                codes.append(fail.code)
                continue
            successes.append(
                {"Id": row[form.id_key], "Number": row.get("FNumber"), "DIndex": index}
            )
            returned.append({key: _clone(row.get(key)) for key in return_fields})
        reply = _reply_status(successes=successes, errors=errors, code=codes[0] if codes else 0)
        reply["Result"]["NeedReturnData"] = returned or [{}]
        return reply

    def _save_one(
        self,
        form: _Form,
        model: Any,
        update_fields: list[str],
        audited: bool,
        numbers_in_call: set[tuple[str, str]],
    ) -> dict[str, Any]:
        if not isinstance(model, dict):
            raise _Fail("Model 的元素必须是对象", code=8)
        for key in _REF_FIELDS:
            if key in model and not (
                isinstance(model[key], dict) and isinstance(model[key].get("FNumber"), str | int)
            ):
                raise _Fail(
                    f'字段 {key} 的值须为 {{"FNumber": ...}} 形式的基础资料引用', code=9, field=key
                )
        # ``model`` was parsed from this request's body: nothing else holds it or what it
        # contains, so the stored row may take its values without copying them.
        row_id = model.get(form.id_key)
        if row_id not in (None, 0, "", "0"):
            row = form.find(id=row_id)
            if row is None:
                raise _Fail(
                    f"{form.id_key}={row_id} 的数据不存在，可能已被删除", code=10, field=form.id_key
                )
            fields = [
                f
                for f in (update_fields or list(model))
                if f in model and f not in (form.id_key, "FMASTERID")
            ]
            changed: dict[str, Any] = _clone(row)
            changed.update({f: model[f] for f in fields})
            if form.is_customer:
                # An update works on this one record: its organisations stay what they are.
                for key in _REF_FIELDS:
                    if key in fields and _org_number(model[key]) != _org_number(row.get(key)):
                        raise _Fail(
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
                    raise _Fail("字段“客户名称”是必填项", code=11, field="FName")
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
        use = _org_number(row.get("FUseOrgId"))
        create = _org_number(row.get("FCreateOrgId"))
        use = use or create or self._orgs.default
        for key, number in (("FCreateOrgId", create or use), ("FUseOrgId", use)):
            if number not in self._orgs.by_number:
                raise _Fail(
                    _UNKNOWN_ORG_MESSAGE.format(label=_ORG_LABELS[key], number=number),
                    code=9,
                    field=key,
                )
            row[key] = {"FNumber": number}

    def _number_key(self, form: _Form, row: dict[str, Any]) -> tuple[str, str]:
        """Where ``row``'s number must be unique: (organisation or "" for the account, number)."""
        org = form.org_of(row) if self.number_scope == "use_org" else ""
        return org, str(row.get("FNumber"))

    def _check_number(
        self,
        form: _Form,
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
            raise _Fail(DUPLICATE_NUMBER_MESSAGE.format(number=number), code=11, field="FNumber")

    # -- allocation --------------------------------------------------------------------------------

    def _allocate(self, form_id: Any, data: dict[str, Any]) -> Any:
        form = self._form(form_id)
        if not form.is_customer:
            raise _Fail(f"FakeK3Cloud 只模拟 BD_Customer 的分配，不支持 {form.form_id}", code=12)
        pk_ids = _id_list(data.get("PkIds"), "PkIds")
        org_ids = _id_list(data.get("TOrgIds"), "TOrgIds")
        audited = bool(data.get("IsAutoSubmitAndAudit"))
        successes: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        codes: list[int] = []
        # One result per (record, organisation) pair, records outermost; DIndex is its position.
        for index, (pk, org_id) in enumerate(itertools.product(pk_ids, org_ids)):
            try:
                copied = self._allocate_one(form, pk, org_id, audited)
            except _Fail as fail:
                errors.append(_error(fail.message, index, fail.field))
                codes.append(fail.code)
                continue
            successes.append(
                {"Id": copied[form.id_key], "Number": copied.get("FNumber"), "DIndex": index}
            )
        return _reply_status(successes=successes, errors=errors, code=codes[0] if codes else 0)

    def _allocate_one(self, form: _Form, pk: Any, org_id: Any, audited: bool) -> dict[str, Any]:
        """Copy record ``pk`` into organisation ``org_id`` (an internal id): a new id, the same
        number, creating organisation and ``FMASTERID``."""
        source = form.find(id=pk)
        if source is None:
            raise _Fail(f"内码为[{pk}]的数据不存在", code=10)
        number = source.get("FNumber")
        try:
            target = self._orgs.by_id.get(int(org_id))
        except (TypeError, ValueError):
            target = None
        if target is None:
            raise _Fail(f"组织内码为[{org_id}]的组织不存在", code=10)
        master = source.get("FMASTERID")
        if master != source[form.id_key]:
            raise _Fail(_NOT_MASTER_MESSAGE.format(number=number), code=11)
        if source.get("FDocumentStatus") != "C":
            raise _Fail(_NOT_AUDITED_MESSAGE.format(number=number), code=11)
        held = form.find(number=number, org=target)
        if held is not None and held.get("FMASTERID") == master:
            raise _Fail(_ALREADY_ALLOCATED_MESSAGE.format(number=number, org=target), code=11)
        copied: dict[str, Any] = _clone(source)
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
        apply: Callable[[_Form, dict[str, Any]], None],
    ) -> Any:
        form = self._form(form_id)
        numbers = data.get("Numbers") or []
        ids = data.get("Ids") or ""
        if isinstance(ids, str):
            ids = [i.strip() for i in ids.split(",") if i.strip()]
        if not isinstance(numbers, list) or not isinstance(ids, list) or not (numbers or ids):
            raise _Fail("须给出 Numbers（数组）或 Ids（逗号分隔）", code=8)
        targets = [("number", n) for n in numbers] + [("id", i) for i in ids]
        org = self._context_org(data)
        successes: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        codes: list[int] = []
        for index, (kind, key) in enumerate(targets):
            row = form.find(number=key, org=org) if kind == "number" else form.find(id=key)
            try:
                if row is None:
                    raise _Fail(
                        f"{'编码' if kind == 'number' else '内码'}为[{key}]的数据不存在", code=10
                    )
                entity = {"Id": row[form.id_key], "Number": row.get("FNumber"), "DIndex": index}
                apply(form, row)
            except _Fail as fail:
                errors.append(_error(fail.message, index, fail.field))
                codes.append(fail.code)
                continue
            successes.append(entity)
        return _reply_status(successes=successes, errors=errors, code=codes[0] if codes else 0)

    def _context_org(self, data: dict[str, Any]) -> str | None:
        """The organisation whose record a number names: ``CreateOrgId`` (an internal id; 0 or
        absent: none, and ``_Form.find`` takes the default organisation's)."""
        value: Any = data.get("CreateOrgId")
        if value in (None, "", 0, "0"):
            return None
        try:
            number = self._orgs.by_id.get(int(value))
        except (TypeError, ValueError):
            number = None
        if number is None:
            raise _Fail(f"组织内码为[{value}]的组织不存在", code=10, field="CreateOrgId")
        return number

    @staticmethod
    def _transition(row: dict[str, Any], allowed: str, to: str, verb: str) -> None:
        status = row.get("FDocumentStatus", "A")
        if status not in allowed:
            raise _Fail(f"[{row.get('FNumber')}] 单据状态为 {status}，不允许{verb}", code=11)
        row["FDocumentStatus"] = to

    def _submit_one(self, form: _Form, row: dict[str, Any]) -> None:
        self._transition(row, "AD", "B", "提交")

    def _audit_one(self, form: _Form, row: dict[str, Any]) -> None:
        self._transition(row, "B", "C", "审核")

    def _unaudit_one(self, form: _Form, row: dict[str, Any]) -> None:
        self._transition(row, "C", "D", "反审核")

    def _delete_one(self, form: _Form, row: dict[str, Any]) -> None:
        self._transition(row, "AD", row.get("FDocumentStatus", "A"), "删除")
        form.remove(row)

    def _view(self, form_id: Any, data: dict[str, Any]) -> Any:
        form = self._form(form_id)
        if data.get("Id") not in (None, "", 0):
            row = form.find(id=data["Id"])
        elif data.get("Number"):
            row = form.find(number=data["Number"], org=self._context_org(data))
        else:
            raise _Fail("须给出 Number 或 Id", code=8)
        if row is None:
            raise _Fail("单据不存在或已被删除", code=10)
        reply = _reply_status()
        document = copy.deepcopy(row)
        document.update({"Id": row[form.id_key], "Number": row.get("FNumber")})
        reply["Result"]["Result"] = document
        return reply

    # -- queries -----------------------------------------------------------------------------------

    def _query(self, data: dict[str, Any], *, as_objects: bool) -> Any:
        try:
            form = self._form(data.get("FormId"))
            keys = [k.strip() for k in str(data.get("FieldKeys") or "").split(",") if k.strip()]
            if not keys:
                raise _Fail("FieldKeys 不能为空", code=8)
            known = form.known_fields()
            for key in keys:
                _check_field(key, known)
            where = _parse_filter(str(data.get("FilterString") or ""), known, form.value)
            order = _parse_order(str(data.get("OrderString") or ""), known)
            top, start, limit = (
                _non_negative(data.get(name), name) for name in ("TopRowCount", "StartRow", "Limit")
            )
        except _Fail as fail:
            return [[_reply_status(errors=[_error(fail.message, 0, fail.field)], code=fail.code)]]
        rows = [row for row in form.rows.values() if where(row)]
        for key, descending in reversed(order):
            rows.sort(key=_sort_by(key, form.value), reverse=descending)
        if top:
            rows = rows[:top]
        rows = rows[start : start + limit] if limit else rows[start:]
        value = form.value
        if as_objects:
            return [{key: value(row, key) for key in keys} for row in rows]
        return [[value(row, key) for key in keys] for row in rows]


# -- replies ---------------------------------------------------------------------------------------


def _clone(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars), several times cheaper than
    ``copy.deepcopy``, which it falls back to for anything else (data given to ``seed``)."""
    kind = type(value)
    if kind is dict:
        return {key: _clone(item) for key, item in value.items()}
    if kind is list:
        return [_clone(item) for item in value]
    if kind in _SCALARS:
        return value
    return copy.deepcopy(value)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _operation(path: str) -> str:
    """``/k3cloud/Kingdee....DynamicFormService.BatchSave.common.kdsvc`` -> ``BatchSave``."""
    name = path.rsplit("/", 1)[-1]
    return name.removesuffix(SERVICE_SUFFIX).rpartition(".")[2]


def _json(body: Any) -> httpx.Response:
    return httpx.Response(
        200, content=dumps(body), headers={"Content-Type": "application/json; charset=utf-8"}
    )


def _not_found(request: httpx.Request) -> httpx.Response:
    """What IIS answers for a path that is not a service: a wrong server URL ends here."""
    path = request.url.path
    shown = path if len(path) <= 80 else path[:80] + "..."
    return httpx.Response(
        404, text=f"404 Not Found: {shown}", headers={"Content-Type": "text/plain; charset=utf-8"}
    )


def _refuse_constant(name: str) -> Any:
    raise _Fail(f"请求内容不是合法的 JSON：不支持 {name}", code=8)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999 overflows to infinity
        raise _Fail(f"请求内容不是合法的 JSON：数值 {text[:40]} 超出范围", code=8)
    return number


def _loads(content: bytes | str) -> Any:
    """A request body as the server's JSON reader takes it: strict JSON (no ``NaN``,
    ``Infinity`` or numbers beyond a double), nested at most ``MAX_JSON_DEPTH`` deep; anything
    else is a ``_Fail`` (MsgCode 8), never an exception of the simulator's own."""
    try:
        value = json.loads(content, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise _Fail(f"请求内容不是合法的 JSON：嵌套超过 {MAX_JSON_DEPTH} 层", code=8) from None
    except ValueError as error:  # also UnicodeDecodeError, and ints past the digit limit
        raise _Fail(f"请求内容不是合法的 JSON：{str(error)[:80]}", code=8) from None
    if type(value) in (dict, list) and json_too_deep(value):
        raise _Fail(f"请求内容不是合法的 JSON：嵌套超过 {MAX_JSON_DEPTH} 层", code=8)
    return value


def _field_list(data: dict[str, Any], name: str) -> list[str]:
    """``NeedUpDateFields`` / ``NeedReturnFields``: absent, or a list of field keys (text)."""
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Fail(
            f"{name} 必须是字段标识（文本）的数组，收到 {_shape(value)}", code=8, field=name
        )
    return value


def _shape(value: Any) -> str:
    """A short description of what arrived (a type, and for a list its items' types)."""
    if isinstance(value, list):
        kinds = sorted({type(item).__name__ for item in value})
        return f"list of {', '.join(kinds)}" if kinds else "list"
    return type(value).__name__


def _is_unix_time(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes ``²``), and few enough to be a time."""
    return text.isascii() and text.isdigit() and len(text) <= 15


def _same(given: str, expected: str) -> bool:
    """A constant-time comparison that takes any text (``compare_digest`` refuses non-ASCII)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def _error(message: str, index: int | None, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"FieldName": field, "Message": message}
    if index is not None:
        error["DIndex"] = index
    return error


def _reply_status(
    *,
    successes: list[dict[str, Any]] | None = None,
    errors: list[dict[str, Any]] | None = None,
    code: int = 0,
) -> dict[str, Any]:
    ok = not errors
    return {
        "Result": {
            "ResponseStatus": {
                "ErrorCode": 0 if ok else 500,
                "IsSuccess": ok,
                "Errors": errors or [],
                "SuccessEntitys": successes or [],
                "SuccessMessages": [],
                "MsgCode": 0 if ok else code,
            }
        }
    }


def _status_for(op: str, errors: list[dict[str, Any]], code: int) -> Any:
    """A whole-call failure, shaped as ``op`` answers (queries: dressed as a data row)."""
    reply = _reply_status(errors=errors, code=code)
    return [[reply]] if op in _QUERY_OPS else reply


def _login_refused(message: str) -> dict[str, Any]:
    return {
        "Message": message,
        "MessageCode": None,
        "LoginResultType": 0,
        "Context": None,
        "KDSVCSessionId": None,
        "IsSuccessByAPI": False,
    }


def _session_ids(request: httpx.Request) -> list[str]:
    found = []
    header = request.headers.get(SESSION_COOKIE)
    if header:
        found.append(header)
    for cookie_header in request.headers.get_list("cookie"):
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(cookie_header)
        except CookieError:
            continue
        if SESSION_COOKIE in jar:
            found.append(jar[SESSION_COOKIE].value)
    return found


# -- query language --------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<op><>|!=|=|\(|\)|,)|(?P<bad>\S))"
)
_Predicate = Callable[[dict[str, Any]], bool]


def _check_field(key: str, known: set[str]) -> None:
    if key.split(".", 1)[0] not in known:
        raise _Fail(f"元数据中标识为{key}的字段不存在", code=9, field=key)


def _value(row: dict[str, Any], key: str) -> Any:
    head, _, tail = key.partition(".")
    value = row.get(head)
    if isinstance(value, dict):
        return value.get(tail or "FNumber")
    return None if tail else value


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, value)
    return (2, str(value))


_Getter = Callable[[dict[str, Any], str], Any]


def _sort_by(key: str, value: _Getter) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    return lambda row: _sort_key(value(row, key))


def _id_list(value: Any, name: str) -> list[str]:
    """``"1,2"`` (or one integer) -> ``["1", "2"]``: a comma-separated list of internal ids."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _Fail(
            f"{name} 须为逗号分隔的内码文本，收到 {type(value).__name__}", code=8, field=name
        )
    ids = [part.strip() for part in value.split(",") if part.strip()]
    if not ids:
        raise _Fail(f"{name} 不能为空", code=8, field=name)
    return ids


def _non_negative(value: object, name: str) -> int:
    """A row count: absent, an integer, or its digits as text (as Json.NET reads an ``int``)."""
    if value is None or value == "":
        return 0
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # left as text: refused below
            value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Fail(f"{name} 必须是整数", code=8, field=name)
    if value < 0:
        raise _Fail(f"{name} 不能为负数", code=8, field=name)
    return value


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # only trailing whitespace is left
            break
        position = match.end()
        kind = match.lastgroup
        raw = match.group(kind) if kind else ""
        if kind == "bad":
            raise _Fail(f"过滤条件语法错误：无法识别 {raw!r}", code=4)
        if kind == "string":
            tokens.append(("literal", raw[1:-1].replace("''", "'")))
        elif kind == "number":
            if len(raw) > 38:  # SQL Server's widest number (decimal(38))
                raise _Fail(f"过滤条件语法错误：数值 {raw[:40]}... 过长", code=4)
            tokens.append(("literal", float(raw) if "." in raw else int(raw)))
        elif kind == "name" and raw.lower() in ("and", "or", "in"):
            tokens.append((raw.lower(), raw))
        elif kind == "name":
            tokens.append(("name", raw))
        elif kind == "op":
            tokens.append((raw, raw))
    return tokens


def _sql_equal(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False  # SQL NULL equals nothing
    numbers = (int, float)
    if isinstance(left, numbers) and isinstance(right, numbers):
        return bool(left == right)
    if isinstance(left, numbers) or isinstance(right, numbers):
        try:  # SQL Server converts the text to the number's type
            return float(str(left)) == float(str(right))
        except ValueError:
            return False
    return str(left) == str(right)


class _FilterParser:
    """``expr := and ('or' and)*; and := atom ('and' atom)*;
    atom := '(' expr ')' | operand ('='|'<>'|'!=') operand | operand 'in' '(' operand, ... ')'``"""

    def __init__(self, text: str, known: set[str], value: _Getter) -> None:
        self.tokens = _tokens(text)
        self.position = 0
        self.known = known
        self.value = value
        self.depth = 0

    def parse(self) -> _Predicate:
        if not self.tokens:
            return lambda row: True
        predicate = self._or()
        if self.position != len(self.tokens):
            self._fail(f"多余的 {self.tokens[self.position][1]!r}")
        return predicate

    def _peek(self) -> str | None:
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None

    def _take(self, kind: str) -> Any:
        if self._peek() != kind:
            found = self.tokens[self.position][1] if self._peek() else "结尾"
            self._fail(f"应为 {kind!r}，却是 {found!r}")
        value = self.tokens[self.position][1]
        self.position += 1
        return value

    def _fail(self, message: str) -> None:
        raise _Fail(f"过滤条件语法错误：{message}", code=4)

    def _or(self) -> _Predicate:
        parts = [self._and()]
        while self._peek() == "or":
            self.position += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def _and(self) -> _Predicate:
        parts = [self._atom()]
        while self._peek() == "and":
            self.position += 1
            parts.append(self._atom())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def _operand(self) -> Callable[[dict[str, Any]], Any]:
        if self._peek() == "name":
            key = self._take("name")
            _check_field(key, self.known)
            value = self.value
            return lambda row: value(row, key)
        literal = self._take("literal")
        return lambda row: literal

    def _atom(self) -> _Predicate:
        if self._peek() == "(":
            self.depth += 1
            if self.depth > MAX_FILTER_DEPTH:
                raise _Fail(f"过滤条件嵌套过深：括号超过 {MAX_FILTER_DEPTH} 层", code=4)
            self.position += 1
            inner = self._or()
            self._take(")")
            self.depth -= 1
            return inner
        left = self._operand()
        op = self._peek()
        if op == "=":
            self.position += 1
            right = self._operand()
            return lambda row: _sql_equal(left(row), right(row))
        if op in ("<>", "!="):
            self.position += 1
            right = self._operand()
            return lambda row: (
                left(row) is not None
                and right(row) is not None
                and not _sql_equal(left(row), right(row))
            )
        if op == "in":
            self.position += 1
            self._take("(")
            options = [self._operand()]
            while self._peek() == ",":
                self.position += 1
                options.append(self._operand())
            self._take(")")
            return lambda row: any(_sql_equal(left(row), o(row)) for o in options)
        self._fail("只支持 =、<>、in (...)、and、or 与括号")
        raise AssertionError  # pragma: no cover - _fail raised


def _parse_filter(text: str, known: set[str], value: _Getter) -> _Predicate:
    return _FilterParser(text, known, value).parse()


def _parse_order(text: str, known: set[str]) -> list[tuple[str, bool]]:
    order = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        words = part.split()
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise _Fail(f"排序条件语法错误：{part!r}", code=4)
        _check_field(words[0], known)
        order.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return order


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
