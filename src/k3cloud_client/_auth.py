"""Authentication, as ``httpx.Auth`` classes.

``SignedHeaderAuth`` signs every request (the official SDK v8 default; no login). The session
logins (``PasswordLogin``, ``AppSecretLogin``, ``SignLogin``) log in lazily with a login request
sent from the auth flow, keep the session, and when the server says the session is lost
(MsgCode 1) log in again and replay the call. One login per lost session, however many concurrent
calls find it lost: a generation counter and a lock make the first of them log in and the others
use its session. The sync and async clients behave alike because every session loss is handled
the way a lone call meets it: the re-login waits until no call sent with the lost session is still
out, and a new session carries one call before the others use it.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from functools import partial
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import attrs
import httpx

from _huke_k3_core import (
    RETRYABLE_STATUSES,
    USER_AGENT,
    Redactor,
    RetryableResponse,
    SDKError,
    dumps,
    mask,
    snippet,
)
from _huke_k3_core._transport import loads

if TYPE_CHECKING:
    import anyio

from ._wire import AUTH_SERVICE, MSG_SESSION_LOST, SERVICE_SUFFIX, SESSION_COOKIE, msg_code_of
from .errors import (
    K3CloudConfigError,
    K3CloudError,
    K3CloudHTTPError,
    K3CloudResponseError,
    LoginError,
    SessionLostError,
)
from .signing import app_id_secrets, kd_signature, login_sign, signed_headers, split_app_id

Clock = Callable[[], float]

#: ``LoginResultType`` values that mean the session is usable (-5: an activation prompt).
LOGIN_SUCCESS = frozenset({1, -5})
#: A login cookie this long is taken for a session token (and registered as a secret).
#: Login cookies besides the session's registered from one reply, at most.
_EXTRA_SESSION_COOKIES = 4
_TOKEN_COOKIE_LENGTH = 16


def _require(name: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise K3CloudConfigError(f"{name} is required (a non-empty string)")
    return value


def _app_credentials(app_id: str, app_secret: str) -> tuple[str, str]:
    """``(app_id, app_secret)``, both given and the app id well-formed (K3CloudConfigError)."""
    _require("app_id", app_id)
    split_app_id(app_id)
    return app_id, _require("app_secret", app_secret)


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
        self.app_id, self._app_secret = _app_credentials(app_id, app_secret)
        self.lcid = lcid
        self.org_num = org_num
        self._clock = clock
        # X-Kd-Signature signs no path or time: one value per account, replayable with any body.
        self._kd_signature = kd_signature(
            app_id, app_secret, acct_id=acct_id, user_name=user_name, lcid=lcid, org_num=org_num
        )
        #: Masks this auth's secrets and signatures in text (shared with the client that uses it).
        self.redactor = Redactor([app_secret, *app_id_secrets(app_id), self._kd_signature])

    def headers_for(self, path: str) -> dict[str, str]:
        """The signature headers for a request to ``path`` (the URL path) at the clock's time."""
        headers = signed_headers(
            acct_id=self.acct_id,
            user_name=self.user_name,
            app_id=self.app_id,
            app_secret=self._app_secret,
            lcid=self.lcid,
            org_num=self.org_num,
            path=path,
            timestamp=int(self._clock()),
        )
        constant = headers["X-Kd-Signature"]
        if constant != self._kd_signature:  # lcid or org_num changed since construction
            self.redactor.add(constant)
            self._kd_signature = constant
        # It changes with every second and path: a bounded pool holds the recent ones.
        self.redactor.add_signature(headers["X-Api-Signature"])
        return headers

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


@attrs.frozen
class _Send:
    """A call sent with the session of ``generation``: out, for the drivers, until answered."""

    request: httpx.Request
    generation: int


@attrs.frozen
class _Drain:
    """Wait until no call sent with the session of ``generation`` is out (at most ``limit`` s)."""

    generation: int
    limit: float | None


_Step = httpx.Request | _LockStep | _Send | _Drain
_Flow = Generator[_Step, "httpx.Response | None", None]

#: New sessions refused in a row, before serving any call, after which a call gives up: the
#: server then refuses sessions (say, servers behind a balancer that do not share them) rather
#: than losing them, and logging in again would only repeat that.
FRESH_SESSION_REFUSALS = 2


def _read_timeout(request: httpx.Request) -> float | None:
    # The calls a re-login waits for were sent with the same timeouts: by then they are back.
    timeout = request.extensions.get("timeout")
    read = timeout.get("read") if isinstance(timeout, Mapping) else None
    return float(read) if isinstance(read, (int, float)) else None


class _SessionLogin(httpx.Auth):
    """A session login: log in lazily, keep the session, renew it when it is lost.

    A call refused with a session that had served a call is replayed with the next one, as often
    as that happens; new sessions refused ``FRESH_SESSION_REFUSALS`` times in a row before
    serving anything end the call with ``SessionLostError``.
    """

    requires_response_body = True
    #: The ``AuthService`` operation.
    service: ClassVar[str]

    def __init__(self, acct_id: str, user_name: str, *, lcid: int, secrets: list[str]) -> None:
        self.acct_id = _require("acct_id", acct_id)
        self.user_name = _require("user_name", user_name)
        self.lcid = lcid
        #: Masks this auth's secrets, session ids and login signs in text (shared with the
        #: client). Session ids are registered as each login's reply arrives.
        self.redactor = Redactor(secrets)
        self._session: _Session | None = None
        self._generation = 0
        self._logins = 0
        #: The generation of the newest session that served a call (0: none yet).
        self._proven = 0
        #: New sessions refused in a row before they served a call.
        self._fresh_refusals = 0
        #: Times a call gave up on refused sessions: callers queued for the lock meanwhile give
        #: up with it instead of logging in for one more refusal each.
        self._give_ups = 0
        #: Calls out per session generation (guarded by ``_state``, which threads wait on).
        self._out: collections.Counter[int] = collections.Counter()
        self._state = threading.Condition()
        self._drained: anyio.Event | None = None
        self._thread_lock = threading.Lock()
        # Made on the first async call (anyio is not loaded by sync programs); no await comes
        # between the check and the assignment, so one event loop makes exactly one.
        self._async_lock: anyio.Lock | None = None

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
        with self._state:
            self._session = None

    def _parameters(self) -> list[Any]:
        raise NotImplementedError

    # -- the flow, written once; the drivers below supply the lock and the body reads ------------

    def _flow(self, request: httpx.Request) -> _Flow:
        # Every loss of a session that had served a call is a real one: the call is replayed
        # with the next session, however often concurrent calls make that happen.
        while True:
            session = self._session
            if session is None or session.generation != self._proven:
                session = yield from self._under_lock(request)
                if session is None:
                    return  # this call went with a new session: its reply stands
            self._apply(request, session)
            response = yield _Send(request, session.generation)
            if response is None or not self._session_lost(response):
                return
            self._forget(session)

    def _under_lock(
        self, request: httpx.Request
    ) -> Generator[_Step, httpx.Response | None, _Session | None]:
        """Take the login lock; give back a session another call proved (the lock released), or
        send ``request`` with new sessions itself and give back None."""
        give_ups = self._give_ups
        yield _ACQUIRE
        while True:
            session = self._session
            if session is not None and session.generation == self._proven:
                yield _RELEASE
                return session
            if session is None:
                if self._give_ups != give_ups and self._fresh_refusals >= FRESH_SESSION_REFUSALS:
                    raise self._refusing(request)
                # A call still out with the lost session must not reach the server after the
                # new session's login: on a server that ends sessions, it could end the new one
                # before any call used it.
                yield _Drain(self._generation, _read_timeout(request))
                yield from self._login(request)
                session = self._session
                assert session is not None  # _login either set it or raised
            # A new session carries this one call, and the others wait: refused, it costs one
            # call, not every call in flight, and the next login follows at once.
            self._apply(request, session)
            response = yield _Send(request, session.generation)
            assert response is not None
            if not self._session_lost(response):
                if response.status_code == 200:  # a gateway's 5xx proves nothing
                    self._proven = session.generation
                    self._fresh_refusals = 0
                yield _RELEASE
                return None
            self._forget(session)
            self._fresh_refusals += 1
            if self._fresh_refusals >= FRESH_SESSION_REFUSALS:
                self._give_ups += 1
                yield _RELEASE
                return None  # the refusal reaches the caller as SessionLostError

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
                elif isinstance(step, _Drain):
                    with self._state:
                        self._state.wait_for(partial(self._idle, step.generation), step.limit)
                    step = flow.send(None)
                elif isinstance(step, _Send):
                    self._sending(step.generation)
                    try:
                        response = yield step.request
                        response.read()
                    finally:
                        self._answered(step.generation)
                    step = flow.send(response)
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
        import anyio  # loaded on the first async call: sync programs never pay for it

        if self._async_lock is None:
            self._async_lock = anyio.Lock()
        lock = self._async_lock
        flow = self._flow(request)
        held = False
        try:
            step = next(flow)
            while True:
                if step is _ACQUIRE:
                    await lock.acquire()
                    held = True
                    step = flow.send(None)
                elif step is _RELEASE:
                    held = False
                    lock.release()
                    step = flow.send(None)
                elif isinstance(step, _Drain):
                    with anyio.move_on_after(step.limit):
                        while not self._idle(step.generation):
                            self._drained = anyio.Event()
                            await self._drained.wait()
                    self._drained = None
                    step = flow.send(None)
                elif isinstance(step, _Send):
                    self._sending(step.generation)
                    try:
                        response = yield step.request
                        await response.aread()
                    finally:
                        self._answered(step.generation)
                    step = flow.send(response)
                else:
                    assert isinstance(step, httpx.Request)
                    response = yield step
                    await response.aread()
                    step = flow.send(response)
        except StopIteration:
            return
        finally:
            if held:
                lock.release()
            flow.close()

    # -- steps -----------------------------------------------------------------------------------

    def _login(self, request: httpx.Request) -> _Flow:
        self._logins += 1
        response = yield self._login_request(request)
        assert response is not None
        try:
            session_id, cookie_header = self._parse_login(response)
        except RetryableResponse as exc:
            _not_sent(exc.error)
            raise
        except K3CloudError as exc:
            _not_sent(exc)
            raise
        with self._state:
            self._generation += 1
            self._session = _Session(session_id, cookie_header, self._generation)

    def _forget(self, session: _Session) -> None:
        # At once, not under the login lock: calls not sent yet then wait for a new session
        # instead of going out to be refused with this one.
        with self._state:
            if self._session is session:
                self._session = None

    def _idle(self, generation: int) -> bool:
        return not self._out[generation]

    def _sending(self, generation: int) -> None:
        with self._state:
            self._out[generation] += 1

    def _answered(self, generation: int) -> None:
        with self._state:
            self._out[generation] -= 1
            if self._out[generation] > 0:
                return
            del self._out[generation]
            self._state.notify_all()
        if self._drained is not None:
            self._drained.set()

    def _refusing(self, request: httpx.Request) -> SessionLostError:
        name = request.url.path.rsplit("/", 1)[-1].removesuffix(SERVICE_SUFFIX)
        return _not_sent(
            SessionLostError(
                f"not sent: K/3 Cloud refused the last {self._fresh_refusals} new sessions before "
                "they served any call (check the user, the data centre, and that the servers behind "
                "a load balancer share sessions)",
                msg_code=MSG_SESSION_LOST,
                operation=name.rpartition(".")[2],
            )
        )

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
        # Every session value of the reply is registered before any of its text is quoted, even
        # that of a refused login.
        cookies = _set_cookies(response)
        try:
            body = loads(response.content)
        except ValueError:
            body = None
        body_session = body.get("KDSVCSessionId") if isinstance(body, Mapping) else None
        session = cookies.get(SESSION_COOKIE)
        others = [
            value
            for name, value in cookies.items()
            if name != SESSION_COOKIE and len(value) >= _TOKEN_COOKIE_LENGTH
        ]
        self.redactor.add_session(
            # Other cookies (ASP.NET_SessionId...) when they look like tokens, not settings such
            # as a language, which masking would garble every text with; a few at most, and
            # registered first, so that however many a reply sets, the session's own values
            # are the newest in the bounded pool, never pushed out by them.
            *others[:_EXTRA_SESSION_COOKIES],
            session,
            body_session if isinstance(body_session, str) else None,
        )
        text = self.redactor(snippet(response.text))
        if response.status_code >= 300:  # a redirect too: it names where it leads
            error = K3CloudHTTPError.from_response(response, text, redact=self.redactor)
            if response.status_code in RETRYABLE_STATUSES:
                # The call the login was for was never sent: safe to retry, even a write.
                raise RetryableResponse(error, retry_after=error.retry_after)
            raise error
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
            shown = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
            raise LoginError(
                self.redactor(snippet(shown)) if message else "no message",
                result_type=result_type,
                service=self.service,
            )
        session_id = cookies.get(SESSION_COOKIE) or body_session
        if not isinstance(session_id, str) or not session_id:
            raise K3CloudResponseError(
                f"{self.service} accepted the login but sent no session id (no "
                f"{SESSION_COOKIE} cookie, no KDSVCSessionId)",
                body=text,
            )
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


_E = TypeVar("_E", bound=Exception)


def _not_sent(error: _E) -> _E:
    """``error``, marked as raised before the caller's request was sent (a login failed first):
    a write it stopped was not carried out, and is safe to send again."""
    if isinstance(error, SDKError):
        error.request_sent = False
    return error


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
        # Any length: a short one is masked as a whole token.
        super().__init__(acct_id, user_name, lcid=lcid, secrets=[password])

    def _parameters(self) -> list[Any]:
        return [self.acct_id, self.user_name, self._password, self.lcid]


class _AppLogin(_SessionLogin):
    """A session login with an app id and app secret."""

    def __init__(
        self, acct_id: str, user_name: str, app_id: str, app_secret: str, *, lcid: int = 2052
    ) -> None:
        self.app_id, self._app_secret = _app_credentials(app_id, app_secret)
        # The app id travels in the login body: its secret part must not come back in a message.
        super().__init__(
            acct_id, user_name, lcid=lcid, secrets=[app_secret, *app_id_secrets(app_id)]
        )


class AppSecretLogin(_AppLogin):
    """Session login with an app id and app secret (``AuthService.LoginByAppSecret``)."""

    service = "LoginByAppSecret"

    def _parameters(self) -> list[Any]:
        return [self.acct_id, self.user_name, self.app_id, self._app_secret, self.lcid]


class SignLogin(_AppLogin):
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
        self._clock = clock
        super().__init__(acct_id, user_name, app_id, app_secret, lcid=lcid)

    def _parameters(self) -> list[Any]:
        ts = int(self._clock())
        sign = login_sign(self.acct_id, self.user_name, self.app_id, self._app_secret, ts)
        # Valid for the server's clock skew: a leaked one logs anybody in until then.
        self.redactor.add_signature(sign)
        return [self.acct_id, self.user_name, self.app_id, ts, sign, self.lcid]
