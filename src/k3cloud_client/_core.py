"""``_K3Core``: everything the two clients share but I/O.

It chooses the auth, checks the settings, and turns each operation into a ``Call``: the service,
the body, the parser of the reply and whether it writes. ``K3CloudClient`` and
``AsyncK3CloudClient`` only send calls (``_run``), the batch's chunks included: the batch's plan
(``_BatchSave``) is built here too, the query's pages are ``Pager``'s.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import attrs
import httpx
from typing_extensions import Self

from _huke_k3_core import (
    DEFAULT_TIMEOUT,
    MASK,
    BaseAPIClient,
    ErrorTypes,
    HttpxClientT,
    Id,
    Redactor,
    RetryPolicy,
    TimeoutTypes,
    dumps,
    safe_url,
)
from _huke_k3_core._settings import (
    ARGUMENT,
    DEFAULT,
    Setting,
    check_sources,
    merge_sources,
    resolve_sources,
    transport_settings,
)

from ._auth import (
    AppSecretLogin,
    Clock,
    PasswordLogin,
    SignedHeaderAuth,
    SignLogin,
    _AppLogin,
    _masked_app_id,
)
from ._batch import BatchPlan, Chunk, to_wire_model
from ._config import settings_from_env, settings_from_ini
from ._options import FieldKeys, QueryOptions, SaveOptions, wire_options
from ._replies import BatchReply, Replies
from ._wire import form_body, service_path
from .errors import (
    K3CloudAuthenticationError,
    K3CloudConfigError,
    K3CloudConnectionError,
    K3CloudError,
    K3CloudHTTPError,
    K3CloudResponseError,
    K3CloudTimeoutError,
)
from .models import OperationRow, SavedRow

logger = logging.getLogger("k3cloud_client")

T_co = TypeVar("T_co", covariant=True)
Rows = list[list[Any]]

#: The language (``lcid``) and organisation (``org_num``) when none is given: Simplified Chinese,
#: and 0 (the account's own).
DEFAULT_LCID = 2052
DEFAULT_ORG_NUM = 0
#: How ``describe_settings`` names each login scheme (the first match of the auth's class).
AUTH_KINDS: tuple[tuple[type[httpx.Auth], str], ...] = (
    (SignedHeaderAuth, "signed headers"),
    (SignLogin, "LoginBySign"),
    (AppSecretLogin, "app secret login"),
    (PasswordLogin, "password"),
)


@attrs.frozen
class Call(Generic[T_co]):
    """One request as the core builds it and a client sends it: a write is retried only when it
    surely never reached the server (unless ``retry_writes``)."""

    service: str
    body: Any
    parse: Callable[[httpx.Response], T_co]
    write: bool


class _BatchSave:
    """One ``batch_save`` under way: its plan, and the call of each chunk."""

    def __init__(self, plan: BatchPlan, parse: Callable[[httpx.Response], BatchReply]) -> None:
        self.plan = plan
        self._parse = parse

    def call(self, chunk: Chunk) -> Call[BatchReply] | None:
        """The chunk's BatchSave call; None after a fatal error (its rows are then recorded as
        not sent)."""
        if self.plan.fatal is not None:
            self.plan.skipped(chunk)
            return None
        return Call("BatchSave", self.plan.body(chunk), self._parse, write=True)

    def settle(self, chunk: Chunk, outcome: BatchReply | K3CloudError | None) -> None:
        """Record what sending the chunk's call gave: its reply, or the error it failed with."""
        if isinstance(outcome, K3CloudError):
            self.plan.call_failed(chunk, outcome)
        elif outcome is not None:
            self.plan.answered(chunk, *outcome)


class _K3Core(BaseAPIClient[HttpxClientT]):
    """Everything but I/O, shared by the sync and the async client."""

    _errors: ClassVar[ErrorTypes] = ErrorTypes(
        http_status=K3CloudHTTPError,
        connection=K3CloudConnectionError,
        timeout=K3CloudTimeoutError,
        response_format=K3CloudResponseError,
        config=K3CloudConfigError,
    )
    _logger: ClassVar[logging.Logger] = logger
    #: The proxy of ``from_ini``'s connection pool (``x-kdapi-proxy``), for ``describe_settings``.
    _proxy: str | None = None

    def __init__(
        self,
        server_url: str | httpx.URL,
        *,
        acct_id: str,
        user_name: str,
        app_id: str | None = None,
        app_secret: str | None = None,
        password: str | None = None,
        lcid: int = DEFAULT_LCID,
        org_num: int = DEFAULT_ORG_NUM,
        auth: httpx.Auth | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        retry_writes: bool = False,
        http_client: HttpxClientT | None = None,
        clock: Clock = time.time,
        setting_sources: Mapping[str, str] | None = None,
    ) -> None:
        own_sources = resolve_sources(
            check_sources(setting_sources, K3CloudConfigError),
            {
                "server_url": (server_url, None),
                "acct_id": (acct_id, None),
                "user_name": (user_name, None),
                "auth": (auth, None),
                "app_id": (app_id, None),
                "app_secret": (app_secret, None),
                "password": (password, None),
                "lcid": (lcid, DEFAULT_LCID),
                "org_num": (org_num, DEFAULT_ORG_NUM),
            },
        )
        self.acct_id = acct_id
        self.user_name = user_name
        self.lcid = lcid
        self.org_num = org_num
        #: Whether writes are retried after failures that may have reached the server.
        self.retry_writes = retry_writes
        self.auth: httpx.Auth = auth or _default_auth(
            acct_id,
            user_name,
            app_id,
            app_secret,
            password,
            lcid=lcid,
            org_num=org_num,
            clock=clock,
        )
        shared = getattr(self.auth, "redactor", None)
        redactor = shared if isinstance(shared, Redactor) else Redactor()
        redactor.add(app_secret, password)
        # Raises K3CloudConfigError (``_errors.config``) naming the bad setting.
        super().__init__(
            base_url=server_url,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            # mypy does not carry the TypeVar's constraint through super() here.
            http_client=http_client,  # type: ignore[arg-type]
            redactor=redactor,
            url_setting="server_url",
            setting_sources=own_sources,
        )
        self._replies = Replies(self.decode_json, redactor)

    # -- construction from settings ---------------------------------------------------------

    @classmethod
    def from_env(cls, *, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """A client from ``K3CLOUD_SERVER_URL``, ``K3CLOUD_ACCT_ID``, ``K3CLOUD_USER_NAME``,
        ``K3CLOUD_APP_ID`` + ``K3CLOUD_APP_SECRET`` or ``K3CLOUD_PASSWORD``, and optionally
        ``K3CLOUD_LCID`` and ``K3CLOUD_ORG_NUM``. ``overrides`` are other constructor arguments.
        A missing setting raises ``K3CloudConfigError`` naming it. ``describe_settings()`` names
        the variable of each setting read."""
        settings, sources = settings_from_env(environ)
        return cls._made(settings, sources, overrides)

    @classmethod
    def from_ini(
        cls, path: str | os.PathLike[str], section: str | None = None, **overrides: Any
    ) -> Self:
        """A client from the official SDK's ``conf.ini`` (``x-kdapi-*`` keys of ``section``,
        by default ``config``), so that its users switch without rewriting their config.
        ``overrides`` are other constructor arguments. ``describe_settings()`` names the file,
        section and key of each setting read."""
        settings, sources = settings_from_ini(path, section, given=overrides.keys())
        proxy = settings.pop("proxy", None)
        owned = proxy is not None and "http_client" not in overrides
        http = (
            {"http_client": cls._proxied_http(proxy, settings.get("timeout", DEFAULT_TIMEOUT))}
            if owned
            else {}
        )
        client = cls._made({**settings, **http}, sources, overrides)
        client._owns_http = owned or client._owns_http
        if owned:
            client._proxy = proxy
        return client

    @classmethod
    def _made(
        cls, settings: dict[str, Any], sources: dict[str, str], overrides: dict[str, Any]
    ) -> Self:
        """A client of a factory's ``settings`` read from ``sources``, ``overrides`` on top."""
        sources = merge_sources(sources, overrides, K3CloudConfigError)
        return cls(**{**settings, **overrides}, setting_sources=sources)

    @classmethod
    def _proxied_http(cls, proxy: str, timeout: httpx.Timeout) -> HttpxClientT:
        raise NotImplementedError

    # -- sending -------------------------------------------------------------------------------

    def _request_factory(self, call: Call[Any]) -> Callable[[], httpx.Request]:
        path = service_path(call.service)
        content = dumps(call.body)
        return lambda: self._build_request(path, content)

    def _idempotent(self, call: Call[Any]) -> bool:
        return not call.write or self.retry_writes

    def _retry_delay(
        self,
        exc: Exception,
        retries: int,
        *,
        idempotent: bool,
        request: httpx.Request | None = None,
    ) -> float:
        # Rejected credentials stay rejected: no point repeating the call.
        if isinstance(exc, K3CloudAuthenticationError):
            raise exc
        return super()._retry_delay(exc, retries, idempotent=idempotent, request=request)

    # -- calls -------------------------------------------------------------------------------

    def _batch_save(
        self, form_id: str, models: Iterable[object], chunk_size: int, options: SaveOptions
    ) -> _BatchSave:
        wire = options.to_wire()
        plan = BatchPlan(form_id, models, chunk_size=chunk_size, options=wire, logger=self._logger)
        return _BatchSave(plan, self._replies.batch(f"BatchSave {form_id}"))

    def _save_call(self, form_id: str, model: object, options: SaveOptions) -> Call[SavedRow]:
        data = {"Model": to_wire_model(model, 0), **options.to_wire()}
        parse = self._replies.saved_one(f"Save {form_id}")
        return Call("Save", form_body(form_id, data), parse, write=True)

    def _operation_call(
        self,
        op: str,
        form_id: str,
        numbers: Sequence[str] | None,
        ids: Sequence[Id] | None,
        extra: Mapping[str, Any],
    ) -> Call[list[OperationRow]]:
        if not numbers and not ids:
            raise ValueError("give numbers= or ids= (at least one)")
        data: dict[str, Any] = {}
        if numbers:
            data["Numbers"] = [str(n) for n in numbers]
        if ids:
            data["Ids"] = ",".join(str(i) for i in ids)
        data.update(wire_options({}, extra))
        parse = self._replies.acted_on(f"{op} {form_id}")
        return Call(op, form_body(form_id, data), parse, write=True)

    def _allocate_call(
        self,
        form_id: str,
        ids: Sequence[Id],
        to_orgs: Sequence[Id],
        is_auto_submit_and_audit: bool,
        extra: Mapping[str, Any],
    ) -> Call[list[OperationRow]]:
        for name, values in (("ids", ids), ("to_orgs", to_orgs)):
            if not isinstance(values, Sequence) or isinstance(values, str | bytes) or not values:
                raise ValueError(f"{name}= takes a non-empty list of internal ids, got {values!r}")
        named = {
            "PkIds": ",".join(str(i) for i in ids),
            "TOrgIds": ",".join(str(o) for o in to_orgs),
            "IsAutoSubmitAndAudit": is_auto_submit_and_audit,
        }
        data = wire_options(named, extra)
        parse = self._replies.acted_on(f"Allocate {form_id}")
        return Call("Allocate", form_body(form_id, data), parse, write=True)

    def _view_call(
        self, form_id: str, number: str | None, id: Id | None, extra: Mapping[str, Any]
    ) -> Call[dict[str, Any]]:
        if (number is None) == (id is None):
            raise ValueError("give exactly one of number= or id=")
        data: dict[str, Any] = {"Number": number} if number is not None else {"Id": str(id)}
        data.update(wire_options({}, extra))
        parse = self._replies.document(f"View {form_id}")
        return Call("View", form_body(form_id, data), parse, write=False)

    def _rows_call(self, form_id: str, field_keys: FieldKeys, query: QueryOptions) -> Call[Rows]:
        body = query.body(form_id, field_keys)
        parse = self._replies.rows(f"ExecuteBillQuery {form_id}")
        return Call("ExecuteBillQuery", body, parse, write=False)

    def _objects_call(
        self, form_id: str, field_keys: FieldKeys, query: QueryOptions
    ) -> Call[list[dict[str, Any]]]:
        body = query.body(form_id, field_keys)
        parse = self._replies.objects(f"BillQuery {form_id}")
        return Call("BillQuery", body, parse, write=False)

    def _execute_call(
        self, service: str, body: Mapping[str, Any] | Sequence[Any], idempotent: bool
    ) -> Call[Any]:
        return Call(service, body, self._replies.raw(service), write=not idempotent)

    def describe_settings(self) -> tuple[Setting, ...]:
        """Every setting of this client, the value as it may be shown and where it came from.

        Sources: ``"environment K3CLOUD_ACCT_ID"`` (``from_env``),
        ``"conf.ini '/path/conf.ini' [config] x-kdapi-acctid"`` (``from_ini``), ``"argument"``
        (passed to the constructor or as an override), ``"default"``, or what the
        ``setting_sources=`` keyword of the constructor names (a factory's record, by argument
        name). ``auth`` is the login scheme; the app secret and password show only as set
        (``***``), the app id as its client id (what follows its ``_`` encodes a secret), a URL
        or proxy without its password.

        ``setting_sources`` is a constructor keyword, not a setter, so that a client never changes
        once made and a factory passes each source in the same call as its value.
        """
        sources: Mapping[str, str] = self._setting_sources
        url, *transport = transport_settings(
            url_name="server_url",
            url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            sources=sources,
            proxy=self._proxy,
        )
        return (
            url,
            Setting("acct_id", self.acct_id, sources["acct_id"]),
            Setting("user_name", self.user_name, sources["user_name"]),
            *_credentials(self.auth, sources),
            Setting("lcid", str(self.lcid), sources["lcid"]),
            Setting("org_num", str(self.org_num), sources["org_num"]),
            *transport,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(server_url={safe_url(self.base_url)!r}, acct_id={self.acct_id!r}, "
            f"user_name={self.user_name!r}, auth={self.auth!r})"
        )


def _credentials(auth: httpx.Auth, sources: Mapping[str, str]) -> list[Setting]:
    """The login scheme and its credentials, masked. An auth passed in carries its credentials:
    they come from where it came from."""
    kind = next((name for cls, name in AUTH_KINDS if isinstance(auth, cls)), None)
    origin = sources["auth"]
    found = [Setting("auth", kind or f"custom ({type(auth).__name__})", origin)]

    def source(name: str) -> str:
        return sources.get(name, ARGUMENT) if origin == DEFAULT else origin

    if isinstance(auth, SignedHeaderAuth | _AppLogin):
        # The constructors of these checked the app id's form and refuse an empty secret.
        found.append(Setting("app_id", _masked_app_id(auth.app_id), source("app_id"), secret=True))
        found.append(Setting("app_secret", MASK, source("app_secret"), secret=True))
    elif isinstance(auth, PasswordLogin):
        found.append(Setting("password", MASK, source("password"), secret=True))
    return found


def _default_auth(
    acct_id: str,
    user_name: str,
    app_id: str | None,
    app_secret: str | None,
    password: str | None,
    *,
    lcid: int,
    org_num: int,
    clock: Clock,
) -> httpx.Auth:
    if app_id and app_secret:
        return SignedHeaderAuth(
            acct_id, user_name, app_id, app_secret, lcid=lcid, org_num=org_num, clock=clock
        )
    if password:
        return PasswordLogin(acct_id, user_name, password, lcid=lcid)
    if app_id or app_secret:
        missing = "app_secret" if app_id else "app_id"
        raise K3CloudConfigError(f"{missing} is missing: app_id and app_secret go together")
    raise K3CloudConfigError(
        "no credentials: give app_id and app_secret (signed headers), password, or auth="
    )
