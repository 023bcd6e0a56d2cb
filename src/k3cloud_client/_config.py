"""Settings from the environment or from the official SDK's ``conf.ini``.

Both readers return the keyword arguments of the client's constructor and where each came from
(for ``describe_settings``); a missing or malformed setting raises ``K3CloudConfigError`` naming
it.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from _huke_k3_core import check_url, plural, read_env
from _huke_k3_core._settings import environment, in_file

from .errors import K3CloudConfigError

if TYPE_CHECKING:
    import configparser

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


#: The encodings a ``conf.ini`` is read in, in order: UTF-8 with or without a BOM (what editors
#: save today), then GB18030 (a superset of GBK, what Notepad on Chinese Windows saved as "ANSI").
#: A GBK file is almost never valid UTF-8, so the order cannot misread one.
INI_ENCODINGS = ("utf-8-sig", "gb18030")
_SAVE_AS_UTF8 = "open it in an editor and save it as UTF-8"


def _integer(value: str, name: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise K3CloudConfigError(f"{name} must be an integer{where}, got {value!r}") from None


def _seconds(value: str, name: str, where: str) -> int:
    seconds = _integer(value, name, where)
    if seconds < 1:
        raise K3CloudConfigError(
            f"{name} must be a whole number of seconds >= 1{where}, got {value!r}"
        )
    return seconds


def _decode_ini(content: bytes, shown: str) -> str:
    """The file's text. Errors name the file and the fix, never a byte of the file: it holds the
    app secret (and a decoding error's ``object`` would be the whole file)."""
    for encoding in INI_ENCODINGS:
        try:
            text = content.decode(encoding)
        except UnicodeDecodeError:
            continue
        # A GB18030 file can start with GB18030's own BOM, decoded to U+FEFF.
        return text.removeprefix("\ufeff")
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        found = "is UTF-16 (Notepad's 'Unicode')"
    else:
        found = "is neither UTF-8 nor GB18030/GBK text"
    # Raised outside the except blocks: nothing chained to it carries the file's bytes.
    raise K3CloudConfigError(f"{shown} {found}: {_SAVE_AS_UTF8}")


def _syntax_problem(exc: configparser.Error) -> str:
    """What is wrong where, in words that quote no value: configparser's own messages quote the
    offending line, which may be the one holding the secret."""
    import configparser

    if isinstance(exc, configparser.MissingSectionHeaderError):
        return (
            f"line {exc.lineno}: no [section] header before the first setting (the official "
            f"SDK's file starts with [{INI_DEFAULT_SECTION}])"
        )
    if isinstance(exc, configparser.DuplicateOptionError):
        return f"line {exc.lineno}: {exc.option} is set twice in [{exc.section}]"
    if isinstance(exc, configparser.DuplicateSectionError):
        return f"line {exc.lineno}: section [{exc.section}] appears twice"
    if isinstance(exc, configparser.ParsingError):
        lines = ", ".join(str(lineno) for lineno, _ in exc.errors)
        word = plural(len(exc.errors), "line", counted=False)
        return f"{word} {lines}: not a 'key = value' line, a [section] header or a # comment"
    return type(exc).__name__


def _read_ini(path: str | os.PathLike[str]) -> configparser.ConfigParser:
    shown = repr(os.fspath(path))
    try:
        with open(path, "rb") as file:
            content = file.read()
    except OSError as exc:
        raise K3CloudConfigError(f"cannot read {shown}: {exc.strerror}") from None
    import configparser  # only programs that read a conf.ini load it

    parser = configparser.ConfigParser(interpolation=None)
    problem = None
    try:
        parser.read_string(_decode_ini(content, shown), source=os.fspath(path))
    except configparser.Error as exc:
        problem = _syntax_problem(exc)
    if problem is not None:
        raise K3CloudConfigError(f"{shown} is not a valid ini file: {problem}")
    return parser


#: The environment variable of each constructor argument ``settings_from_env`` reads.
_ENV_NAMES = {
    "server_url": ENV_SERVER_URL,
    "acct_id": ENV_ACCT_ID,
    "user_name": ENV_USER_NAME,
    "app_id": ENV_APP_ID,
    "app_secret": ENV_APP_SECRET,
    "password": ENV_PASSWORD,
    "lcid": ENV_LCID,
    "org_num": ENV_ORG_NUM,
}


def settings_from_env(
    environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Constructor arguments from ``K3CLOUD_*`` variables, and the variable of each.

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
        raise K3CloudConfigError(f"missing setting {missing}: set it in the environment")
    if not has_app and ENV_PASSWORD not in env:
        raise K3CloudConfigError(
            f"missing settings {ENV_APP_ID} and {ENV_APP_SECRET}, or {ENV_PASSWORD}: "
            "set them in the environment"
        )
    check_url(env[ENV_SERVER_URL], setting=ENV_SERVER_URL, error=K3CloudConfigError)
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
    sources = {name: environment(_ENV_NAMES[name]) for name in settings if _ENV_NAMES[name] in env}
    return settings, sources


def settings_from_ini(
    path: str | os.PathLike[str], section: str | None = None, *, given: Collection[str] = ()
) -> tuple[dict[str, Any], dict[str, str]]:
    """Constructor arguments from the official SDK's ``conf.ini`` (its ``x-kdapi-*`` keys), and
    the key of each.

    ``section`` defaults to ``config`` (the official SDK's default), or to the file's only section.
    Settings named in ``given`` (constructor arguments the caller passes) need not be in the file:
    since 8.x the official SDK takes the server URL in code, so many files lack it.
    ``x-kdapi-connecttimeout``/``x-kdapi-requesttimeout`` (seconds) become the timeout and
    ``x-kdapi-proxy`` the ``proxy`` setting.
    """
    parser = _read_ini(path)
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
        word = plural(len(missing), "setting", counted=False)
        raise K3CloudConfigError(f"missing {word} {', '.join(missing)}{where}")
    if conf.get("x-kdapi-secpwd", "").strip():
        raise K3CloudConfigError(
            f"x-kdapi-secpwd{where} (a custom app id key) is not supported; remove it, or pass "
            "auth= explicitly"
        )
    settings: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for key, name in _INI_REQUIRED:
        if conf.get(key, "").strip():
            settings[name], keys[name] = conf[key].strip(), key
    if "server_url" in settings:
        check_url(
            settings["server_url"], setting=f"x-kdapi-serverurl{where}", error=K3CloudConfigError
        )
    if conf.get("x-kdapi-lcid", "").strip():
        settings["lcid"] = _integer(conf["x-kdapi-lcid"].strip(), "x-kdapi-lcid", where)
        keys["lcid"] = "x-kdapi-lcid"
    if conf.get("x-kdapi-orgnum", "").strip():
        settings["org_num"] = _integer(conf["x-kdapi-orgnum"].strip(), "x-kdapi-orgnum", where)
        keys["org_num"] = "x-kdapi-orgnum"
    connect = conf.get("x-kdapi-connecttimeout", "").strip()
    request = conf.get("x-kdapi-requesttimeout", "").strip()
    if connect or request:
        read = _seconds(request, "x-kdapi-requesttimeout", where) if request else 120
        settings["timeout"] = httpx.Timeout(
            float(read),
            connect=float(_seconds(connect, "x-kdapi-connecttimeout", where) if connect else 120),
        )
        named = (("x-kdapi-connecttimeout", connect), ("x-kdapi-requesttimeout", request))
        keys["timeout"] = ", ".join(key for key, value in named if value)
    if conf.get("x-kdapi-proxy", "").strip():
        settings["proxy"] = conf["x-kdapi-proxy"].strip()
        keys["proxy"] = "x-kdapi-proxy"
    return settings, {name: in_file("conf.ini", path, section, key) for name, key in keys.items()}
