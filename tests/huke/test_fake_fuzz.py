"""Fuzzing FakeHuke's request handling: whatever arrives (any method, path, headers, body; JSON of
any shape, nested deep, with NaN, Infinity, huge numbers or the wrong type in every field), no
exception escapes and every request gets a reply: HTTP 404 off ``/openapi/<module>/<action>``,
otherwise an envelope in strict JSON."""

from __future__ import annotations

import copy
import json
import math
import string
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huke_client import HukeAuth
from huke_client.testing import FakeHuke, SimCode, fake_trade

from .conftest import APP_KEY, APP_SECRET, START_MS

NOW = 1_700_000_000.0
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)  # past a double and a long
    | st.floats()  # json.dumps writes NaN and the infinities as bare NaN / Infinity
    | st.sampled_from([math.nan, math.inf, -math.inf, 1.7e308])  # often, not by luck
    | st.text(max_size=20)
    | st.sampled_from(["", "0", "1", "²", "-1", "١٢", "9" * 30, "2", "1,2"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
wrong_values = json_values | st.lists(json_values, min_size=1, max_size=3)


def _deep(depth: int) -> bytes:
    return b'{"source": "2", "dealerList": ' + b"[" * depth + b"]" * depth + b"}"


contents = (
    json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
    | st.integers(1, 100_000).map(_deep)
    | st.sampled_from([b"", b"{", b"NaN", b'{"source": 1e999}', b"[]", b"null"])
)
header_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
header_names = st.sampled_from(
    ["ur-appkey", "ur-sign", "ur-curtime", "ur-checksum", "eid", "Content-Type"]
)
methods = st.sampled_from(["POST", "GET", "PUT", "DELETE", "HEAD", "OPTIONS"]) | st.text(
    alphabet=string.ascii_uppercase, min_size=1, max_size=8
)
segments = st.text(alphabet=string.ascii_letters + string.digits + "._-~é", max_size=20)
paths = (
    st.sampled_from(["/openapi/trade/searchTrades", "/openapi/customer/fields", "/trade/x"])
    | st.builds(lambda a, b: f"/openapi/{a}/{b}", segments, segments)
    | st.lists(segments, max_size=4).map(lambda parts: "/" + "/".join(parts))
)


def _fake() -> FakeHuke:
    fake = FakeHuke(APP_KEY, APP_SECRET, clock=lambda: NOW, eid=None)
    fake.add_trades(fake_trade(create_time=START_MS + n, tid=f"T{n}") for n in range(5))
    fake.add_route("customer/fields", lambda body: {"echo": body})
    return fake


def _strict_json(content: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"the reply holds {name}: not JSON")

    return json.loads(content, parse_constant=refuse)


def _check(request: httpx.Request, response: httpx.Response) -> dict[str, Any]:
    assert isinstance(response, httpx.Response)
    content = response.read()
    assert content, f"{request.method} {request.url.path}: an empty reply"
    if response.status_code == 404:
        assert len(content) < 200
        return {}
    assert response.status_code == 200  # Huke reports errors in the envelope
    envelope = _strict_json(content)
    assert isinstance(envelope, dict)
    assert {"code", "msg"} <= set(envelope)
    return envelope


def _sign(request: httpx.Request) -> httpx.Request:
    return next(HukeAuth(APP_KEY, APP_SECRET, clock=lambda: NOW).auth_flow(request))


@st.composite
def requests(draw: st.DrawFn) -> httpx.Request:
    url = httpx.URL("https://huke.163.com").copy_with(path=draw(paths))
    request = httpx.Request(draw(methods), url, content=draw(contents))
    if draw(st.booleans()):
        request = _sign(request)
    spoiled = draw(st.dictionaries(header_names, header_bytes, max_size=2))
    headers = [(k.encode(), v.encode()) for k, v in request.headers.items() if k not in spoiled]
    headers += [(k.encode(), v) for k, v in spoiled.items()]
    return httpx.Request(request.method, url, headers=headers, content=request.content)


@FUZZ
@given(request=requests())
def test_every_request_gets_a_reply(request: httpx.Request) -> None:
    _check(request, _fake().transport().handle_request(request))


VALID_ENTRY = {"timeType": "1", "startTime": "0", "endTime": "9" * 13, "page": "1", "pageSize": "3"}
ENTRY_FIELDS = sorted(VALID_ENTRY)


@st.composite
def search_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid ``trade/searchTrades`` body but for one or two fields, top-level or of its time
    range, which hold anything."""
    body: dict[str, Any] = {
        "source": "2",
        "dealerList": [],
        "timeRanges": [copy.deepcopy(VALID_ENTRY)],
    }
    body.update(draw(st.dictionaries(st.sampled_from(sorted(body)), wrong_values, max_size=2)))
    ranges = body["timeRanges"]
    if isinstance(ranges, list) and ranges and isinstance(ranges[0], dict):
        fields = st.sampled_from(ENTRY_FIELDS) | st.text(max_size=5)
        ranges[0].update(draw(st.dictionaries(fields, wrong_values, max_size=2)))
    return body


@FUZZ
@given(body=search_bodies())
def test_search_trades_answers_any_field_with_an_envelope(body: dict[str, Any]) -> None:
    content = json.dumps(body).encode()
    url = "https://huke.163.com/openapi/trade/searchTrades"
    request = _sign(httpx.Request("POST", url, content=content))
    envelope = _check(request, _fake().handle(request))
    if not _finite(body):  # a strict JSON reader refuses the body, whatever its fields
        assert envelope["code"] == SimCode.BAD_REQUEST


def _finite(body: Any) -> bool:
    """Whether the body holds no NaN or infinity (the text "NaN" is fine)."""
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        stack.extend(item.values() if isinstance(item, dict) else [])
        stack.extend(item if isinstance(item, list) else [])
    return True


@FUZZ
@given(body=json_values)
def test_an_added_route_answers_any_json_body(body: Any) -> None:
    content = json.dumps(body).encode()
    url = "https://huke.163.com/openapi/customer/fields"
    request = _sign(httpx.Request("POST", url, content=content))
    envelope = _check(request, _fake().handle(request))
    if not isinstance(body, dict) or not _finite(body):
        assert envelope["code"] == SimCode.BAD_REQUEST
    else:
        assert envelope == {"code": 200, "msg": "success", "data": {"echo": body}}


@FUZZ
@given(
    content=contents,
    path=st.sampled_from(["/openapi/trade/searchTrades", "/openapi/customer/fields"]),
)
def test_any_body_signed_for_a_real_route_gets_an_envelope(content: bytes, path: str) -> None:
    """Bytes, JSON of any shape, bodies nested 100,000 deep: past the signature checks, each is
    answered with an envelope (the simulator once let a RecursionError escape)."""
    request = _sign(httpx.Request("POST", f"https://huke.163.com{path}", content=content))
    envelope = _check(request, _fake().handle(request))
    assert envelope["code"] in (SimCode.OK, SimCode.BAD_REQUEST)
