"""Secrets the clients' redactors do not know, kept out of every check of the doctor's report.

The clients mask their own credentials, session ids and signatures. What reaches a server beside
them: a proxy's password (from ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, either case) and a
password in a base URL's userinfo, each also as the ``Basic`` token of an ``Authorization`` or
``Proxy-Authorization`` header. A proxy or server that quotes its request back (a 407 page, a
``Date`` header) would put them in a check's summary; :func:`scrub_checks` masks them in every
text of every check.
"""

from __future__ import annotations

import base64
import os
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import httpx

from _huke_k3_core import Redactor

from ._doctor_report import Check

__all__ = ["basic_tokens", "environment_secrets", "scrub_checks"]


def environment_secrets(
    urls: Iterable[str | httpx.URL], environ: Mapping[str, str] | None
) -> list[str]:
    """The passwords in ``urls`` and in the proxy settings of ``environ`` (default
    ``os.environ``, and the system's proxy settings as httpx reads them), each with the Basic
    tokens that carry it; no duplicates."""
    found: dict[str, None] = {}
    for url in [*urls, *_proxy_values(environ)]:
        for secret in _url_secrets(url):
            found[secret] = None
    return list(found)


def basic_tokens(username: str, password: str) -> list[str]:
    """The ``Basic`` credentials httpx sends for ``username`` / ``password`` (UTF-8, as its
    ``BasicAuth`` and proxies encode them), with and without base64's ``=`` padding: a text may
    quote a token with or without it."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return list(dict.fromkeys((token, token.rstrip("="))))


def scrub_checks(
    checks: Sequence[Check], secrets: Iterable[str] | Callable[[str], str]
) -> tuple[Check, ...]:
    """``checks`` with each of ``secrets`` (and the forms a JSON or URL text shows it in)
    masked in every text: title, summary, fix, and the keys and texts of ``details`` at any
    depth. ``secrets`` may instead be a redactor (a client's ``auth.redactor``): every text
    goes through it."""
    if callable(secrets):
        redactor = secrets
    else:
        known = [s for s in secrets if s]
        if not known:
            return tuple(checks)
        redactor = Redactor(known)

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return redactor(value)
        if isinstance(value, Mapping):
            return {redactor(str(k)): scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        if isinstance(value, tuple):
            return tuple(scrub(v) for v in value)
        return value

    return tuple(
        attrs.evolve(
            check,
            title=redactor(check.title),
            summary=redactor(check.summary),
            fix=None if check.fix is None else redactor(check.fix),
            details=scrub(check.details),
        )
        for check in checks
    )


def _proxy_values(environ: Mapping[str, str] | None) -> list[str]:
    """Every proxy setting's value (``*_proxy`` in any case; ``no_proxy`` holds no URL)."""
    values = [
        value
        for name, value in (os.environ if environ is None else environ).items()
        if value and name.lower().endswith("_proxy") and name.lower() != "no_proxy"
    ]
    if environ is None:
        # On macOS and Windows httpx also reads the system's settings (urllib's getproxies).
        values += [v for k, v in urllib.request.getproxies().items() if k != "no" and v]
    return values


def _url_secrets(url: str | httpx.URL) -> list[str]:
    """The password of ``url``'s userinfo as httpx reads it and as written, and its tokens."""
    text = str(url)
    if isinstance(url, str) and "://" not in text:
        text = f"http://{text}"  # a proxy setting may leave out the scheme, as httpx allows
    try:
        parsed = httpx.URL(text)
    except (httpx.InvalidURL, ValueError, TypeError):
        return _unparsed_password(text)
    if not parsed.password:
        return []
    written = parsed.userinfo.decode("ascii", "replace").partition(":")[2]
    return list(
        dict.fromkeys([parsed.password, written, *basic_tokens(parsed.username, parsed.password)])
    )


def _unparsed_password(text: str) -> list[str]:
    """The password of a URL httpx cannot read: between the authority's first ``:`` and its
    last ``@`` (the doctor reports such a proxy setting as broken, and must not quote it)."""
    authority = text.partition("://")[2].split("/", 1)[0]
    userinfo, at, _ = authority.rpartition("@")
    user, colon, written = userinfo.partition(":")
    if not (at and colon and written):
        return []
    password = urllib.parse.unquote(written)
    return list(
        dict.fromkeys([password, written, *basic_tokens(urllib.parse.unquote(user), password)])
    )
