"""``_K3Core._redact_errors`` masks only the *string* values of an ``Errors`` entry: a server
that nests the echo one level down (an object or list inside the entry) leaks into
``K3CloudAPIError.errors[i].raw`` and ``BatchSaveResult.responses`` (both claimed redacted)."""

import json

import httpx

from k3cloud_client import K3CloudError

from ._common import TEST_APP_SECRET, exc_text, signed, status

SEEN: list[str] = []


def echo_entry(request: httpx.Request, **extra):
    SEEN.append(request.headers["X-Kd-Signature"])
    return {
        "Message": "请求无效",
        "FieldName": None,
        **extra,
        "Detail": {"headers": dict(request.headers), "appsecret_echo": [TEST_APP_SECRET]},
    }


def test_whole_call_error_detail_raw() -> None:
    client = signed(lambda r: httpx.Response(200, json=status([echo_entry(r)])))
    try:
        client.execute_bill_query("BD_Customer", "FNumber")
    except K3CloudError as exc:
        text = exc_text(exc)
    leaks = [s for s in (TEST_APP_SECRET, *SEEN) if s in text]
    assert not leaks, leaks


def test_batch_save_responses() -> None:
    def handler(request):
        rows = json.loads(request.content)["data"]["Model"]
        errors = [echo_entry(request, DIndex=i) for i in range(len(rows))]
        return httpx.Response(200, json=status(errors, msg_code=11))

    result = signed(handler).batch_save("BD_Customer", [{"FNumber": "A1", "FName": "a"}])
    text = json.dumps(result.responses, ensure_ascii=False)
    leaks = [s for s in (TEST_APP_SECRET, *SEEN) if s in text]
    assert not leaks, leaks
