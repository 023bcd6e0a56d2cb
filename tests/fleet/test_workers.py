"""Real workers, a real broker: 3 tenants x 6 windows through two ``celery worker`` processes
(concurrency 2 each), one of them SIGKILLed in the middle of a save; a tenant with a wrong
secret; the one-window-per-K/3-account limit."""

from __future__ import annotations

import collections
import time
from typing import Any

import pytest

from huke_k3_bridge.celery import WindowFailedError, dispatch, fleet_of

from .conftest import VISIBILITY_TIMEOUT, Workers, wait_until
from .simulated import HOUR_MS, Simulators

GOOD = ("shop-a", "shop-b", "shop-c")
#: The worker started in place of the killed one.
REPLACEMENT = "w3@fleet"
#: Bounds the wait for every result: redelivery takes the visibility timeout and a sweep.
RESULTS_TIMEOUT = 60


def _results(sent: list[Any], workers: Workers) -> list[Any]:
    """Each window's result (a summary, or the exception it failed with), in order."""
    results = []
    for window in sent:
        try:
            results.append(window.result.get(timeout=RESULTS_TIMEOUT, propagate=False))
        except Exception as exc:
            pytest.fail(f"{window} ({window.task_id}): {exc!r}; workers' logs:\n{workers.logs()}")
    return results


def _holder(sent: list[Any], fleet_app: Any) -> tuple[Any, str]:
    """The window holding account A's slot (the one whose save is held), and its worker."""
    fleet = fleet_of(fleet_app)
    account = fleet.tenant("shop-a").k3_account
    owners = wait_until(lambda: fleet.slots.owners(account), 10, "account A's slot holder")
    assert len(owners) == 1, owners
    held = next(window for window in sent if window.task_id == owners[0])

    def started_on() -> str | None:
        info = held.result.info  # task_track_started: {"hostname": ..., "pid": ...}
        return info.get("hostname") if held.result.state == "STARTED" else None

    return held, wait_until(started_on, 10, "the held task's worker")


def test_a_killed_worker_s_window_is_redelivered_and_every_buyer_exists_once(
    simulators: Simulators, workers: Workers, fleet_app: Any
) -> None:
    t0 = simulators.t0
    start, end = t0, t0 + 6 * HOUR_MS - 1
    shops = simulators.shops
    assert not shops["shop-a"].buyers(start, end) & shops["shop-b"].buyers(start, end)
    account_a = simulators.accounts["A"]
    account_a.meter.hold("BatchSave")

    sent = dispatch(GOOD, start=start, end=end, app=fleet_app)
    assert len(sent) == 3 * 6

    wait_until(account_a.meter.arrived.is_set, 30, "a save on account A")
    held, host = _holder(sent, fleet_app)
    workers.stop_consuming(host)
    workers.kill(host)  # its whole pool: the machine died in the middle of the save
    killed_at = time.monotonic()
    account_a.meter.release()  # the save lands; nobody reads its reply
    # Its supervisor starts a new worker once the visibility timeout has passed. A starting
    # worker hands the killed one's messages back at once (every kombu); a running one looks
    # every tenth of the timeout (kombu 5.6+: unacked_restore_interval) or every ~100 s.
    time.sleep(max(0.0, killed_at + VISIBILITY_TIMEOUT + 0.5 - time.monotonic()))
    workers.start(REPLACEMENT)
    results = _results(sent, workers)

    # Never two requests at once on one K/3 account, though 4 processes ran 18 windows.
    assert account_a.meter.peak == 1
    assert simulators.accounts["B"].meter.peak == 1
    for window, summary in zip(sent, results, strict=True):
        assert isinstance(summary, dict), f"{window}: {summary!r}"
        assert summary["ok"], summary
        assert summary["tenant"] == window.tenant
        assert summary["counts"]["failed"] == summary["counts"]["uncertain"] == 0
    # Every buyer of every tenant exists exactly once in its K/3 account.
    for account in simulators.accounts.values():
        twice = [n for n, c in collections.Counter(account.numbers()).items() if c > 1]
        assert not twice
    for name in GOOD:
        shop = shops[name]
        assert shop.buyers(start, end) <= set(shop.account.numbers())
    a_numbers = set(account_a.numbers())
    assert a_numbers == shops["shop-a"].buyers(start, end) | shops["shop-b"].buyers(start, end)
    # The held save did land, and the window, run again by the other worker, found it.
    assert held.result.get(timeout=1)["counts"]["existed"] >= 1
    assert held.result.worker not in (host, None)
    progress = fleet_of(fleet_app).progress
    for name in GOOD:  # the six windows completed, merged into one range
        assert any(a <= start and end <= b for a, b in progress.completed(name))


def test_a_tenant_with_a_wrong_secret_fails_alone_and_at_once(
    simulators: Simulators, workers: Workers, fleet_app: Any
) -> None:
    t0 = simulators.t0
    start, end = t0 + 6 * HOUR_MS, t0 + 8 * HOUR_MS - 1
    refused_before = len(simulators.accounts["B"].fake.auth_failures)
    sent = dispatch([*GOOD, "shop-bad"], start=start, end=end, app=fleet_app)
    assert len(sent) == 4 * 2
    for window in sent:
        outcome = _results([window], workers)[0]
        if window.tenant == "shop-bad":
            assert isinstance(outcome, WindowFailedError), outcome
            assert "K3CloudAuthenticationError" in str(outcome)
            assert "not retried" in str(outcome)
            assert simulators.secrets["SHOP_BAD_K3_APP_SECRET"] not in str(outcome)
        else:
            assert isinstance(outcome, dict), outcome
            assert outcome["ok"], outcome
    # Not retried: one refused request per window (its existence query), then nothing.
    assert len(simulators.accounts["B"].fake.auth_failures) - refused_before == 2
    bad = simulators.shops["shop-bad"]
    assert not bad.buyers(start, end) & set(bad.account.numbers())
    for name in GOOD:
        shop = simulators.shops[name]
        assert shop.buyers(start, end) <= set(shop.account.numbers())
    assert not fleet_of(fleet_app).progress.completed("shop-bad")
