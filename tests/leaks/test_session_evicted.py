"""``_parse_login`` registers the session cookie first and then every other login cookie of 16+
characters, all in one ``add_session`` call into a FIFO pool of 16: a login reply with 16 more
long cookies evicts the live session id at once, and any later echo of it is shown."""

import httpx

from k3cloud_client import K3CloudError

from ._common import exc_text, k3, status

SID = "adv-live-session-0123456789"


def handler(request):
    if "ValidateUser" in request.url.path:
        cookies = [("set-cookie", f"kdservice-sessionid={SID}; path=/")]
        cookies += [("set-cookie", f"lb{i}=balancer-token-{i:08d}") for i in range(16)]
        return httpx.Response(200, json={"LoginResultType": 1}, headers=cookies)
    return httpx.Response(200, json=status([{"Message": f"会话 {SID} 无权访问该单据"}]))


def test_live_session_id_still_masked() -> None:
    client = k3(handler, password="adv-password-1")
    try:
        client.execute_bill_query("BD_Customer", "FNumber")
    except K3CloudError as exc:
        text = exc_text(exc)
    assert SID not in text, text
