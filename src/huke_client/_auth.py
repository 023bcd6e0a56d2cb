"""Huke request signing: ``ur-appkey``, ``ur-sign``, ``ur-curtime``, ``ur-checksum``.

``ur-sign`` is the MD5 of the exact body bytes, ``ur-curtime`` the Unix time in seconds, and
``ur-checksum`` the upper-case hex of AES-128-ECB (PKCS#7) over ``appkey + sign + curtime``, keyed
with the first 16 bytes of ``SHA1(SHA1(app_secret))``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Generator

import httpx
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from _huke_k3_core import Redactor, mask

__all__ = ["HukeAuth", "body_sign", "checksum", "derive_key"]


def derive_key(app_secret: str) -> bytes:
    """The AES-128 key for ``app_secret``: the first 16 bytes of ``SHA1(SHA1(secret_utf8))``."""
    inner = hashlib.sha1(app_secret.encode("utf-8")).digest()
    return hashlib.sha1(inner).digest()[:16]


def body_sign(body: bytes) -> str:
    """``ur-sign``: the lower-case hex MD5 of the body bytes exactly as sent."""
    return hashlib.md5(body).hexdigest()


def _checksum_with_key(key: bytes, app_key: str, sign: str, curtime: int | str) -> str:
    padder = padding.PKCS7(algorithms.AES.block_size).padder()
    plain = padder.update(f"{app_key}{sign}{curtime}".encode()) + padder.finalize()
    # ECB is what Huke specifies; it is a MAC-like token here, not confidentiality.
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return (encryptor.update(plain) + encryptor.finalize()).hex().upper()


def checksum(app_key: str, sign: str, curtime: int | str, app_secret: str) -> str:
    """``ur-checksum`` for one request: upper-case hex of AES-128-ECB over ``app_key + sign +
    curtime`` keyed from ``app_secret``.

    >>> checksum("34ff472473d741b881a7b46a3cfb5b59", "3d6055a498cab778429574604b810725",
    ...          1592276090, "d83d0971ca5641a7a6b2b7c78dea7f49")[:16]
    '849685B5801196A6'
    """
    return _checksum_with_key(derive_key(app_secret), app_key, sign, curtime)


class HukeAuth(httpx.Auth):
    """An ``httpx.Auth`` that signs every request over the exact body bytes it carries.

    Each time httpx sends a request (every retry included) it is signed again, with the current
    ``clock()``, so a retry never replays a stale ``ur-curtime``. The secret itself is not kept:
    only the AES key derived from it, once. ``redactor`` masks the secret and the recent
    ``ur-sign`` and ``ur-checksum`` values in text (the client that uses this auth shares it).
    """

    requires_request_body = True

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        *,
        eid: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not app_key or not app_secret:
            raise ValueError("HukeAuth needs a non-empty app_key and app_secret")
        self.app_key = app_key
        self.eid = eid
        self.clock = clock
        self._key = derive_key(app_secret)
        self.redactor = Redactor([app_secret])

    def sign_headers(self, body: bytes) -> dict[str, str]:
        """The signing headers for a request whose body is ``body``, at ``clock()`` now."""
        sign = body_sign(body)
        curtime = str(int(self.clock()))
        headers = {
            "ur-appkey": self.app_key,
            "ur-sign": sign,
            "ur-curtime": curtime,
            "ur-checksum": _checksum_with_key(self._key, self.app_key, sign, curtime),
        }
        # The checksum authenticates this body until the server's skew allows no more: a leaked
        # one, with its ur-sign, lets anybody replay the request.
        self.redactor.add_signature(sign, headers["ur-checksum"])
        if self.eid is not None:
            headers["eid"] = self.eid
        return headers

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the signing headers (httpx calls this for every request it sends)."""
        # requires_request_body makes httpx read the body first, so .content is the exact bytes.
        request.headers.update(self.sign_headers(request.content))
        yield request

    def __repr__(self) -> str:
        return f"HukeAuth(app_key={self.app_key!r}, app_secret={mask('')}, eid={self.eid!r})"
