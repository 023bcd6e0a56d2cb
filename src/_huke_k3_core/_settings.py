"""Where each setting of a client came from, as ``describe_settings()`` shows it.

A client records, by constructor argument, the source of each value: a factory (``from_env``,
``from_ini``, a tenants file) passes them to the constructor; anything it does not name is
``"argument"`` when it differs from the default, else ``"default"``. Values are shown as a
person may see them: secrets by whether they are set only, identifiers that carry secret
material in part, a URL without its password.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import httpx

from ._env import shown_url
from ._redact import MASK
from ._text import short_repr

#: The source of a value passed to the constructor (or as an override to a factory).
ARGUMENT = "argument"
#: The source of a value the caller left out.
DEFAULT = "default"
#: The value shown for an optional setting that has none.
NOT_SET = "not set"


@attrs.frozen
class Setting:
    """One setting of a client, as ``describe_settings()`` shows it.

    Attributes:
        name: the constructor argument's name (``app_secret``), or ``auth`` for the scheme.
        value: the value as it may be shown: a secret as ``***`` when set (never its text), an
            identifier that carries secret material partly masked (``204399_***``), a URL
            without its password.
        source: where it came from: ``"environment HUKE_APP_KEY"``,
            ``"conf.ini 'conf.ini' [config] x-kdapi-acctid"``, ``"argument"``, ``"default"``...
        secret: whether ``value`` is masked, in whole or in part.
    """

    name: str
    value: str
    source: str
    secret: bool = False

    def __str__(self) -> str:
        return f"{self.name}: {self.value} ({self.source})"


def environment(variable: str) -> str:
    """The source of a value read from an environment variable."""
    return f"environment {variable}"


def in_file(kind: str, path: str | os.PathLike[str], table: str, key: str) -> str:
    """The source of a value read from a file, such as
    ``"conf.ini '/etc/conf.ini' [config] x-kdapi-acctid"``."""
    return f"{kind} {os.fspath(path)!r} [{table}] {key}"


def named_by(variable: str, where: str) -> str:
    """The source of a value read from an environment variable that a file names."""
    return f"{environment(variable)} (named by {where})"


def head_masked(value: str, keep: int) -> str:
    """The first ``keep`` characters of ``value`` and a mask (at most half of a short value, so
    that no value shows whole)."""
    return value[: min(keep, len(value) // 2)] + MASK


def url_shown(url: httpx.URL | str) -> str:
    """A URL as shown: its password masked, its query (which may hold a token) left out."""
    text = str(url)
    try:
        parsed: httpx.URL | None = httpx.URL(text)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or not parsed.host:
        # Not an absolute URL (a proxy written "user:pw@host:port"): whatever stands before
        # an "@" may hold a password.
        _, at, rest = text.rpartition("@")
        return f"{MASK}@{rest}" if at else text
    return shown_url(str(parsed.copy_with(query=None)))


def _seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:g}s"


def timeout_shown(timeout: httpx.Timeout) -> str:
    """``"30s"`` when every part is alike, else each part: ``"connect 10s, read 30s, ..."``."""
    parts = {
        "connect": timeout.connect,
        "read": timeout.read,
        "write": timeout.write,
        "pool": timeout.pool,
    }
    if len(set(parts.values())) == 1:
        return _seconds(timeout.connect)
    return ", ".join(f"{name} {_seconds(value)}" for name, value in parts.items())


def resolve_sources(
    given: Mapping[str, str] | None, arguments: Mapping[str, tuple[Any, Any]]
) -> dict[str, str]:
    """Each argument's source: ``given``'s, else ``"default"`` when its value (the first of the
    pair) equals its default (the second), else ``"argument"``. ``given``'s other names are kept
    as they are."""
    found = {
        name: DEFAULT if value is default or value == default else ARGUMENT
        for name, (value, default) in arguments.items()
    }
    return {**found, **(given or {})}


def check_sources(value: object, error: type[Exception]) -> dict[str, str]:
    """``value`` (``setting_sources=``) as a dict of text by text; ``error`` otherwise."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise error(
            "setting_sources must map setting names to where each came from (text to text), "
            f"got {short_repr(value, 120)}"
        )
    return dict(value)


def merge_sources(
    sources: Mapping[str, str], overrides: dict[str, Any], error: type[Exception]
) -> dict[str, str]:
    """A factory's record of where each setting came from: ``sources`` (what it read), each of
    ``overrides`` as ``"argument"``, and on top what the caller's ``setting_sources=`` names
    (popped from ``overrides``; ``error`` when it is not text by text)."""
    given = check_sources(overrides.pop("setting_sources", None), error)
    return {**sources, **dict.fromkeys(overrides, ARGUMENT), **given}


def transport_settings(
    *,
    url_name: str,
    url: httpx.URL,
    timeout: httpx.Timeout,
    max_retries: int,
    sources: Mapping[str, str],
    proxy: str | None = None,
) -> Iterator[Setting]:
    """The settings every client has: its URL, timeout and retries, and ``proxy`` when one was
    configured (a proxy httpx takes from the environment is the network checks' to find)."""
    yield Setting(url_name, url_shown(url), sources.get(url_name, DEFAULT))
    yield Setting("timeout", timeout_shown(timeout), sources.get("timeout", DEFAULT))
    yield Setting("max_retries", str(max_retries), sources.get("max_retries", DEFAULT))
    if proxy is not None:
        yield Setting("proxy", url_shown(proxy), sources.get("proxy", ARGUMENT))
