"""Reading and checking settings, with errors that name the setting and say what was wrong.

Settings are checked when a client is built, not at its first request: a ``timeout="30"`` or a
base URL without its scheme is a mistake in the configuration, and the error should say so there.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence

import httpx

from ._retry import RetryPolicy
from ._text import plural

#: ``scheme://user:password@`` -> ``scheme://user:***@``: a URL is shown in errors, its password
#: never.
# Greedy to the last "@" of the URL: a password may itself hold "/" or "@" (masking a little
# too much of a malformed URL is the safe side).
_URL_PASSWORD = re.compile(r"(//[^/?#@:\s]*:)\S*@")
_TIMEOUT_PARTS = ("connect", "read", "write", "pool")


def read_env(
    *,
    required: Sequence[str],
    optional: Sequence[str] = (),
    error: type[Exception],
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The non-empty values of the named variables; ``error`` names every missing required one."""
    env = os.environ if environ is None else environ
    missing = [name for name in required if not env.get(name, "").strip()]
    if missing:
        them = "them" if len(missing) > 1 else "it"
        raise error(
            f"missing {plural(len(missing), 'setting', counted=False)} {', '.join(missing)}: "
            f"set {them} in the environment"
        )
    return {name: env[name].strip() for name in (*required, *optional) if env.get(name, "").strip()}


def _a(value: object) -> str:
    name = type(value).__name__
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def shown_url(text: str) -> str:
    """``text`` with the password of any ``user:password@`` part replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def _url_problem(value: object) -> tuple[httpx.URL | None, str]:
    """The parsed URL, or ``None`` and why ``value`` is not an absolute http(s) URL."""
    if not isinstance(value, str | httpx.URL):
        return None, f"it is {_a(value)}, not text"
    text = str(value)
    if not text.strip():
        return None, "it is empty"
    if "://" not in text:
        return None, "it has no scheme: start it with https:// (or http://)"
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        return None, f"it is not a valid URL ({shown_url(str(exc))})"
    if url.scheme not in ("http", "https"):
        return None, f"its scheme {url.scheme!r} is not http or https"
    if not url.host:
        return None, "it has no host"
    # httpx percent-encodes what a host name cannot hold (a space, say) instead of refusing it.
    if "%" in url.host or any(c.isspace() for c in url.host):
        return None, f"it is not a valid URL (its host {shown_url(url.host)!r} is no host name)"
    if url.port is not None and not 0 < url.port < 65536:
        return None, f"it is not a valid URL (port {url.port} is out of range)"
    return url, ""


def check_url(value: object, *, setting: str, error: type[Exception]) -> httpx.URL:
    """``value`` parsed as an absolute http(s) URL, or ``error`` naming ``setting``, showing the
    value (a URL is no secret; a password in it is masked) and saying what is wrong with it."""
    url, problem = _url_problem(value)
    if url is None:
        shown = shown_url(str(value)) if isinstance(value, str | httpx.URL) else value
        raise error(
            f"{setting}: base URL must be an absolute http(s) URL such as https://host/path, "
            f"got {shown!r}: {problem}"
        )
    return url


def _seconds(value: object, what: str, error: type[Exception]) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"{what} must be seconds > 0 (a number) or None, got {value!r} ({_a(value)})")
    if not value > 0:  # NaN included
        raise error(f"{what} must be seconds > 0, got {value!r}")
    if math.isinf(value):
        raise error(f"{what} must be finite seconds (None for no timeout), got {value!r}")
    return float(value)


def check_timeout(value: object, *, error: type[Exception]) -> httpx.Timeout:
    """``value`` (seconds, an ``httpx.Timeout`` or ``None`` for none) as an ``httpx.Timeout``;
    ``error`` when it, or any part of it, is not ``None`` or finite seconds > 0."""
    if isinstance(value, httpx.Timeout):
        for part in _TIMEOUT_PARTS:
            _seconds(getattr(value, part), f"timeout's {part}", error)
        return value
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise error(
            f"timeout must be seconds > 0 (a number), an httpx.Timeout or None, got {value!r} "
            f"({_a(value)})"
        )
    return httpx.Timeout(_seconds(value, "timeout", error))


def check_max_retries(value: object, *, error: type[Exception]) -> int | None:
    """``value`` when it is ``None`` or an ``int >= 0``; ``error`` otherwise."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise error(
            f"max_retries must be an int >= 0 (or None for the retry policy's), got {value!r}"
        )
    return value


def check_retry(value: object, *, error: type[Exception]) -> RetryPolicy | None:
    """``value`` when it is ``None`` or a ``RetryPolicy``; ``error`` otherwise."""
    if value is not None and not isinstance(value, RetryPolicy):
        raise error(f"retry must be a RetryPolicy (or None), got {value!r} ({_a(value)})")
    return value
