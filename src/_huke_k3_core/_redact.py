"""Keeping secrets out of error messages, logs and reprs.

One policy for both clients. Every secret, and every value derived from one (a signature, a
session id, the secret half of an app id), is registered with the client's ``Redactor`` where it
comes into being; every text a server sent passes through the redactor before it is stored,
raised or logged. Credentials are kept for the client's lifetime; session ids and per-request
signatures in small FIFO pools, so that re-logins and requests never grow a redactor without
bound. Values of headers and cookies that carry secrets (``kdservice-sessionid=…``,
``x-kd-signature: …``, ``"password": "…"``) are masked by name as well, registered or not, and
so are the ids of ASP.NET cookieless URLs (``/(S(…))/``).

httpx and httpcore log response headers at DEBUG (``set-cookie: kdservice-sessionid=…``) before
any client has seen the reply: ``install_log_filter`` puts a filter on their loggers that masks
the same values there. Every ``Redactor`` installs it (once: it is idempotent).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.parse
import weakref
from collections.abc import Iterable

from ._text import ELLIPSIS, plural

MASK = "***"
#: Secrets shorter than this are masked only as whole tokens (not inside a longer word or
#: number): masking "pw1" inside every "pw12" would garble text, and leave nothing safer.
_TOKEN_ONLY_BELOW = 6
#: Session ids (and the cookies of their login) a redactor remembers: the current session's
#: and a few before it, whose replies may still be on their way.
SESSIONS_KEPT = 16
#: Per-request values (signatures, body digests) a redactor remembers: the requests in flight
#: and many more (a K/3 request signature changes only once a second per path).
SIGNATURES_KEPT = 64
#: What ``snippet`` ends a shortened text with; a secret it cut in two is masked from its
#: first ``_CUT_PREFIX`` characters on.
_CUT_PREFIX = 4

#: Names whose value is a secret wherever a text shows one: session cookies, signature
#: headers, and the settings that hold credentials.
SECRET_NAMES = (
    "set-cookie",
    "cookie",
    "kdservice-sessionid",
    "asp.net_sessionid",
    "kdsvcsessionid",
    "x-kd-signature",
    "x-api-signature",
    "x-kd-appsecret",
    "x-kdapi-appsec",
    "x-kdapi-password",
    "k3cloud_app_secret",
    "k3cloud_password",
    "huke_app_secret",
    "ur-sign",
    "ur-checksum",
    "app_secret",
    "appsecret",
    "password",
)
# name=value (cookies, settings), name: value (header lines), "name": "value" (JSON, dicts),
# (b'name', b'value') (httpcore's header lists).
_NAMED_VALUE = re.compile(
    r"(?i)(?<![\w-])(?P<head>(?:" + "|".join(re.escape(n) for n in SECRET_NAMES) + r")"
    r"['\"]?\s*(?:[:=]|,\s*b?(?=['\"]))\s*['\"]?)"
    r"(?P<value>[^\s'\";,&)\]}]+)"
)


#: The ids of an ASP.NET cookieless URL (``/(S(session))/``, ``/(A(anonymous)F(ticket))/``): a
#: gateway's redirect carries them in its Location's path, and a server may have issued them
#: itself (no redactor knows them then).
_COOKIELESS_ID = re.compile(r"(?<=[()])(?P<key>[ASF])\((?P<value>[^()\s'\"]+)\)")


def mask_named_values(text: str) -> str:
    """``text`` with the value of every secret-bearing header, cookie or setting masked, and
    the ids of ASP.NET cookieless URLs."""
    if not text:
        return text
    text = _NAMED_VALUE.sub(lambda m: m["head"] + MASK, text)
    if "(" in text:
        text = _COOKIELESS_ID.sub(lambda m: f"{m['key']}({MASK})", text)
    return text


def _variants(secret: str) -> set[str]:
    """The secret and the forms JSON texts quoting it show (``"`` and ``\\`` escaped, non-ASCII
    as ``\\uXXXX`` or not), to two levels: a server's JSON reply quoting a JSON request body."""
    forms = {secret}
    if secret.isascii() and secret.isprintable() and '"' not in secret and "\\" not in secret:
        # Hex, base64, ids: JSON shows them as they are (and this runs per request). A server may
        # still show them URL-encoded (base64's "+/=") or in the other case (hex digests).
        quoted = urllib.parse.quote(secret, safe="")
        if quoted != secret:
            forms.add(quoted)
        if _HEX.fullmatch(secret):
            forms |= {secret.lower(), secret.upper()}
        return forms
    for _ in range(2):
        forms |= {json.dumps(f, ensure_ascii=a)[1:-1] for f in forms for a in (False, True)}
    return forms


_HEX = re.compile(r"[0-9A-Fa-f]{16,}")


class _Plan:
    """The registered values, ready to mask with (rebuilt after a change)."""

    def __init__(self, values: Iterable[str]) -> None:
        ordered = sorted(set(values), key=len, reverse=True)
        self.long = tuple(v for v in ordered if len(v) >= _TOKEN_ONLY_BELOW)
        short = [v for v in ordered if len(v) < _TOKEN_ONLY_BELOW]
        self.short = (
            re.compile(
                # A whole token: no letter or digit around it, unless that letter ends an escape
                # (``\n``, ``\t``, ``\u7801``) of a JSON text, where the decoded text has a
                # boundary.
                r"(?:(?<![0-9A-Za-z])|(?<=\\[nrtbf])|(?<=\\u[0-9A-Fa-f]{4}))(?:"
                + "|".join(map(re.escape, short))
                + r")(?:(?![0-9A-Za-z])|(?=\\[nrtbfu\\\"]))"
            )
            if short
            else None
        )


class Redactor:
    """Masks every registered secret in text. Values can be added at any time (a new session).

    ``add`` keeps a value for the redactor's lifetime (credentials and what derives from them
    alone); ``add_session`` keeps the last ``SESSIONS_KEPT`` session values and
    ``add_signature`` the last ``SIGNATURES_KEPT`` per-request ones. Secrets of fewer than 6
    characters are masked as whole tokens only.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._lock = threading.Lock()
        self._permanent: dict[str, None] = {}
        self._sessions: dict[str, None] = {}
        self._signatures: dict[str, None] = {}
        self._plan: _Plan | None = None
        self.add(*secrets)
        with _LIVE_LOCK:
            _LIVE.add(self)
        install_log_filter()

    def add(self, *secrets: str | None) -> None:
        """Register credentials, or values derived from them alone: kept for good."""
        self._put(self._permanent, secrets, None)

    def add_session(self, *values: str | None) -> None:
        """Register a session id and its cookies: the last ``SESSIONS_KEPT`` are kept."""
        self._put(self._sessions, values, SESSIONS_KEPT)

    def add_signature(self, *values: str | None) -> None:
        """Register a per-request value (a signature): the last ``SIGNATURES_KEPT`` are kept."""
        self._put(self._signatures, values, SIGNATURES_KEPT)

    def _put(self, pool: dict[str, None], values: tuple[str | None, ...], keep: int | None) -> None:
        # Runs on every request (signatures): a value already known costs one lookup, no lock.
        fresh = [v for v in values if v and v not in pool]
        if not fresh:
            return
        with self._lock:
            for value in fresh:
                for form in _variants(value):
                    pool.pop(form, None)
                    pool[form] = None
            if keep is not None:
                while len(pool) > keep:
                    del pool[next(iter(pool))]
            self._plan = None

    def _current(self) -> _Plan:
        plan = self._plan
        if plan is None:
            with self._lock:
                plan = self._plan = _Plan([*self._permanent, *self._sessions, *self._signatures])
        return plan

    @property
    def size(self) -> int:
        """How many values (escaped forms included) are registered."""
        return len(self._permanent) + len(self._sessions) + len(self._signatures)

    def __call__(self, text: str) -> str:
        if not text:
            return text
        plan = self._current()
        for secret in plan.long:
            if secret in text:
                text = text.replace(secret, MASK)
        if plan.short is not None:
            text = plan.short.sub(MASK, text)
        if text.endswith(ELLIPSIS):
            text = _mask_cut(text, plan.long)
        return mask_named_values(text)

    def __repr__(self) -> str:
        return f"Redactor({plural(self.size, 'secret')})"


def _mask_cut(text: str, secrets: tuple[str, ...]) -> str:
    """Mask the start of a secret that shortening ``text`` (``snippet``) cut off."""
    body = text[: -len(ELLIPSIS)]
    for secret in secrets:
        head = secret[:_CUT_PREFIX]
        at = body.find(head, max(0, len(body) - len(secret) + 1))
        while at != -1:
            if secret.startswith(body[at:]):
                return body[:at] + MASK + ELLIPSIS
            at = body.find(head, at + 1)
    return text


def mask(value: str | None) -> str:
    """How a secret appears in a repr: present or absent, never its text."""
    return "None" if value is None else f"'{MASK}'"


# -- the log filter on httpx and httpcore ---------------------------------------------------------

_LIVE: weakref.WeakSet[Redactor] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()

#: The loggers of the HTTP stack that may show headers (a filter on a logger sees only the
#: records logged on that very logger, not its children's: each is named).
HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "hpack.hpack",
    "hpack.table",
)


def redact_everywhere(text: str) -> str:
    """``text`` through every live redactor, and with secret-bearing named values masked."""
    with _LIVE_LOCK:
        redactors = list(_LIVE)
    for redactor in redactors:
        text = redactor(text)
    return mask_named_values(text)


class SecretLogFilter(logging.Filter):
    """Masks secrets in the records of a third-party logger (it never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging module's to report, not ours
            return True
        clean = redact_everywhere(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_FILTER = SecretLogFilter()


def install_log_filter() -> None:
    """Put the secret filter on the httpx/httpcore/hpack loggers (idempotent)."""
    for name in HTTP_LOGGERS:
        logging.getLogger(name).addFilter(_FILTER)
