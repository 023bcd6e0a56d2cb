"""Many shops from one file: each tenant's Huke and K/3 Cloud settings, transform and windows.

```python
from huke_k3_bridge import load_tenants, sync_customers

tenants = load_tenants("tenants.toml")
shop = tenants["shop-a"]
with shop.huke_client() as huke, shop.k3_client() as k3:
    report = sync_customers(huke, k3, options=shop.sync_options(start=start, end=end))
```

The file names environment variables, never secrets; they are read when a client is made (a
dispatcher that only plans windows needs none). The format: docs/tenants.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import attrs
import httpx
from typing_extensions import Unpack

from _huke_k3_core._settings import merge_sources, named_by
from huke_client import DEFAULT_BASE_URL, AsyncHukeClient, HukeClient, HukeConfigError
from k3cloud_client import AsyncK3CloudClient, K3CloudClient, K3CloudConfigError

from ._errors import TenantsError
from ._options import AsyncSyncKwargs, SyncOptions
from ._state import DEFAULT_OVERLAP
from ._tenants_file import read_tenants, setting_source, tenant_error, tenant_prefix
from ._transform import Transform, trade_to_customer
from ._windows import DEFAULT_WINDOW

__all__ = ["HukeSettings", "K3Settings", "Tenant", "Tenants", "TenantsError", "load_tenants"]

_Client = TypeVar("_Client")
#: Default ports, dropped from ``k3_account``: ``http://erp:80/`` and ``http://erp/`` are one ERP.
_DEFAULT_PORTS = {"http": 80, "https": 443}


@attrs.frozen(kw_only=True)
class HukeSettings:
    """A tenant's ``huke`` table: the names of the variables holding its key and secret, and
    the optional base URL and enterprise id (values, not secrets)."""

    app_key_env: str
    app_secret_env: str
    base_url: str | None = None
    eid: str | None = None


@attrs.frozen(kw_only=True)
class K3Settings:
    """A tenant's ``k3`` table: the server, account and user (values), and the names of the
    variables holding its app id and secret, or its password."""

    server_url: str
    acct_id: str
    user_name: str
    app_id_env: str | None = None
    app_secret_env: str | None = None
    password_env: str | None = None
    lcid: int | None = None
    org_num: int | None = None


@attrs.frozen(kw_only=True, repr=False)
class Tenant:
    """One shop of a tenants file: its settings, and the clients and run options made from them.

    Attributes:
        name: the tenant's name (the ``NAME`` of ``[tenants.NAME]``).
        huke: its Huke settings (names of environment variables, not their values).
        k3: its K/3 Cloud settings (names of environment variables, not their values).
        window: the longest range fetched in one go, and the fleet's window size (default 1 day).
        overlap: how far before the stored watermark a resumed run starts (default
            ``DEFAULT_OVERLAP``).
        state_path: its watermark file (the CLI's ``--state``), or ``None``.
        transform_ref: its transform as ``"module:function"``, or ``None`` for the scheme's.
        source: the tenants file it was read from, named in errors.
    """

    name: str
    huke: HukeSettings
    k3: K3Settings
    window: timedelta = DEFAULT_WINDOW
    overlap: timedelta = DEFAULT_OVERLAP
    state_path: str | None = None
    transform_ref: str | None = None
    source: str | None = None

    def __repr__(self) -> str:
        # Names and hosts only: the settings hold no secret, but a repr lands in logs and task
        # results, where the names of a shop's variables are nobody's business either.
        huke_host = httpx.URL(self.huke.base_url or DEFAULT_BASE_URL).host
        return f"Tenant({self.name!r}, huke={huke_host!r}, k3_account={self.k3_account!r})"

    @property
    def k3_account(self) -> str:
        """The K/3 Cloud account, as ``"{server_url}|{acct_id}"`` with the URL normalized (case,
        default port, trailing slash): tenants on one ERP database share it."""
        url = httpx.URL(self.k3.server_url)
        port = "" if url.port in (None, _DEFAULT_PORTS.get(url.scheme)) else f":{url.port}"
        # IIS matches the site's folder in any case: /K3Cloud/ and /k3cloud/ are one server.
        path = url.path.lower().rstrip("/") + "/"
        return f"{url.scheme}://{url.host}{port}{path}|{self.k3.acct_id}"

    def transform(self) -> Transform:
        """The tenant's transform: ``transform_ref`` imported, or the scheme's
        ``trade_to_customer``. A ``TenantsError`` names the tenant and the reference when the
        module cannot be imported, lacks the name, or holds no callable there."""
        if self.transform_ref is None:
            return trade_to_customer
        module_name, _, attribute = self.transform_ref.partition(":")
        import importlib

        try:
            found: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise self._error(
                "transform",
                f"cannot import module {module_name!r} of {self.transform_ref!r} "
                f"({type(exc).__name__}: {exc}); is it installed, or on PYTHONPATH?",
            ) from exc
        for part in attribute.split("."):
            if not hasattr(found, part):
                raise self._error(
                    "transform", f"{self.transform_ref!r}: {found.__name__!r} has no {part!r}"
                )
            found = getattr(found, part)
        if not callable(found):
            raise self._error(
                "transform",
                f"{self.transform_ref!r} is {type(found).__name__}, not a function of a trade",
            )
        return found  # type: ignore[no-any-return]

    def sync_options(self, **keywords: Unpack[AsyncSyncKwargs]) -> SyncOptions:
        """The run's options: the tenant's transform and window, then ``keywords`` (``start=``,
        ``end=``, ``state=``, any option of :class:`SyncOptions`) on top."""
        options: dict[str, Any] = {"window": self.window, **keywords}
        if "transform" not in keywords:  # a transform given needs none imported
            options["transform"] = self.transform()
        return SyncOptions(**options)

    # -- clients -------------------------------------------------------------------------------

    def huke_client(
        self, *, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> HukeClient:
        """A ``HukeClient`` with the tenant's settings and the secrets read now from ``environ``
        (default ``os.environ``); ``overrides`` are other constructor arguments (``timeout=``,
        ``http_client=``, ...) and win. A missing variable raises ``TenantsError``. Its
        ``describe_settings()`` names the tenants file's key, or the variable it names, of each
        setting."""
        return self._huke(HukeClient, environ, overrides)

    def async_huke_client(
        self, *, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> AsyncHukeClient:
        """Like :meth:`huke_client`, an ``AsyncHukeClient``."""
        return self._huke(AsyncHukeClient, environ, overrides)

    def k3_client(
        self, *, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> K3CloudClient:
        """A ``K3CloudClient`` with the tenant's settings and the secrets read now from
        ``environ`` (default ``os.environ``); ``overrides`` are other constructor arguments and
        win. A missing variable raises ``TenantsError``."""
        return self._k3(K3CloudClient, environ, overrides)

    def async_k3_client(
        self, *, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> AsyncK3CloudClient:
        """Like :meth:`k3_client`, an ``AsyncK3CloudClient``."""
        return self._k3(AsyncK3CloudClient, environ, overrides)

    def _huke(
        self, cls: type[_Client], environ: Mapping[str, str] | None, overrides: dict[str, Any]
    ) -> _Client:
        settings, sources = self._secrets(
            "huke",
            {"app_key": self.huke.app_key_env, "app_secret": self.huke.app_secret_env},
            environ,
            overrides,
        )
        self._values(settings, sources, "huke", self.huke, ("base_url", "eid"))
        return self._made(cls, settings, sources, overrides, HukeConfigError)

    def _k3(
        self, cls: type[_Client], environ: Mapping[str, str] | None, overrides: dict[str, Any]
    ) -> _Client:
        k3 = self.k3
        secrets = {"app_id": k3.app_id_env, "app_secret": k3.app_secret_env}
        if k3.password_env is not None:
            secrets = {"password": k3.password_env}
        settings, sources = self._secrets("k3", secrets, environ, overrides)
        keys = ("server_url", "acct_id", "user_name", "lcid", "org_num")
        self._values(settings, sources, "k3", k3, keys)
        return self._made(cls, settings, sources, overrides, K3CloudConfigError)

    def _values(
        self,
        settings: dict[str, Any],
        sources: dict[str, str],
        table: str,
        values: HukeSettings | K3Settings,
        keys: tuple[str, ...],
    ) -> None:
        """Add the ``keys`` of ``values`` that are set, and the file's key of each."""
        for key in keys:
            if getattr(values, key) is not None:
                settings[key] = getattr(values, key)
                sources[key] = setting_source(self.source, self.name, f"{table}.{key}")

    @staticmethod
    def _made(
        client_class: type[_Client],
        settings: Mapping[str, Any],
        sources: Mapping[str, str],
        overrides: dict[str, Any],
        error: type[Exception],
    ) -> _Client:
        """A client of ``settings``, ``overrides`` on top; each source recorded for its
        ``describe_settings()``, an override's as ``"argument"`` (or as the caller's
        ``setting_sources=`` names it; ``error``, the client's, when that is not text by text)."""
        recorded = merge_sources(sources, overrides, error)
        return client_class(**{**settings, **overrides, "setting_sources": recorded})

    def _secrets(
        self,
        table: str,
        variables: Mapping[str, str | None],
        environ: Mapping[str, str] | None,
        overrides: Mapping[str, Any],
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Each argument's value from its variable (unless ``overrides`` gives it), and its
        source; one error naming every variable that is unset or empty, and no value."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        missing = []
        for argument, variable in variables.items():
            if variable is None or argument in overrides:
                continue
            value = env.get(variable, "").strip()
            if value:
                values[argument] = value
                key = f"{table}.{argument}_env"
                sources[argument] = named_by(variable, setting_source(self.source, self.name, key))
            else:
                missing.append(
                    f"{table}.{argument}_env: environment variable {variable} is not set (or is "
                    "empty)"
                )
        if missing:
            raise TenantsError(f"{tenant_prefix(self.source, self.name)}{'; '.join(missing)}")
        return values, sources

    def _error(self, key: str, message: str) -> TenantsError:
        return tenant_error(self.source, self.name, key, message)


class Tenants(Mapping[str, Tenant]):
    """The tenants of a file by name, in file order; read-only. ``path`` is the file."""

    __slots__ = ("_path", "_tenants")

    def __init__(self, tenants: Iterable[Tenant], *, path: str) -> None:
        self._path = path
        self._tenants = {tenant.name: tenant for tenant in tenants}

    @property
    def path(self) -> str:
        """The tenants file."""
        return self._path

    def __getitem__(self, name: str) -> Tenant:
        return self._tenants[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tenants)

    def __len__(self) -> int:
        return len(self._tenants)

    def __repr__(self) -> str:
        return f"Tenants({self._path!r}, names={list(self._tenants)!r})"


def load_tenants(path: str | os.PathLike[str]) -> Tenants:
    """The tenants of the TOML file at ``path``, checked: a ``TenantsError`` names the file, the
    tenant and the key of the first problem (an unknown key, a secret written as a value, a
    wrong type, a bad duration or transform reference, no tenant at all). Environment variables
    are not read here but when a client is made."""
    source = os.fspath(path)
    return Tenants(
        (
            Tenant(
                **{
                    **entry,
                    "huke": HukeSettings(**entry["huke"]),
                    "k3": K3Settings(**entry["k3"]),
                    "source": source,
                }
            )
            for entry in read_tenants(path)
        ),
        path=source,
    )
