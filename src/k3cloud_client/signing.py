"""The signatures of K/3 Cloud's Web API, as pure functions.

Every function reproduces Kingdee's official Python SDK (v8) byte for byte; the reference's test
vectors pin them. Nothing here does I/O or reads a clock. ``signed_headers`` and ``login_sign``
are what the auth classes (``SignedHeaderAuth``, ``SignLogin``) send; the others are their steps.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from urllib.parse import quote

from _huke_k3_core import plural, shorten

from .errors import K3CloudConfigError

__all__ = [
    "AUTH_VERSION",
    "CLIENT_SECRET_KEY",
    "SIGNED_HEADER_NAMES",
    "app_data",
    "app_id_secrets",
    "decode_client_secret",
    "kd_signature",
    "login_sign",
    "sig",
    "signed_headers",
    "split_app_id",
    "string_to_sign",
]

#: The fixed key the official SDK XORs an app id's encoded part with to get the client secret.
CLIENT_SECRET_KEY = b"0054f397c6234378b09ca7d3e5debce7"
#: What ``x-api-signheaders`` lists: the headers the string to sign covers.
SIGNED_HEADER_NAMES = "x-api-timestamp,x-api-nonce"
AUTH_VERSION = "2.0"

_APP_ID = re.compile(r"(?P<client_id>[0-9]+)_(?P<encoded>[A-Za-z0-9+/]{32})")


def split_app_id(app_id: str) -> tuple[str, str]:
    """``"204399_72ep…"`` -> ``("204399", "72ep…")``: the client id and the encoded client secret.

    Raises ``K3CloudConfigError`` for anything but ``<digits>_<32 base64 characters>``: the official
    SDK then silently signs with an empty key, which the server rejects much later.
    """
    match = _APP_ID.fullmatch(app_id)
    if match is None:
        # Only what comes before the first "_" may be shown: what follows is (or, with the app
        # secret pasted in its place, may be) secret.
        head, sep, rest = app_id.partition("_")
        shown = shorten(head, 13) + (f"_<{plural(len(rest), 'character')} hidden>" if sep else "")
        if not sep and len(app_id) >= 16:
            shown = f"<{plural(len(app_id), 'character')} hidden: is this the app secret?>"
        raise K3CloudConfigError(
            f"app_id must look like '<digits>_<32 base64 characters>' "
            f"(e.g. '204399_72epSbtEQMC92Vwt2d3LRa9LRqSc1tqJ'), got {shown!r} "
            f"({plural(len(app_id), 'character')})"
        )
    return match["client_id"], match["encoded"]


def decode_client_secret(encoded: str) -> str:
    """The client secret hidden in an app id's second part: base64(xor(base64decode(part), KEY))."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise K3CloudConfigError(f"app_id's second part is not base64: {exc}") from None
    mixed = bytes(byte ^ CLIENT_SECRET_KEY[i] for i, byte in enumerate(raw))
    return base64.b64encode(mixed).decode("ascii")


def sig(message: str, key: str) -> str:
    """base64 of the LOWERCASE HEX text of HMAC-SHA256(key, message), as the official SDK does."""
    digest = hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode("ascii")).decode("ascii")


def string_to_sign(path: str, timestamp: str, nonce: str) -> str:
    """What ``X-Api-Signature`` signs: the method, the URL-quoted path (``/`` as ``%2F``) and the
    two signed headers."""
    quoted = quote(path, encoding="utf-8").replace("/", "%2F")
    return f"POST\n{quoted}\n\nx-api-nonce:{nonce}\nx-api-timestamp:{timestamp}\n"


def app_data(acct_id: str, user_name: str, lcid: int, org_num: int) -> str:
    """``"acct,user,lcid,org"``: what ``X-Kd-Appdata`` carries (base64) and ``X-Kd-Signature`` signs."""
    return f"{acct_id},{user_name},{lcid},{org_num}"


def app_id_secrets(app_id: str) -> tuple[str, str]:
    """The secret values an app id holds: its encoded part (after ``_``) and the client secret
    that part decodes to (what ``X-Api-Signature`` is keyed with)."""
    _, encoded = split_app_id(app_id)
    return encoded, decode_client_secret(encoded)


def kd_signature(
    app_id: str, app_secret: str, *, acct_id: str, user_name: str, lcid: int, org_num: int
) -> str:
    """``X-Kd-Signature``: it signs no path, body or time, so it is the same on every request of
    an account, user and app (a leaked one is replayable with any body: a secret itself)."""
    return sig(app_id + app_data(acct_id, user_name, lcid, org_num), app_secret)


def signed_headers(
    *,
    acct_id: str,
    user_name: str,
    app_id: str,
    app_secret: str,
    lcid: int,
    org_num: int,
    path: str,
    timestamp: int,
) -> dict[str, str]:
    """The nine signature headers of one request to ``path`` (the URL path, no query)."""
    client_id, encoded = split_app_id(app_id)
    ts = str(timestamp)
    # The official SDK sends the timestamp as the nonce too; servers accept a repeated nonce.
    nonce = ts
    data = app_data(acct_id, user_name, lcid, org_num)
    return {
        "X-Api-ClientID": client_id,
        "X-Api-Auth-Version": AUTH_VERSION,
        "x-api-timestamp": ts,
        "x-api-nonce": nonce,
        "x-api-signheaders": SIGNED_HEADER_NAMES,
        "X-Api-Signature": sig(string_to_sign(path, ts, nonce), decode_client_secret(encoded)),
        "X-Kd-Appkey": app_id,
        "X-Kd-Appdata": base64.b64encode(data.encode("utf-8")).decode("ascii"),
        "X-Kd-Signature": sig(app_id + data, app_secret),
    }


def login_sign(acct_id: str, user_name: str, app_id: str, app_secret: str, timestamp: int) -> str:
    """``LoginBySign``'s sign: SHA-256 (lowercase hex) of the five values sorted and joined."""
    parts = sorted([acct_id, user_name, app_id, app_secret, str(timestamp)])
    return hashlib.sha256("".join(parts).encode("utf-8")).hexdigest()
