"""Fuzzing FakeK3Cloud's request handling: whatever arrives (any method, path, headers, body; JSON
of any shape, nested deep, with NaN, Infinity, huge numbers or the wrong type in every field), no
exception escapes and every request gets a reply: HTTP 404 off the real routes, the passport
failure for bad signed headers, and otherwise a K/3-shaped JSON reply."""

from __future__ import annotations

import copy
import json
import math
import string
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from k3cloud_client.signing import signed_headers
from k3cloud_client.testing import (
    PASSPORT_FAILURE,
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
    customer_rows,
)

NOW = 1_700_000_000
STUB = "Kingdee.BOS.WebApi.ServicesStub."
FORM_OPS = (
    "Save",
    "BatchSave",
    "Submit",
    "Audit",
    "UnAudit",
    "Delete",
    "View",
    "Allocate",
    "ExecuteBillQuery",
    "BillQuery",
)
AUTH_OPS = ("ValidateUser", "LoginByAppSecret", "LoginBySign", "Logout")
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- JSON of any shape -----------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)  # past a double and a long
    | st.floats()  # NaN and infinities included: json.dumps writes them as NaN / Infinity
    | st.sampled_from([math.nan, math.inf, -math.inf, 1.7e308])  # often, not by luck
    | st.text(max_size=20)
    | st.sampled_from(["", "0", "1", "-1", "C00001", "100", "1,2", "FNumber", "FName"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FILTER_TOKENS = (
    *("(", ")", "FNumber", "FName", "FNope", "=", "<>", "!=", "in", "and", "or", ",", "like"),
    *("'a'", "'C00001'", "1", "-2.5", "''''", "'", "1" * 60, "é", "FUseOrgId.FNumber"),
)
filter_strings = st.lists(st.sampled_from(FILTER_TOKENS), max_size=30).map(" ".join) | st.integers(
    0, 400
).map(lambda n: "(" * n + "FNumber = 'C00001'" + ")" * n)
# Field lists as the client sends them, and of any other items (the simulator once crashed on
# [["FNumber"]] and [{}], but only once a row had saved: hence the valid models below).
field_lists = st.lists(st.sampled_from(["FNumber", "FName", "FCUSTID", "FNope"]), max_size=3) | (
    st.lists(json_values, min_size=1, max_size=3)
)
valid_models = st.integers(3, 10**6).map(lambda n: customer_rows(1, start=n)[0])
customer_models = st.fixed_dictionaries(
    {},
    optional={
        "FNumber": json_values | st.just("C00001"),
        "FName": json_values | st.just("Customer"),
        "FCUSTID": json_values | st.sampled_from([100001, "100001", 0]),
        "FMASTERID": json_values,
        "FCreateOrgId": json_values | st.just({"FNumber": "100"}),
        "FUseOrgId": json_values | st.just({"FNumber": "100"}),
    },
)
data_objects = st.fixed_dictionaries(
    {},
    optional={
        "Model": json_values
        | st.lists(valid_models | customer_models, max_size=3)
        | valid_models
        | customer_models,
        "NeedReturnFields": json_values | field_lists,
        "NeedUpDateFields": json_values | field_lists,
        "IsAutoSubmitAndAudit": json_values,
        "FormId": json_values | st.just("BD_Customer"),
        "FieldKeys": json_values | st.sampled_from(["FNumber", "FNumber,FName", "FNope", ","]),
        "FilterString": json_values | filter_strings,
        "OrderString": json_values | st.sampled_from(["FNumber desc", "FNumber sideways", ""]),
        "TopRowCount": json_values,
        "StartRow": json_values,
        "Limit": json_values,
        "Numbers": json_values | st.just(["C00001"]),
        "Ids": json_values | st.just("100001"),
        "PkIds": json_values | st.just("100001"),
        "TOrgIds": json_values | st.just("1"),
        "CreateOrgId": json_values,
        "Id": json_values,
        "Number": json_values,
    },
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "formid": json_values | st.just("BD_Customer"),
        "data": json_values | data_objects | data_objects.map(lambda d: json.dumps(d)),
        "parameters": json_values
        | st.lists(json_values | st.sampled_from([TEST_ACCT_ID, TEST_USER_NAME]), max_size=7),
    },
)


def _deep(depth: int) -> bytes:
    return b'{"formid": "BD_Customer", "data": {"Model": ' + b"[" * depth + b"]" * depth + b"}}"


contents = (
    bodies.map(lambda b: json.dumps(b).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
    | st.integers(1, 100_000).map(_deep)
    | st.sampled_from([b"", b"{", b"NaN", b'{"data": 1e999}', b'{"formid": -Infinity}'])
)

# -- requests --------------------------------------------------------------------------------------

header_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
methods = st.sampled_from(["POST", "GET", "PUT", "DELETE", "HEAD", "OPTIONS"]) | st.text(
    alphabet=string.ascii_uppercase, min_size=1, max_size=8
)
route_paths = st.builds(
    lambda service, op: f"/k3cloud/{STUB}{service}.{op}.common.kdsvc",
    st.sampled_from(["DynamicFormService", "AuthService", "Nope"]),
    st.sampled_from(FORM_OPS + AUTH_OPS) | st.text(alphabet=string.ascii_letters, max_size=12),
)
odd_paths = st.lists(
    st.text(alphabet=string.ascii_letters + string.digits + "._-~%é", max_size=30), max_size=4
).map(lambda parts: "/" + "/".join(parts))
paths = route_paths | odd_paths | st.sampled_from(["/k3cloud/", f"/{STUB}BatchSave.common.kdsvc"])
signed_names = st.sampled_from(
    [
        "X-Api-ClientID",
        "X-Api-Auth-Version",
        "x-api-timestamp",
        "x-api-nonce",
        "x-api-signheaders",
        "X-Api-Signature",
        "X-Kd-Appkey",
        "X-Kd-Appdata",
        "X-Kd-Signature",
        "Cookie",
        "kdservice-sessionid",
    ]
)


@st.composite
def requests(draw: st.DrawFn) -> httpx.Request:
    path = draw(paths)
    url = httpx.URL("http://k3.test").copy_with(path=path)
    headers: list[tuple[bytes, bytes]] = []
    if draw(st.booleans()):
        signed = signed_headers(
            acct_id=TEST_ACCT_ID,
            user_name=TEST_USER_NAME,
            app_id=TEST_APP_ID,
            app_secret=TEST_APP_SECRET,
            lcid=2052,
            org_num=0,
            path=url.path,
            timestamp=NOW,
        )
        spoiled = draw(st.dictionaries(signed_names, header_bytes, max_size=2))
        headers = [(k.encode(), v.encode()) for k, v in signed.items() if k not in spoiled]
        headers += [(k.encode(), v) for k, v in spoiled.items()]
    headers += draw(st.lists(st.tuples(signed_names.map(str.encode), header_bytes), max_size=2))
    return httpx.Request(draw(methods), url, headers=headers, content=draw(contents))


def _fake() -> FakeK3Cloud:
    fake = FakeK3Cloud(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
        password="pw-123456",
        clock=lambda: NOW,
        organizations={1: "100", 2: "200"},
    )
    fake.seed("BD_Customer", customer_rows(2))
    return fake


def _strict_json(content: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"the reply holds {name}: not JSON")

    return json.loads(content, parse_constant=refuse)


def _non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _check(request: httpx.Request, response: httpx.Response) -> None:
    assert isinstance(response, httpx.Response)
    assert 100 <= response.status_code <= 599
    content = response.read()
    assert content, f"{request.method} {request.url.path}: an empty reply"
    if response.status_code == 404:
        assert len(content) < 200
    elif response.status_code == 500:
        assert response.text == PASSPORT_FAILURE
    else:
        assert response.status_code == 200
        _strict_json(content)  # a K/3 reply, never a NaN the simulator swallowed


@FUZZ
@given(request=requests())
def test_every_request_gets_a_reply(request: httpx.Request) -> None:
    fake = _fake()
    response = fake.transport().handle_request(request)
    _check(request, response)


# A valid request per operation: the fuzz below corrupts one or two of its fields, so that each
# corruption reaches the code that reads that field (an all-random body stops at the first check).
VALID: dict[str, dict[str, Any]] = {
    "Save": {"Model": customer_rows(1, start=7)[0], "NeedReturnFields": ["FNumber"]},
    "BatchSave": {
        "Model": customer_rows(2, start=7),
        "NeedReturnFields": ["FNumber", "FCUSTID"],
        "NeedUpDateFields": [],
        "IsAutoSubmitAndAudit": True,
    },
    "Submit": {"Numbers": ["C00001"], "CreateOrgId": 0},
    "Audit": {"Ids": "100001"},
    "UnAudit": {"Numbers": ["C00001"], "Ids": "100002"},
    "Delete": {"Numbers": ["C00002"]},
    "View": {"Number": "C00001", "CreateOrgId": 1},
    "Allocate": {"PkIds": "100001", "TOrgIds": "2", "IsAutoSubmitAndAudit": True},
    "ExecuteBillQuery": {
        "FormId": "BD_Customer",
        "FieldKeys": "FNumber,FName,FUseOrgId.FNumber",
        "FilterString": "FNumber in ('C00001', 'C00002') and FUseOrgId.FNumber = '100'",
        "OrderString": "FNumber desc",
        "TopRowCount": 0,
        "StartRow": 0,
        "Limit": 10,
    },
}
VALID["BillQuery"] = VALID["ExecuteBillQuery"]
DATA_FIELDS = sorted({key for data in VALID.values() for key in data} | {"Id"})
MODEL_FIELDS = ("FNumber", "FName", "FCUSTID", "FMASTERID", "FCreateOrgId", "FUseOrgId")
# Any JSON, and lists of any JSON (the shape most fields take, wrongly filled).
wrong_values = json_values | st.lists(json_values, min_size=1, max_size=3) | filter_strings


@st.composite
def form_requests(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """An operation and its data: valid but for one or two fields (mostly the operation's own)
    of the data or of its first model, which hold anything."""
    op = draw(st.sampled_from(FORM_OPS))
    fields = st.sampled_from(sorted(VALID[op])) | st.sampled_from(DATA_FIELDS)
    data = {**copy.deepcopy(VALID[op])}
    data.update(draw(st.dictionaries(fields, wrong_values, max_size=2)))
    model = data.get("Model")
    first = model[0] if isinstance(model, list) and model else model
    if isinstance(first, dict):
        model_fields = st.sampled_from(MODEL_FIELDS)
        first.update(draw(st.dictionaries(model_fields, wrong_values, max_size=2)))
    return op, data


@FUZZ
@given(request=form_requests(), form=st.just("BD_Customer") | json_values)
def test_every_form_operation_answers_any_field_in_k3_shape(
    request: tuple[str, dict[str, Any]], form: Any
) -> None:
    """Signed requests (no fuzzed header stops them at the door) to each operation, with any
    value in the fields it reads."""
    op, data = request
    fake = _fake()
    url = f"http://k3.test/k3cloud/{STUB}DynamicFormService.{op}.common.kdsvc"
    headers = signed_headers(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
        lcid=2052,
        org_num=0,
        path=httpx.URL(url).path,
        timestamp=NOW,
    )
    content = json.dumps({"formid": form, "data": data}).encode()
    sent = httpx.Request("POST", url, headers=headers, content=content)
    response = fake.handle(sent)
    _check(sent, response)
    assert response.status_code == 200
    reply = _strict_json(response.content)
    if _non_finite(data) or _non_finite(form):  # refused as a whole, whatever the operation
        status = reply[0][0] if isinstance(reply, list) else reply
        assert status["Result"]["ResponseStatus"]["MsgCode"] == 8


@FUZZ
@given(
    op=st.sampled_from(AUTH_OPS),
    parameters=json_values | st.lists(json_values, min_size=4, max_size=6),
    as_string=st.booleans(),
)
def test_every_login_answers_any_parameters(parameters: Any, op: str, as_string: bool) -> None:
    fake = _fake()
    url = f"http://k3.test/k3cloud/{STUB}AuthService.{op}.common.kdsvc"
    value = json.dumps(parameters) if as_string else parameters
    request = httpx.Request("POST", url, content=json.dumps({"parameters": value}).encode())
    response = fake.handle(request)
    _check(request, response)
    reply = _strict_json(response.content)
    if op != "Logout":
        assert reply["LoginResultType"] == 0  # nothing fuzzed is a valid credential
    assert fake.active_sessions == 0


@pytest.mark.parametrize(
    "holds",
    [
        lambda item: isinstance(item, float) and not math.isfinite(item),
        lambda item: isinstance(item, int) and not isinstance(item, bool) and abs(item) > 2**64,
        lambda item: isinstance(item, list) and bool(item) and isinstance(item[0], list | dict),
    ],
    ids=["non-finite", "huge", "nested"],
)
def test_the_json_strategy_reaches_what_broke_the_simulator(holds: Any) -> None:
    """The fuzz above would prove little if its JSON never held these."""

    def anywhere(value: Any) -> bool:
        stack = [value]
        while stack:
            item = stack.pop()
            if holds(item):
                return True
            stack.extend(item.values() if isinstance(item, dict) else [])
            stack.extend(item if isinstance(item, list) else [])
        return False

    find(json_values, anywhere, settings=settings(max_examples=500, database=None))
