"""The simulator's HTTP surface: the routes it serves (anything else is a 404, as IIS answers),
the request envelope (strict JSON, ``data`` an object), the K/3-shaped error replies, and the
authentication (signed headers checked with the real algorithm, the three session logins and
their sessions). ``FakeK3Cloud`` adds the forms and their operations."""

from __future__ import annotations

import base64
import collections
import hmac
import json
import math
import re
import secrets
import threading
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any

import httpx

from _huke_k3_core import dumps, shorten
from _huke_k3_core.testing import MAX_JSON_DEPTH, Fault, FaultInjectingSimulator, json_too_deep
from k3cloud_client._wire import AUTH_SERVICE, DYNAMIC_FORM_SERVICE, SERVICE_SUFFIX, SESSION_COOKIE
from k3cloud_client.errors import PASSPORT_FAILURE
from k3cloud_client.signing import (
    AUTH_VERSION,
    SIGNED_HEADER_NAMES,
    decode_client_secret,
    login_sign,
    sig,
    split_app_id,
    string_to_sign,
)

from ._replies import (
    RATE_LIMIT_MESSAGE,
    SESSION_LOST_MESSAGE,
    Fail,
    error_entry,
    reply_status,
    status_for,
)

#: The official SDK's public demo credentials (no real server accepts them).
TEST_ACCT_ID = "5db25ac8d2b819"
TEST_USER_NAME = "webapi"
TEST_APP_ID = "204399_72epSbtEQMC92Vwt2d3LRa9LRqSc1tqJ"
TEST_APP_SECRET = "fb7d46647ac346dbb5fcd45b65512a45"
#: The only paths served, ``/k3cloud/Kingdee.BOS.WebApi.ServicesStub.<Service>.<Method>``
#: ``.common.kdsvc``; IIS matches the site's folder in any case (``/K3Cloud/`` works too).
_ROUTE = re.compile(
    r"/(?i:k3cloud)/(?P<service>Kingdee\.BOS\.WebApi\.ServicesStub\.[A-Za-z0-9_]+)"
    r"\.(?P<op>[A-Za-z0-9_]+)" + re.escape(SERVICE_SUFFIX)
)

#: An operation of the dynamic-form service: ``(formid, data) -> reply body``.
Operation = Callable[[Any, dict[str, Any]], Any]


class K3HttpSurface(FaultInjectingSimulator):
    """Routing, the request envelope and authentication (see the module docs); a subclass says
    which operations the form service has (``_operations``)."""

    def __init__(
        self,
        *,
        acct_id: str,
        user_name: str,
        app_id: str | None,
        app_secret: str | None,
        password: str | None,
        lcid: int,
        clock: Callable[[], float],
        max_skew: float,
    ) -> None:
        super().__init__(clock=clock)
        if app_id is not None:
            split_app_id(app_id)
        self.acct_id = acct_id
        self.user_name = user_name
        self.app_id = app_id
        self.lcid = lcid
        self.max_skew = max_skew
        self._app_secret = app_secret
        self._password = password
        self._lock = threading.RLock()
        self._sessions: dict[str, str] = {}
        self._logins = 0
        #: Requests per operation name (``BatchSave``, ``LoginBySign`` ...), faults included.
        self.calls: collections.Counter[str] = collections.Counter()
        #: Why signed requests were rejected, latest last (to debug a test, not to assert on).
        self.auth_failures: list[str] = []
        #: Whether a login reply carries the session id in ``KDSVCSessionId`` / as a cookie.
        self.session_id_in_body = True
        self.session_cookie = True

    # -- inspection ----------------------------------------------------------------------------

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
        body = reply_status(errors=[error_entry(RATE_LIMIT_MESSAGE, 0)], code=14)
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
                    raise Fail("缺少参数 data（须为 JSON 对象）", code=8)
                return _json(handler(body.get("formid"), data))
            except Fail as fail:
                return _json(
                    status_for(op, [error_entry(fail.message, None, fail.field)], fail.code)
                )

    def _operations(self) -> dict[str, Operation]:
        raise NotImplementedError

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
        return _json(status_for(op, [error_entry(SESSION_LOST_MESSAGE, 0)], code=1))

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
        if abs(int(timestamp) - self.clock()) > self.max_skew:
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
        except Fail:
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
        if abs(ts - self.clock()) > self.max_skew:
            return "签名已过期（时间戳与服务器时间相差过大）"
        expected = login_sign(self.acct_id, self.user_name, self.app_id, self._app_secret, ts)
        if not isinstance(sign, str) or not _same(sign, expected):
            return "签名验证失败"
        return None


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
    return httpx.Response(
        404,
        text=f"404 Not Found: {shorten(path, 81)}",
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )


def _refuse_constant(name: str) -> Any:
    raise Fail(f"请求内容不是合法的 JSON：不支持 {name}", code=8)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999 overflows to infinity
        raise Fail(f"请求内容不是合法的 JSON：数值 {text[:40]} 超出范围", code=8)
    return number


def _loads(content: bytes | str) -> Any:
    """A request body as the server's JSON reader takes it: strict JSON (no ``NaN``,
    ``Infinity`` or numbers beyond a double), nested at most ``MAX_JSON_DEPTH`` deep; anything
    else is a ``Fail`` (MsgCode 8), never an exception of the simulator's own."""
    try:
        value = json.loads(content, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise Fail(f"请求内容不是合法的 JSON：嵌套超过 {MAX_JSON_DEPTH} 层", code=8) from None
    except ValueError as error:  # also UnicodeDecodeError, and ints past the digit limit
        raise Fail(f"请求内容不是合法的 JSON：{str(error)[:80]}", code=8) from None
    if type(value) in (dict, list) and json_too_deep(value):
        raise Fail(f"请求内容不是合法的 JSON：嵌套超过 {MAX_JSON_DEPTH} 层", code=8)
    return value


def _is_unix_time(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes ``²``), and few enough to be a time."""
    return text.isascii() and text.isdigit() and len(text) <= 15


def _same(given: str, expected: str) -> bool:
    """A constant-time comparison that takes any text (``compare_digest`` refuses non-ASCII)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


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
