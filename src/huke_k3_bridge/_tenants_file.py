"""Reading a tenants file: TOML in, checked settings out, every error naming file, tenant and key.

The file holds names of environment variables, never secrets: a literal ``app_secret``,
``password``, ``app_key`` or ``app_id`` is refused, and no error quotes the value of a key that
names a variable (a secret pasted there by mistake must not reach a log). Values that are not
secrets (URLs, durations, a transform's reference) are quoted, to show what was read.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from _huke_k3_core import check_url
from _huke_k3_core._settings import in_file

from ._durations import parse_duration
from ._errors import TenantsError

#: Keys of a ``[tenants.NAME]`` table; all but the two tables may also be set in ``[defaults]``.
TENANT_KEYS = ("transform", "window", "overlap", "state", "huke", "k3")
DEFAULT_KEYS = ("transform", "window", "overlap", "state")
HUKE_KEYS = ("app_key_env", "app_secret_env", "base_url", "eid")
K3_KEYS = (
    "server_url",
    "acct_id",
    "user_name",
    "app_id_env",
    "app_secret_env",
    "password_env",
    "lcid",
    "org_num",
)
#: Keys that would hold a secret itself; the file names the variable instead (``<key>_env``).
LITERAL_SECRETS = ("app_key", "app_secret", "app_id", "password")
#: The placeholder a ``state`` path may hold, replaced by the tenant's name.
TENANT_PLACEHOLDER = "{tenant}"

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def tenant_prefix(source: str | None, tenant: str | None) -> str:
    """``"{source}: tenant '{tenant}': "``, without the parts that are ``None``."""
    where = [part for part in (source, None if tenant is None else f"tenant {tenant!r}") if part]
    return "".join(f"{part}: " for part in where)


def tenant_error(source: str | None, tenant: str | None, key: str, message: str) -> TenantsError:
    """``"{source}: tenant '{tenant}': {key}: {message}"`` (parts that are ``None`` left out)."""
    return TenantsError(f"{tenant_prefix(source, tenant)}{key}: {message}")


def setting_source(source: str | None, tenant: str, key: str) -> str:
    """Where a tenant's setting is written, for ``describe_settings()``:
    ``"tenants file 'shops.toml' [tenants.north] huke.base_url"``."""
    if source is None:
        return f"tenant {tenant!r} {key}"
    return in_file("tenants file", source, f"tenants.{tenant}", key)


class _Checker:
    """Checks the values of one table of the file; its errors name the file, tenant and key."""

    def __init__(self, source: str, tenant: str | None, table: str = "") -> None:
        self.source = source
        self.tenant = tenant
        self.prefix = f"{table}." if table else ""

    def error(self, key: str, message: str) -> TenantsError:
        return tenant_error(self.source, self.tenant, self.prefix + key, message)

    def only(self, values: Mapping[str, Any], known: tuple[str, ...]) -> None:
        """Refuse literal secrets, then any key not in ``known``."""
        for key in values:
            if key in LITERAL_SECRETS and f"{key}_env" in known:
                raise self.error(
                    key,
                    f"a secret is never written in the tenants file: put it in an environment "
                    f"variable and give that variable's name as {self.prefix}{key}_env",
                )
        for key in values:
            if key not in known:
                raise self.error(key, f"unknown key{_did_you_mean(key, known)}")

    def table(self, values: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = values.get(key)
        if value is None:
            raise self.error(key, f"missing: every tenant needs a {key} table")
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table ([...{key}]), got {_a(value)}")
        return value

    def text(self, values: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
        value = values.get(key)
        if value is None:
            if required:
                raise self.error(key, "missing")
            return None
        if not isinstance(value, str):
            raise self.error(key, f"must be text (in quotes), got {_a(value)}")
        if not value.strip():
            raise self.error(key, "must not be empty")
        return value.strip()

    def integer(self, values: Mapping[str, Any], key: str) -> int | None:
        value = values.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.error(key, f"must be a whole number, got {_a(value)}")
        return value

    def env_name(
        self, values: Mapping[str, Any], key: str, *, required: bool = False
    ) -> str | None:
        """The name of an environment variable; the text is never quoted (it may be a secret
        written where its variable's name belongs)."""
        value = values.get(key)
        if value is None:
            if required:
                raise self.error(key, "missing: the name of the environment variable to read")
            return None
        if not isinstance(value, str) or not _ENV_NAME.fullmatch(value.strip()):
            raise self.error(
                key,
                "must be the NAME of an environment variable (letters, digits and _, such as "
                "SHOP_A_K3_APP_SECRET), not its value; what is written there is not shown",
            )
        return value.strip()

    def url(self, values: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
        value = self.text(values, key, required=required)
        if value is None:
            return None
        try:
            url = check_url(value, setting=key, error=ValueError)
        except ValueError as exc:
            # check_url's message starts with the setting's name, which the prefix names already;
            # it masks a password in the URL.
            raise self.error(key, str(exc).partition(": ")[2]) from None
        if url.userinfo:
            raise self.error(
                key,
                "holds a user:password@ part: a secret is never written in the tenants file "
                "(the URL is not shown)",
            )
        return value

    def duration(self, values: Mapping[str, Any], key: str) -> timedelta | None:
        value = values.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(key, f'must be a duration in quotes, such as "6h", got {_a(value)}')
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def reference(self, values: Mapping[str, Any], key: str) -> str | None:
        value = self.text(values, key)
        if value is not None and not _REFERENCE.fullmatch(value):
            raise self.error(
                key,
                f"must be 'module:function', such as 'myproject.transforms:shop_a', got {value!r}",
            )
        return value

    def state(self, values: Mapping[str, Any], *, shared: bool) -> str | None:
        value = self.text(values, "state")
        if value is not None and shared and TENANT_PLACEHOLDER not in value:
            raise self.error(
                "state",
                f"one file for every tenant would mix their watermarks: put {TENANT_PLACEHOLDER} "
                f"in the path (such as 'state/{TENANT_PLACEHOLDER}.json'), or set state per tenant",
            )
        return value


def _a(value: object) -> str:
    """The kind of a TOML value, in words (never the value: it may be a secret)."""
    kinds = {bool: "true/false", int: "a number", float: "a number", str: "text", dict: "a table"}
    return kinds.get(type(value), "a list" if isinstance(value, list) else "a date or time")


def _did_you_mean(key: str, known: tuple[str, ...]) -> str:
    import difflib  # only a mistyped file pays for it

    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f" (known keys: {', '.join(known)}){hint}"


def _read_toml(source: str, path: str | os.PathLike[str]) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised by the 3.10 CI job
        # Not installed where the tree is type-checked on a newer Python (mypy checks as 3.10).
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        with open(path, "rb") as file:
            content = file.read()
    except OSError as exc:
        raise TenantsError(f"{source}: cannot read the tenants file: {exc.strerror}") from None
    problem = None
    try:
        document: dict[str, Any] = tomllib.loads(content.decode("utf-8"))
        return document
    except UnicodeDecodeError:
        problem = "is not UTF-8 text: save it as UTF-8"
    except tomllib.TOMLDecodeError as exc:
        # tomllib's messages give a position and never a value.
        problem = f"is not valid TOML: {exc}"
    # Raised outside the except blocks: nothing chained to it carries the file's bytes.
    raise TenantsError(f"{source} {problem}")


def _settings(checker: _Checker, values: Mapping[str, Any], *, shared: bool) -> dict[str, Any]:
    """The keys a tenant and ``[defaults]`` share, checked; only those that are set."""
    checker.only(values, DEFAULT_KEYS if shared else TENANT_KEYS)
    found = {
        "transform_ref": checker.reference(values, "transform"),
        "window": checker.duration(values, "window"),
        "overlap": checker.duration(values, "overlap"),
        "state_path": checker.state(values, shared=shared),
    }
    return {name: value for name, value in found.items() if value is not None}


def _huke(checker: _Checker, values: Mapping[str, Any]) -> dict[str, Any]:
    checker.only(values, HUKE_KEYS)
    return {
        "app_key_env": checker.env_name(values, "app_key_env", required=True),
        "app_secret_env": checker.env_name(values, "app_secret_env", required=True),
        "base_url": checker.url(values, "base_url"),
        "eid": checker.text(values, "eid"),
    }


def _k3(checker: _Checker, values: Mapping[str, Any]) -> dict[str, Any]:
    checker.only(values, K3_KEYS)
    settings = {
        "server_url": checker.url(values, "server_url", required=True),
        "acct_id": checker.text(values, "acct_id", required=True),
        "user_name": checker.text(values, "user_name", required=True),
        "app_id_env": checker.env_name(values, "app_id_env"),
        "app_secret_env": checker.env_name(values, "app_secret_env"),
        "password_env": checker.env_name(values, "password_env"),
        "lcid": checker.integer(values, "lcid"),
        "org_num": checker.integer(values, "org_num"),
    }
    signed = settings["app_id_env"] is not None or settings["app_secret_env"] is not None
    if signed and settings["password_env"] is not None:
        raise checker.error(
            "password_env",
            "give app_id_env + app_secret_env (signed login) or password_env, not both",
        )
    if signed:
        for key in ("app_id_env", "app_secret_env"):
            if settings[key] is None:
                raise checker.error(key, "missing: app_id_env and app_secret_env go together")
    elif settings["password_env"] is None:
        raise checker.error(
            "app_id_env",
            "missing: give app_id_env + app_secret_env (signed login), or password_env",
        )
    return settings


def _one_path_part(name: str) -> bool:
    """Whether ``name`` is one file name: it cannot lead a ``{tenant}`` path elsewhere."""
    return name not in (".", "..") and not any(c in name for c in "/\\\0")


def _state_path(source: str, name: str, state: str) -> str:
    """``state`` for tenant ``name``: its placeholder filled, relative to the tenants file's
    folder (a worker's working directory is no fixed place)."""
    return os.path.join(os.path.dirname(source), state.replace(TENANT_PLACEHOLDER, name))


def read_tenants(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The keyword arguments of each tenant of the file at ``path``, in file order, checked."""
    source = os.fspath(path)
    document = _read_toml(source, path)
    top = _Checker(source, None)
    top.only(document, ("defaults", "tenants"))
    defaults: Mapping[str, Any] = {}
    if "defaults" in document:
        defaults = top.table(document, "defaults")
    shared = _settings(_Checker(source, None, "defaults"), defaults, shared=True)
    tenants = document.get("tenants")
    if tenants is not None and not isinstance(tenants, dict):
        raise top.error("tenants", f"must be a table of tenants, got {_a(tenants)}")
    if not tenants:
        raise top.error(
            "tenants",
            "no tenant in the file: add a [tenants.NAME] table (with .huke and .k3) per shop",
        )
    entries: list[dict[str, Any]] = []
    states: dict[str, str] = {}
    for name, values in tenants.items():
        checker = _Checker(source, name)
        if not name.strip():
            raise checker.error("tenants", "a tenant's name must not be empty")
        if not isinstance(values, dict):
            raise checker.error(f"tenants.{name}", f"must be a table, got {_a(values)}")
        entry = {**shared, **_settings(checker, values, shared=False), "name": name}
        entry["huke"] = _huke(_Checker(source, name, "huke"), checker.table(values, "huke"))
        entry["k3"] = _k3(_Checker(source, name, "k3"), checker.table(values, "k3"))
        if "state_path" in entry:
            if TENANT_PLACEHOLDER in entry["state_path"] and not _one_path_part(name):
                raise checker.error(
                    "state",
                    f"the tenant's name cannot fill {TENANT_PLACEHOLDER} in a path: it must be one "
                    "file name (no '/', '\\', NUL, and not '.' or '..'); set state for it",
                )
            entry["state_path"] = _state_path(source, name, entry["state_path"])
            other = states.setdefault(os.path.normpath(entry["state_path"]), name)
            if other != name:
                raise checker.error(
                    "state",
                    f"{entry['state_path']!r} is tenant {other!r}'s state file too: each tenant "
                    "needs its own (one watermark for two shops skips trades of one of them)",
                )
        entries.append(entry)
    return entries
