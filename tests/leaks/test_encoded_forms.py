"""Secrets are registered only as is (printable ASCII: not even JSON forms). A server quoting
them URL-encoded or in another letter case leaks them: ``X-Kd-Signature`` (base64, ends in
``==``: URL-encoded it shows all but the fixed padding), ``ur-checksum`` in lower case."""

import urllib.parse

import httpx
import pytest

from huke_client import HukeClient, HukeError
from k3cloud_client import K3CloudError

from ._common import exc_text, signed

SEEN: dict[str, str] = {}


def test_url_encoded_kd_signature() -> None:
    def handler(request):
        SEEN["sig"] = request.headers["X-Kd-Signature"]
        query = urllib.parse.urlencode({"sig": SEEN["sig"], "acct": "x"})
        return httpx.Response(400, text=f"rejected: {query}")

    with pytest.raises(K3CloudError) as info:
        signed(handler).execute_bill_query("BD_Customer", "FNumber")
    text = exc_text(info.value)
    assert SEEN["sig"].rstrip("=") not in text, text


def test_lower_case_ur_checksum() -> None:
    def handler(request):
        SEEN["ck"] = request.headers["ur-checksum"]
        return httpx.Response(
            200, json={"code": 4001, "msg": f"checksum {SEEN['ck'].lower()} wrong"}
        )

    client = HukeClient(
        "key",
        "adv-huke-secret-0123456789",
        base_url="http://127.0.0.1:9/openapi",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(HukeError) as info:
        client.search_trades(start=0, end=1)
    assert SEEN["ck"].lower() not in str(info.value), str(info.value)
