"""Texts built with ``str()`` of decoded server data (``LoginError`` for a non-string
``Message``; ``HukeAPIError`` for a non-string ``msg``) show strings in Python-repr form:
``"`` not escaped and ``\\`` doubled. A secret with both (the suite's own QUOTED_PASSWORD
``pa"ss\\wörd-42``) then appears in a form ``_variants`` does not register."""

import json

import httpx
import pytest

from huke_client import HukeClient, HukeError
from k3cloud_client import K3CloudError

from ._common import exc_text, k3

QUOTED = 'pa"ss\\wörd-42'
REPR_FORM = repr(QUOTED)[1:-1]  # pa"ss\\wörd-42


def test_login_message_that_is_a_list() -> None:
    def handler(request):
        params = json.loads(request.content)["parameters"]
        return httpx.Response(
            200, json={"LoginResultType": 0, "Message": ["用户名或密码错误", params]}
        )

    with pytest.raises(K3CloudError) as info:
        k3(handler, password=QUOTED).execute_bill_query("BD_Customer", "FNumber")
    text = exc_text(info.value)
    assert REPR_FORM not in text, text
    assert QUOTED not in text, text


def test_huke_msg_that_is_an_object() -> None:
    secret = 'hk"secret\\0123456789'

    def handler(request):
        return httpx.Response(200, json={"code": 4001, "msg": {"detail": "bad", "echo": [secret]}})

    client = HukeClient(
        "key",
        secret,
        base_url="http://127.0.0.1:9/openapi",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(HukeError) as info:
        client.search_trades(start=0, end=1)
    text = f"{info.value} {info.value!r} {info.value.msg}"
    assert repr(secret)[1:-1] not in text, text
