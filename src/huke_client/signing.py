"""Huke's request signature, as pure functions: ``ur-sign`` and ``ur-checksum``.

``ur-sign`` is the MD5 of the exact body bytes, ``ur-curtime`` the Unix time in seconds, and
``ur-checksum`` the upper-case hex of AES-128-ECB (PKCS#7) over ``appkey + sign + curtime``, keyed
with the first 16 bytes of ``SHA1(SHA1(app_secret))``. Nothing here does I/O or reads a clock:
``HukeAuth`` sends what these compute, and ``FakeHuke`` checks it with the same functions.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

__all__ = ["body_sign", "checksum", "checksum_with_key", "derive_key"]


def derive_key(app_secret: str) -> bytes:
    """The AES-128 key for ``app_secret``: the first 16 bytes of ``SHA1(SHA1(secret_utf8))``."""
    inner = hashlib.sha1(app_secret.encode("utf-8")).digest()
    return hashlib.sha1(inner).digest()[:16]


def body_sign(body: bytes) -> str:
    """``ur-sign``: the lower-case hex MD5 of the body bytes exactly as sent."""
    return hashlib.md5(body).hexdigest()


def checksum_with_key(key: bytes, app_key: str, sign: str, curtime: int | str) -> str:
    """``checksum`` with the key already derived (``derive_key``): what a signer that keeps the
    key, not the secret, computes for each request."""
    return _aes_ecb_pkcs7()(key, f"{app_key}{sign}{curtime}".encode()).hex().upper()


@functools.cache
def _aes_ecb_pkcs7() -> Callable[[bytes, bytes], bytes]:
    """AES-ECB with PKCS#7 padding, loaded on first use: importing ``cryptography`` costs more
    than the rest of ``import huke_k3_bridge`` does, and many programs never sign a request."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    def encrypt(key: bytes, data: bytes) -> bytes:
        padder = padding.PKCS7(algorithms.AES.block_size).padder()
        plain = padder.update(data) + padder.finalize()
        # ECB is what Huke specifies; it is a MAC-like token here, not confidentiality.
        encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        return encryptor.update(plain) + encryptor.finalize()

    return encrypt


def checksum(app_key: str, sign: str, curtime: int | str, app_secret: str) -> str:
    """``ur-checksum`` for one request: upper-case hex of AES-128-ECB over ``app_key + sign +
    curtime`` keyed from ``app_secret``.

    ```python
    checksum("34ff472473d741b881a7b46a3cfb5b59", "3d6055a498cab778429574604b810725",
             1592276090, "d83d0971ca5641a7a6b2b7c78dea7f49")[:16]
    # '849685B5801196A6'
    ```
    """
    return checksum_with_key(derive_key(app_secret), app_key, sign, curtime)
