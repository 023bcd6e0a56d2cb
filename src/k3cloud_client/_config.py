"""Settings from the environment or from the official SDK's ``conf.ini``.

Both readers return the keyword arguments of the client's constructor; a missing or malformed
setting raises ``K3CloudConfigError`` naming it.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Collection, Mapping
from typing import Any

import httpx

from _huke_k3_core import read_env

from ._errors import K3CloudConfigError

ENV_SERVER_URL = "K3CLOUD_SERVER_URL"
ENV_ACCT_ID = "K3CLOUD_ACCT_ID"
ENV_USER_NAME = "K3CLOUD_USER_NAME"
ENV_APP_ID = "K3CLOUD_APP_ID"
ENV_APP_SECRET = "K3CLOUD_APP_SECRET"
ENV_PASSWORD = "K3CLOUD_PASSWORD"
ENV_LCID = "K3CLOUD_LCID"
ENV_ORG_NUM = "K3CLOUD_ORG_NUM"

#: The section the official SDK reads by default.
INI_DEFAULT_SECTION = "config"
_INI_REQUIRED = (
    ("x-kdapi-serverurl", "server_url"),
    ("x-kdapi-acctid", "acct_id"),
    ("x-kdapi-username", "user_name"),
    ("x-kdapi-appid", "app_id"),
    ("x-kdapi-appsec", "app_secret"),
)


def _integer(value: str, name: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise K3CloudConfigError(f"{name} must be an integer{where}, got {value!r}") from None


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Constructor arguments from ``K3CLOUD_*`` variables.

    Required: ``K3CLOUD_SERVER_URL``, ``K3CLOUD_ACCT_ID``, ``K3CLOUD_USER_NAME``, and either
    ``K3CLOUD_APP_ID`` + ``K3CLOUD_APP_SECRET`` or ``K3CLOUD_PASSWORD``. Optional:
    ``K3CLOUD_LCID``, ``K3CLOUD_ORG_NUM``.
    """
    env = read_env(
        required=(ENV_SERVER_URL, ENV_ACCT_ID, ENV_USER_NAME),
        optional=(ENV_APP_ID, ENV_APP_SECRET, ENV_PASSWORD, ENV_LCID, ENV_ORG_NUM),
        error=K3CloudConfigError,
        environ=environ,
    )
    has_app = ENV_APP_ID in env or ENV_APP_SECRET in env
    if has_app and not (ENV_APP_ID in env and ENV_APP_SECRET in env):
        missing = ENV_APP_SECRET if ENV_APP_ID in env else ENV_APP_ID
        raise K3CloudConfigError(f"missing setting(s) {missing}: set it in the environment")
    if not has_app and ENV_PASSWORD not in env:
        raise K3CloudConfigError(
            f"missing setting(s) {ENV_APP_ID} and {ENV_APP_SECRET}, or {ENV_PASSWORD}: "
            "set them in the environment"
        )
    settings: dict[str, Any] = {
        "server_url": env[ENV_SERVER_URL],
        "acct_id": env[ENV_ACCT_ID],
        "user_name": env[ENV_USER_NAME],
        "app_id": env.get(ENV_APP_ID),
        "app_secret": env.get(ENV_APP_SECRET),
        "password": env.get(ENV_PASSWORD),
    }
    if ENV_LCID in env:
        settings["lcid"] = _integer(env[ENV_LCID], ENV_LCID, " (in the environment)")
    if ENV_ORG_NUM in env:
        settings["org_num"] = _integer(env[ENV_ORG_NUM], ENV_ORG_NUM, " (in the environment)")
    return settings


def settings_from_ini(
    path: str | os.PathLike[str], section: str | None = None, *, given: Collection[str] = ()
) -> dict[str, Any]:
    """Constructor arguments from the official SDK's ``conf.ini`` (its ``x-kdapi-*`` keys).

    ``section`` defaults to ``config`` (the official SDK's default), or to the file's only section.
    Settings named in ``given`` (constructor arguments the caller passes) need not be in the file:
    since 8.x the official SDK takes the server URL in code, so many files lack it.
    ``x-kdapi-connecttimeout``/``x-kdapi-requesttimeout`` (seconds) become the timeout and
    ``x-kdapi-proxy`` the ``proxy`` setting.
    """
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as file:
            parser.read_file(file)
    except OSError as exc:
        raise K3CloudConfigError(f"cannot read {os.fspath(path)!r}: {exc.strerror}") from None
    except configparser.Error as exc:
        raise K3CloudConfigError(f"{os.fspath(path)!r} is not a valid ini file: {exc}") from None
    sections = parser.sections()
    if section is None:
        section = (
            sections[0]
            if len(sections) == 1 and INI_DEFAULT_SECTION not in sections
            else INI_DEFAULT_SECTION
        )
    if not parser.has_section(section):
        raise K3CloudConfigError(
            f"{os.fspath(path)!r} has no section [{section}] (its sections: "
            f"{', '.join(sections) or 'none'})"
        )
    conf = parser[section]
    where = f" in [{section}] of {os.fspath(path)!r}"
    missing = [
        key for key, name in _INI_REQUIRED if name not in given and not conf.get(key, "").strip()
    ]
    if missing:
        raise K3CloudConfigError(f"missing setting(s) {', '.join(missing)}{where}")
    if conf.get("x-kdapi-secpwd", "").strip():
        raise K3CloudConfigError(
            f"x-kdapi-secpwd{where} (a custom app id key) is not supported; remove it, or pass "
            "auth= explicitly"
        )
    settings: dict[str, Any] = {
        name: conf[key].strip() for key, name in _INI_REQUIRED if conf.get(key, "").strip()
    }
    if conf.get("x-kdapi-lcid", "").strip():
        settings["lcid"] = _integer(conf["x-kdapi-lcid"].strip(), "x-kdapi-lcid", where)
    if conf.get("x-kdapi-orgnum", "").strip():
        settings["org_num"] = _integer(conf["x-kdapi-orgnum"].strip(), "x-kdapi-orgnum", where)
    connect = conf.get("x-kdapi-connecttimeout", "").strip()
    request = conf.get("x-kdapi-requesttimeout", "").strip()
    if connect or request:
        read = _integer(request, "x-kdapi-requesttimeout", where) if request else 120
        settings["timeout"] = httpx.Timeout(
            float(read),
            connect=float(_integer(connect, "x-kdapi-connecttimeout", where) if connect else 120),
        )
    if conf.get("x-kdapi-proxy", "").strip():
        settings["proxy"] = conf["x-kdapi-proxy"].strip()
    return settings
