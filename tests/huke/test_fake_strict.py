"""FakeHuke serves only Huke's real routes and answers every malformed request with an envelope:
a wrong base URL fails in tests as in production, and no input drops the connection."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from huke_client import HukeAuth, HukeHTTPError
from huke_client.signing import checksum
from huke_client.testing import FakeHuke, SimCode

from .conftest import APP_KEY, APP_SECRET, INSTANT, Clock

BASE = "https://huke.163.com"


def signed(url: str, content: bytes, clock: Clock) -> httpx.Request:
    request = httpx.Request("POST", url, content=content)
    return next(HukeAuth(APP_KEY, APP_SECRET, clock=clock).auth_flow(request))


def search_body(**entry: Any) -> bytes:
    time_range = {"timeType": "1", "startTime": "0", "endTime": "9", "page": "1", "pageSize": "10"}
    time_range.update(entry)
    return json.dumps({"source": "2", "dealerList": [], "timeRanges": [time_range]}).encode()


@pytest.mark.parametrize(
    "path",
    [
        "/trade/searchTrades",
        "/api/openapi/trade/searchTrades",
        "/openapi/trade/searchTrades/",
        "/openapi/searchTrades",
        "/openapi/trade/searchTrades/extra",
        "/openapi//searchTrades",
        "/OPENAPI/trade/searchTrades",
        "/openapi/",
        "/",
        "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc",
    ],
)
def test_only_the_real_routes_are_served(fake: FakeHuke, clock: Clock, path: str) -> None:
    response = fake(signed(BASE + path, search_body(), clock))
    assert response.status_code == 404
    assert len(response.content) < 200


def test_a_route_shaped_path_past_the_signature_checks_is_an_envelope(
    fake: FakeHuke, clock: Clock
) -> None:
    response = fake(signed(f"{BASE}/openapi/trade/nope", b"{}", clock))
    assert response.status_code == 200
    assert response.json()["code"] == SimCode.NOT_FOUND


def test_the_real_route_is_served(fake: FakeHuke, clock: Clock) -> None:
    response = fake(signed(f"{BASE}/openapi/trade/searchTrades", search_body(), clock))
    assert response.json() == {"code": 200, "msg": "success", "data": {"list": [], "total": 0}}


@pytest.mark.parametrize("base_url", ["http://huke.test", "https://huke.163.com/openapi/v2"])
def test_a_client_with_a_wrong_base_url_fails_as_in_production(
    fake: FakeHuke, base_url: str
) -> None:
    with fake.client(base_url=base_url, retry=INSTANT) as client, pytest.raises(HukeHTTPError) as e:
        client.search_trades(start=0, end=10_000)
    assert e.value.status_code == 404


@pytest.mark.parametrize(
    "content",
    [
        # Otherwise valid bodies: Huke's JSON reader refuses these numbers wherever they are.
        search_body().replace(b"{", b'{"note": NaN, ', 1),
        search_body().replace(b"{", b'{"note": Infinity, ', 1),
        search_body().replace(b"{", b'{"note": -Infinity, ', 1),
        search_body().replace(b"{", b'{"note": 1e999, ', 1),
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a": ' * 2_000 + b"1" + b"}" * 2_000,
        b"9" * 5_000,
        b"\xff\xfe\x00",
    ],
)
def test_bodies_that_are_not_strict_json_get_an_envelope(
    fake: FakeHuke, clock: Clock, content: bytes
) -> None:
    response = fake(signed(f"{BASE}/openapi/trade/searchTrades", content, clock))
    assert response.status_code == 200
    assert response.json()["code"] == SimCode.BAD_REQUEST


@pytest.mark.parametrize("curtime", ["²", "1" * 400, "-5", " 1"])
def test_odd_curtimes_get_an_envelope(fake: FakeHuke, clock: Clock, curtime: str) -> None:
    # A float clock: an int of hundreds of digits minus a float overflowed.
    fake.clock = lambda: 1_700_000_000.5
    request = signed(f"{BASE}/openapi/trade/searchTrades", search_body(), clock)
    headers = dict(request.headers)
    headers["ur-curtime"] = curtime
    headers["ur-checksum"] = checksum(APP_KEY, headers["ur-sign"], curtime, APP_SECRET)
    raw = [(name.encode(), value.encode()) for name, value in headers.items()]  # "²" is not ASCII
    odd = httpx.Request("POST", request.url, headers=raw, content=request.content)
    response = fake(odd)
    assert response.status_code == 200
    assert response.json()["code"] == SimCode.CURTIME_SKEW
