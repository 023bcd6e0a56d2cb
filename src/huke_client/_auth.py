"""``HukeAuth``: signs every request httpx sends with Huke's four headers (see ``signing``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator

import httpx

from _huke_k3_core import Redactor, mask

from .signing import body_sign, checksum_with_key, derive_key

__all__ = ["HukeAuth"]


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
            "ur-checksum": checksum_with_key(self._key, self.app_key, sign, curtime),
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
