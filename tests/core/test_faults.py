from __future__ import annotations

import httpx
import pytest

from _huke_k3_core.testing import Fault, FaultPlan


def request(path: str = "/a") -> httpx.Request:
    return httpx.Request("POST", f"http://127.0.0.1{path}")


def test_faults_strike_in_order_times_after_and_path() -> None:
    plan = FaultPlan()
    plan.inject(Fault.timeout(), path="/save", after=1)
    plan.inject(Fault.reset(), times=2)
    assert plan.pending == 3
    assert plan.take(request("/query")) == Fault.reset()
    assert plan.take(request("/save")) is None  # the 'after=1' request goes through
    assert plan.take(request("/save")) == Fault.timeout()
    assert plan.take(request("/save")) == Fault.reset()
    assert plan.take(request("/save")) is None
    assert plan.struck == [("reset", "/query"), ("timeout", "/save"), ("reset", "/save")]


def test_invalid_schedules_are_rejected() -> None:
    with pytest.raises(ValueError, match="times"):
        FaultPlan().inject(Fault.reset(), times=0)


def test_commit_faults_process_before_failing() -> None:
    processed: list[httpx.Request] = []

    def process(r: httpx.Request) -> httpx.Response:
        processed.append(r)
        return httpx.Response(200)

    with pytest.raises(httpx.ReadError):
        Fault.reply_lost().strike(request(), process)
    with pytest.raises(httpx.ReadTimeout):
        Fault.reply_timeout().strike(request(), process)
    with pytest.raises(httpx.ReadTimeout):
        Fault.timeout().strike(request(), process)
    assert len(processed) == 2


def test_status_fault_carries_retry_after() -> None:
    response = Fault.http_status(429, retry_after=2).strike(
        request(), lambda r: httpx.Response(200)
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
