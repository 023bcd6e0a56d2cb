"""A password shorter than 6 characters is masked only as a whole token, with the boundary
``[0-9A-Za-z]``. In a raw JSON body (what HTTP-error ``body``/messages quote) the characters
around it are often JSON escapes: ``\\u7801p@5s`` (CJK, ensure_ascii) or ``\\np@5s``; the escape's
last character (a hex digit, ``n``, ``t``) counts as a word character, so the password is shown
although it is a whole token in the decoded text (and the README claims the JSON-escaped forms)."""

import json

import httpx
import pytest

from k3cloud_client import K3CloudError

from ._common import LOGIN_OK, exc_text, k3

PW = "p@5s"


@pytest.mark.parametrize(
    "message", ["密码" + PW + "错误", "bad login:\n" + PW + "\n", "pwd\t" + PW]
)
def test_short_password_in_escaped_json_body(message: str) -> None:
    def handler(request):
        if "ValidateUser" in request.url.path:
            return httpx.Response(200, json=LOGIN_OK)
        return httpx.Response(400, content=json.dumps({"Message": message}).encode())

    client = k3(handler, password=PW)
    with pytest.raises(K3CloudError) as info:
        client.execute_bill_query("BD_Customer", "FNumber")
    text = exc_text(info.value)
    assert PW not in text, text
