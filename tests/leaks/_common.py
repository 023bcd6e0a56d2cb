import httpx

from k3cloud_client import K3CloudClient
from k3cloud_client.testing import TEST_ACCT_ID, TEST_APP_ID, TEST_APP_SECRET, TEST_USER_NAME

LOGIN_OK = {"LoginResultType": 1, "KDSVCSessionId": "adv-session-0123456789abcdef"}


def k3(handler, **auth):
    return K3CloudClient(
        "http://127.0.0.1:9/k3cloud/",
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        **auth,
    )


def signed(handler):
    return k3(handler, app_id=TEST_APP_ID, app_secret=TEST_APP_SECRET)


def status(errors, msg_code=8):
    return {
        "Result": {
            "ResponseStatus": {
                "IsSuccess": False,
                "MsgCode": msg_code,
                "Errors": errors,
                "SuccessEntitys": [],
            }
        }
    }


def exc_text(exc):
    parts = [str(exc), repr(exc)]
    for name in ("body", "message", "msg"):
        v = getattr(exc, name, None)
        if isinstance(v, str):
            parts.append(v)
    for d in getattr(exc, "errors", None) or []:
        parts.append(f"{d!r} {dict(d.raw)!r} {d.message}")
    return "\n".join(parts)
