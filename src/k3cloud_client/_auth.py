"""Authentication, as ``httpx.Auth`` classes.

``SignedHeaderAuth`` signs every request (the official SDK v8 default; no login). The session
logins (``PasswordLogin``, ``AppSecretLogin``, ``SignLogin``) log in lazily with a login request
sent from the auth flow, keep the session, and when the server says the session is lost
(MsgCode 1) log in again once and replay the call. A generation counter and a lock make many
concurrent calls that find the session lost cause one login, not one each.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any, ClassVar

import anyio
import attrs
import httpx

from _huke_k3_core import (
    RETRYABLE_STATUSES,
    USER_AGENT,
    Redactor,
    RetryableResponse,
    dumps,
    mask,
    snippet,
)

from ._errors import K3CloudConfigError, K3CloudHTTPError, K3CloudResponseError, LoginError
from ._signing import login_sign, signed_headers, split_app_id
from ._wire import AUTH_SERVICE, MSG_SESSION_LOST, SERVICE_SUFFIX, SESSION_COOKIE, msg_code_of

Clock = Callable[[], float]

#: ``LoginResultType`` values that mean the session is usable (-5: an activation prompt).
LOGIN_SUCCESS = frozenset({1, -5})


def _require(name: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise K3CloudConfigError(f"{name} is required (a non-empty string)")
    return value


def _masked_app_id(app_id: str) -> str:
    # The part after "_" encodes the client secret: show only the client id.
    return app_id.split("_", 1)[0] + "_" + "***"


class SignedHeaderAuth(httpx.Auth):
    """Kingdee's signed-header scheme (official SDK v8): nine headers on every request, no login.

    ``clock`` returns Unix seconds (``time.time``); inject one to sign with a fixed time.
    A malformed ``app_id`` raises ``K3CloudConfigError`` here, not a rejected call later.
    """

    def __init__(
        self,
        acct_id: str,
        user_name: str,
        app_id: str,
        app_secret: str,
        *,
        lcid: int = 2052,
        org_num: int = 0,
        clock: Clock = time.time,
    ) -> None:
        self.acct_id = _require("acct_id", acct_id)
        self.user_name = _require("user_name", user_name)
        self.app_id = _require("app_id", app_id)
        split_app_id(app_id)
        self._app_secret = _require("app_secret", app_secret)
        self.lcid = lcid
        self.org_num = org_num
        self._clock = clock
        #: Masks this auth's secrets in text (shared with the client that uses it).
        self.redactor = Redactor([app_secret, app_id.split("_", 1)[-1]])

    def headers_for(self, path: str) -> dict[str, str]:
        """The signature headers for a request to ``path`` (the URL path) at the clock's time."""
        return signed_headers(
            acct_id=self.acct_id,
            user_name=self.user_name,
            app_id=self.app_id,
            app_secret=self._app_secret,
            lcid=self.lcid,
            org_num=self.org_num,
            path=path,
            timestamp=int(self._clock()),
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the signature headers for the request's path at the clock's current time."""
        request.headers.update(self.headers_for(request.url.path))
        yield request

    def __repr__(self) -> str:
        return (
            f"SignedHeaderAuth(acct_id={self.acct_id!r}, user_name={self.user_name!r}, "
            f"app_id={_masked_app_id(self.app_id)!r}, app_secret={mask(self._app_secret)}, "
            f"lcid={self.lcid!r}, org_num={self.org_num!r})"
        )


@attrs.frozen(repr=False)
class _Session:
    id: str
    cookie_header: str
    generation: int


class _LockStep:
    """What the shared flow yields to ask its driver to take or give back the login lock."""

    def __init__(self, name: str) -> None:
        self.name = name


_ACQUIRE = _LockStep("acquire")
_RELEASE = _LockStep("release")
_Step = httpx.Request | _LockStep
_Flow = Generator[_Step, "httpx.Response | None", None]


class _SessionLogin(httpx.Auth):
    """A session login: log in lazily, keep the session, renew it once when it is lost."""

    requires_response_body = True
    #: The ``AuthService`` operation.
    service: ClassVar[str]

    def __init__(self, acct_id: str, user_name: str, *, lcid: int, secrets: list[str]) -> None:
        self.acct_id = _require("acct_id", acct_id)
        self.user_name = _require("user_name", user_name)
        self.lcid = lcid
        #: Masks this auth's secrets, session ids included, in text (shared with the client).
        self.redactor = Redactor(secrets)
        self._session: _Session | None = None
        self._generation = 0
        self._logins = 0
        self._thread_lock = threading.Lock()
        self._async_lock = anyio.Lock()

    @property
    def login_count(self) -> int:
        """Logins attempted so far (successful or not)."""
        return self._logins

    @property
    def has_session(self) -> bool:
        """Whether a session is held (it may still have expired on the server)."""
        return self._session is not None

    def invalidate(self) -> None:
        """Forget the session: the next call logs in again."""
        self._session = None

    def _parameters(self) -> list[Any]:
        raise NotImplementedError

    # -- the flow, written once; the drivers below supply the lock and the body reads ------------

    def _flow(self, request: httpx.Request) -> _Flow:
        session = self._session
        if session is None:
            yield _ACQUIRE
            if self._session is None:
                yield from self._login(request)
            session = self._session
            yield _RELEASE
        assert session is not None  # _login either set it or raised
        self._apply(request, session)
        response = yield request
        if response is None or not self._session_lost(response):
            return
        yield _ACQUIRE
        # Whoever takes the lock first logs in again; the others find a newer generation.
        if self._session is None or self._session.generation == session.generation:
            yield from self._login(request)
        session = self._session
        yield _RELEASE
        assert session is not None
        self._apply(request, session)
        yield request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self._flow(request)
        held = False
        try:
            step = next(flow)
            while True:
                if step is _ACQUIRE:
                    self._thread_lock.acquire()
                    held = True
                    step = flow.send(None)
                elif step is _RELEASE:
                    held = False
                    self._thread_lock.release()
                    step = flow.send(None)
                else:
                    assert isinstance(step, httpx.Request)
                    response = yield step
                    response.read()
                    step = flow.send(response)
        except StopIteration:
            return
        finally:
            if held:
                self._thread_lock.release()
            flow.close()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """The session flow for ``httpx.AsyncClient``; logins are serialised with an anyio lock."""
        flow = self._flow(request)
        held = False
        try:
            step = next(flow)
            while True:
                if step is _ACQUIRE:
                    await self._async_lock.acquire()
                    held = True
                    step = flow.send(None)
                elif step is _RELEASE:
                    held = False
                    self._async_lock.release()
                    step = flow.send(None)
                else:
                    assert isinstance(step, httpx.Request)
                    response = yield step
                    await response.aread()
                    step = flow.send(response)
        except StopIteration:
            return
        finally:
            if held:
                self._async_lock.release()
            flow.close()

    # -- steps -----------------------------------------------------------------------------------

    def _login(self, request: httpx.Request) -> _Flow:
        self._logins += 1
        self._session = None
        response = yield self._login_request(request)
        assert response is not None
        session_id, cookie_header = self._parse_login(response)
        self._generation += 1
        self._session = _Session(session_id, cookie_header, self._generation)

    def _login_request(self, request: httpx.Request) -> httpx.Request:
        # The AuthService lives next to the business service the request is for.
        base = request.url.path.rsplit("/", 1)[0]
        url = request.url.copy_with(
            path=f"{base}/{AUTH_SERVICE}.{self.service}{SERVICE_SUFFIX}", query=None
        )
        extensions = {k: v for k, v in request.extensions.items() if k == "timeout"}
        return httpx.Request(
            "POST",
            url,
            content=dumps({"parameters": self._parameters()}),
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": request.headers.get("User-Agent", USER_AGENT),
            },
            extensions=extensions,
        )

    def _parse_login(self, response: httpx.Response) -> tuple[str, str]:
        text = self.redactor(snippet(response.text))
        if response.status_code >= 400:
            error = K3CloudHTTPError.from_response(response, text)
            if response.status_code in RETRYABLE_STATUSES:
                # The call the login was for was never sent: safe to retry, even a write.
                raise RetryableResponse(error, retry_after=error.retry_after)
            raise error
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if not isinstance(body, Mapping):
            raise K3CloudResponseError(
                f"{self.service} answered with a body that is not a JSON object: {text!r}",
                body=text,
            )
        result_type = body.get("LoginResultType")
        if isinstance(result_type, bool) or not isinstance(result_type, int):
            result_type = None
        if result_type not in LOGIN_SUCCESS:
            message = body.get("Message")
            raise LoginError(
                self.redactor(snippet(str(message))) if message else "no message",
                result_type=result_type,
                service=self.service,
            )
        cookies = _set_cookies(response)
        session_id = cookies.get(SESSION_COOKIE) or body.get("KDSVCSessionId")
        if not isinstance(session_id, str) or not session_id:
            raise K3CloudResponseError(
                f"{self.service} accepted the login but sent no session id (no "
                f"{SESSION_COOKIE} cookie, no KDSVCSessionId)",
                body=self.redactor(text),
            )
        self.redactor.add(session_id, *cookies.values())
        cookies[SESSION_COOKIE] = session_id
        return session_id, "; ".join(f"{name}={value}" for name, value in cookies.items())

    def _apply(self, request: httpx.Request, session: _Session) -> None:
        request.headers[SESSION_COOKIE] = session.id
        request.headers["Cookie"] = session.cookie_header

    def _session_lost(self, response: httpx.Response) -> bool:
        return response.status_code == 200 and msg_code_of(response.content) == MSG_SESSION_LOST

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(acct_id={self.acct_id!r}, user_name={self.user_name!r}, "
            f"lcid={self.lcid!r}, session={mask(self._session.id if self._session else None)})"
        )


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(header)
        except CookieError:
            continue  # one malformed cookie must not cost the session cookie
        cookies.update({name: morsel.value for name, morsel in jar.items()})
    return cookies


class PasswordLogin(_SessionLogin):
    """Session login with a user's password (``AuthService.ValidateUser``)."""

    service = "ValidateUser"

    def __init__(self, acct_id: str, user_name: str, password: str, *, lcid: int = 2052) -> None:
        self._password = _require("password", password)
        super().__init__(acct_id, user_name, lcid=lcid, secrets=[password])

    def _parameters(self) -> list[Any]:
        return [self.acct_id, self.user_name, self._password, self.lcid]


class AppSecretLogin(_SessionLogin):
    """Session login with an app id and app secret (``AuthService.LoginByAppSecret``)."""

    service = "LoginByAppSecret"

    def __init__(
        self, acct_id: str, user_name: str, app_id: str, app_secret: str, *, lcid: int = 2052
    ) -> None:
        self.app_id = _require("app_id", app_id)
        split_app_id(app_id)
        self._app_secret = _require("app_secret", app_secret)
        super().__init__(acct_id, user_name, lcid=lcid, secrets=[app_secret])

    def _parameters(self) -> list[Any]:
        return [self.acct_id, self.user_name, self.app_id, self._app_secret, self.lcid]


class SignLogin(_SessionLogin):
    """Session login with a SHA-256 sign (``AuthService.LoginBySign``), Kingdee's recommended one.

    The app secret never travels: only ``sha256(sorted(acct, user, app_id, secret, ts))``.
    """

    service = "LoginBySign"

    def __init__(
        self,
        acct_id: str,
        user_name: str,
        app_id: str,
        app_secret: str,
        *,
        lcid: int = 2052,
        clock: Clock = time.time,
    ) -> None:
        self.app_id = _require("app_id", app_id)
        split_app_id(app_id)
        self._app_secret = _require("app_secret", app_secret)
        self._clock = clock
        super().__init__(acct_id, user_name, lcid=lcid, secrets=[app_secret])

    def _parameters(self) -> list[Any]:
        ts = int(self._clock())
        sign = login_sign(self.acct_id, self.user_name, self.app_id, self._app_secret, ts)
        return [self.acct_id, self.user_name, self.app_id, ts, sign, self.lcid]
