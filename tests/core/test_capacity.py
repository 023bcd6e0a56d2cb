"""The simulators' capacity model: at most ``limit`` requests worked on at once, the others turned
away at once with the simulator's rate-limit reply."""

from __future__ import annotations

import json
import threading
import time

import anyio
import httpx
import pytest

from _huke_k3_core.testing import Capacity, Fault, FaultInjectingSimulator
from k3cloud_client import AsyncK3CloudClient, RateLimitedError, RetryPolicy
from k3cloud_client.testing import (
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
)


class Echo(FaultInjectingSimulator):
    """Answers 200 with the path; counts what it processed."""

    def __init__(self) -> None:
        super().__init__()
        self.processed = 0
        self._lock = threading.Lock()

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.processed += 1
        return httpx.Response(200, text=request.url.path)


def _burst(url: str, n: int, path: str = "/x") -> list[int]:
    """``n`` requests sent at the same moment, each on its own connection; their statuses."""
    statuses: list[int] = [0] * n
    go = threading.Barrier(n)

    def one(i: int) -> None:
        with httpx.Client(timeout=5) as client:
            go.wait(timeout=5)
            statuses[i] = client.post(f"{url}{path}").status_code

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return statuses


def test_requests_beyond_the_capacity_are_turned_away_at_once() -> None:
    sim = Echo()
    sim.limit_capacity(2, service_time=0.3)
    with sim.serve() as server:
        started = time.monotonic()
        statuses = _burst(server.url, 6)
        took = time.monotonic() - started
    assert sorted(statuses) == [200, 200, 429, 429, 429, 429]
    assert (sim.processed, sim.turned_away, sim.peak_in_flight) == (2, 4, 2)
    assert sim.request_count == 6
    assert 0.3 <= took < 3.0  # the two admitted ones took their service time
    assert sim.in_flight == 0


def test_requests_within_the_capacity_all_go_through() -> None:
    sim = Echo()
    sim.limit_capacity(3, service_time=0.01)
    with sim.serve() as server, httpx.Client() as client:
        statuses = [client.post(f"{server.url}/x").status_code for _ in range(5)]
        assert _burst(server.url, 3) == [200, 200, 200]
    assert statuses == [200] * 5
    assert (sim.processed, sim.turned_away) == (8, 0)


def test_capacity_path_filter_and_lifting_the_limit() -> None:
    sim = Echo()
    sim.limit_capacity(1, service_time=0.25, path="/busy")
    assert sim.capacity == Capacity(1, service_time=0.25, path="/busy")
    with sim.serve() as server:
        assert sorted(_burst(server.url, 3, "/idle")) == [200, 200, 200]
        assert sorted(_burst(server.url, 3, "/busy")) == [200, 429, 429]
        sim.limit_capacity(None)
        assert sorted(_burst(server.url, 3, "/busy")) == [200, 200, 200]
    assert sim.capacity is None


def test_scheduled_faults_still_strike_admitted_requests() -> None:
    sim = Echo()
    sim.limit_capacity(5)
    sim.inject(Fault.http_status(503))
    with sim.serve() as server, httpx.Client() as client:
        assert client.post(f"{server.url}/x").status_code == 503
        assert client.post(f"{server.url}/x").status_code == 200
    assert sim.in_flight == 0


@pytest.mark.parametrize("bad", [0, -1])
def test_a_capacity_below_one_is_refused(bad: int) -> None:
    with pytest.raises(ValueError):
        Echo().limit_capacity(bad)
    with pytest.raises(ValueError):
        Capacity(1, service_time=-0.1)


async def test_fake_k3cloud_turns_calls_away_with_msgcode_14() -> None:
    fake = FakeK3Cloud(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
    )
    fake.limit_capacity(1, service_time=0.3)
    body = json.loads(fake.rate_limit_fault().body)
    assert body["Result"]["ResponseStatus"]["MsgCode"] == 14
    with fake.serve() as server:
        async with AsyncK3CloudClient(
            f"{server.url}/k3cloud/",
            acct_id=TEST_ACCT_ID,
            user_name=TEST_USER_NAME,
            app_id=TEST_APP_ID,
            app_secret=TEST_APP_SECRET,
            retry=RetryPolicy(max_retries=0),
        ) as k3:
            outcomes: list[object] = []

            async def query() -> None:
                try:
                    outcomes.append(await k3.execute_bill_query("BD_Customer", "FNumber"))
                except RateLimitedError as exc:
                    outcomes.append(exc)

            async with anyio.create_task_group() as tasks:
                for _ in range(3):
                    tasks.start_soon(query)
    assert sum(isinstance(o, RateLimitedError) for o in outcomes) == 2
    assert [o for o in outcomes if not isinstance(o, RateLimitedError)] == [[]]
    assert fake.turned_away == 2
