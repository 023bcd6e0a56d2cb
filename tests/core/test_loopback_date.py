"""The ``Date`` header of the simulators' replies: read from the simulator's own clock, on every
reply (success, error, 404, fault), in-process and over a socket, and exactly one of it on the
wire; what lets a client measure its clock's skew against a simulated server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from email.utils import formatdate, parsedate_to_datetime

import httpx
import pytest

from _huke_k3_core.testing import Fault, FaultInjectingSimulator, LoopbackServer, serve
from huke_client import HukeAuth
from huke_client.testing import FakeHuke
from k3cloud_client import SignedHeaderAuth
from k3cloud_client.testing import (
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
)

HOUR = 3600.0
APP_KEY = "34ff472473d741b881a7b46a3cfb5b59"
APP_SECRET = "d83d0971ca5641a7a6b2b7c78dea7f49"
SEARCH = "/openapi/trade/searchTrades"
QUERY = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery.common.kdsvc"


def ahead() -> float:
    return time.time() + HOUR


def search_body() -> bytes:
    now_ms = int(ahead() * 1000)
    entry = {
        "timeType": "1",
        "startTime": str(now_ms - 3_600_000),
        "endTime": str(now_ms),
        "page": "1",
        "pageSize": "10",
    }
    return json.dumps({"source": "2", "dealerList": [], "timeRanges": [entry]}).encode()


def query_body() -> dict[str, object]:
    return {"formid": "BD_Customer", "data": {"FormId": "BD_Customer", "FieldKeys": "FNumber"}}


def the_date(response: httpx.Response) -> float:
    """The reply's one ``Date`` header as Unix seconds (fails on none or several)."""
    dates = response.headers.get_list("Date")
    assert len(dates) == 1, dates
    return parsedate_to_datetime(dates[0]).timestamp()


def assert_an_hour_ahead(response: httpx.Response) -> None:
    # ±2 s: the header has whole seconds, and a little time passes around the request.
    assert the_date(response) - time.time() == pytest.approx(HOUR, abs=2)


def huke_fake() -> FakeHuke:
    return FakeHuke(APP_KEY, APP_SECRET, clock=ahead)


def k3_fake() -> FakeK3Cloud:
    return FakeK3Cloud(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
        clock=ahead,
    )


def k3_auth(*, app_secret: str = TEST_APP_SECRET) -> SignedHeaderAuth:
    return SignedHeaderAuth(TEST_ACCT_ID, TEST_USER_NAME, TEST_APP_ID, app_secret, clock=ahead)


def test_fake_huke_over_loopback_dates_success_and_error_replies_by_its_clock() -> None:
    fake = huke_fake()
    with fake.serve() as server, httpx.Client(base_url=server.url, timeout=5) as http:
        # Signed with this machine's clock, an hour behind the server's: refused for skew.
        skewed = http.post(SEARCH, content=search_body(), auth=HukeAuth(APP_KEY, APP_SECRET))
        ok = http.post(
            SEARCH, content=search_body(), auth=HukeAuth(APP_KEY, APP_SECRET, clock=ahead)
        )
        unsigned = http.post(SEARCH, content=search_body())
        missing = http.post("/nowhere", content=b"{}")
    assert ok.json()["code"] == 200
    assert skewed.json()["code"] != 200
    assert unsigned.json()["code"] != 200
    assert missing.status_code == 404
    for response in (ok, skewed, unsigned, missing):
        assert_an_hour_ahead(response)


def test_fake_k3cloud_over_loopback_dates_success_and_error_replies_by_its_clock() -> None:
    fake = k3_fake()
    with fake.serve() as server, httpx.Client(base_url=server.url, timeout=5) as http:
        ok = http.post(QUERY, json=query_body(), auth=k3_auth())
        passport = http.post(QUERY, json=query_body(), auth=k3_auth(app_secret="0" * 32))
        no_session = http.post(QUERY, json=query_body())
        missing = http.post("/k3cloud/nowhere", json={})
    assert ok.status_code == 200
    assert ok.json() == []
    assert passport.status_code == 500
    assert "Fail to verify thirty passport" in passport.text
    assert no_session.json()[0][0]["Result"]["ResponseStatus"]["MsgCode"] == 1
    assert missing.status_code == 404
    for response in (ok, passport, no_session, missing):
        assert_an_hour_ahead(response)


@pytest.mark.parametrize("make", [huke_fake, k3_fake], ids=["huke", "k3cloud"])
def test_fault_replies_are_dated_by_the_simulators_clock(
    make: Callable[[], FaultInjectingSimulator],
) -> None:
    fake = make()
    fake.inject(Fault.http_status(503, retry_after=1))
    fake.inject(Fault.malformed_json())
    with fake.serve() as server, httpx.Client(base_url=server.url, timeout=5) as http:
        unavailable = http.post("/anything", content=b"{}")
        cut_short = http.post("/anything", content=b"{}")
    assert (unavailable.status_code, cut_short.status_code) == (503, 200)
    assert_an_hour_ahead(unavailable)
    assert_an_hour_ahead(cut_short)


def test_in_process_replies_carry_the_exact_date_of_the_clock() -> None:
    instant = 1_700_000_000.0
    huke = FakeHuke(APP_KEY, APP_SECRET, clock=lambda: instant)
    k3 = FakeK3Cloud(acct_id=TEST_ACCT_ID, user_name=TEST_USER_NAME, clock=lambda: instant)
    k3.inject(Fault.reply(b"[]"))
    expected = "Tue, 14 Nov 2023 22:13:20 GMT"
    assert formatdate(instant, usegmt=True) == expected
    with httpx.Client(transport=huke.transport()) as http:
        assert http.post(f"http://huke.test{SEARCH}").headers["Date"] == expected
    with httpx.Client(transport=k3.transport()) as http:
        assert http.post(f"http://k3.test{QUERY}").headers["Date"] == expected  # the fault
        assert http.post(f"http://k3.test{QUERY}").headers["Date"] == expected


def test_a_reply_that_has_a_date_keeps_it_and_gets_no_second() -> None:
    class Dated(FaultInjectingSimulator):
        def handle(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={"Date": "Mon, 01 Jan 2001 00:00:00 GMT"})

    with Dated(clock=ahead).serve() as server:
        response = httpx.get(server.url, timeout=5)
    assert response.headers.get_list("Date") == ["Mon, 01 Jan 2001 00:00:00 GMT"]
    assert response.headers["Server"]


def test_a_handler_without_a_date_gets_the_servers_own_once() -> None:
    def bare(request: httpx.Request) -> httpx.Response:
        return httpx.Response(204)

    server: LoopbackServer
    with serve(bare) as server:
        response = httpx.get(server.url, timeout=5)
    assert response.status_code == 204
    assert the_date(response) == pytest.approx(time.time(), abs=2)
    assert response.headers["Server"]


def test_a_simulator_without_a_clock_dates_by_the_machines() -> None:
    class Echo(FaultInjectingSimulator):
        def handle(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200)

    with httpx.Client(transport=Echo().transport()) as http:
        response = http.get("http://echo.test/")
    assert the_date(response) == pytest.approx(time.time(), abs=2)
