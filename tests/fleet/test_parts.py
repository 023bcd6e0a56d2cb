"""The fleet's parts against the real Redis, without workers: the slots, the progress, the
planning, the verdicts, the settings, the task run in-process, ``huke-k3 dispatch``."""

from __future__ import annotations

import argparse
import io
import itertools
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis

from huke_k3_bridge import SyncReport, TradeOutcome
from huke_k3_bridge._cli_dispatch import add_dispatch_command, run_dispatch
from huke_k3_bridge.celery import (
    FleetConfigError,
    FleetSettings,
    Verdict,
    WindowFailedError,
    configuration,
    install,
    make_app,
)
from huke_k3_bridge.celery._dispatch import plan
from huke_k3_bridge.celery._progress import WindowProgress
from huke_k3_bridge.celery._slots import Slots
from huke_k3_bridge.celery._verdict import judge
from huke_k3_bridge.tenants import load_tenants
from k3cloud_client.testing import Fault

from .conftest import Workers
from .simulated import HOUR_MS, Simulators

_counter = iter(range(1_000_000))


@pytest.fixture
def client(redis_url: str) -> Any:
    with redis.Redis.from_url(redis_url) as connection:
        yield connection


@pytest.fixture
def prefix() -> str:
    """Keys of their own for each test: nothing leaks from one test into the next."""
    return f"test{next(_counter)}"


# -- slots ------------------------------------------------------------------------------------


def test_a_slot_is_held_while_renewed_and_free_when_given_back(client: Any, prefix: str) -> None:
    slots = Slots(client, prefix=prefix, limit=1, ttl=0.3)
    first = slots.try_take("erp|1", owner="task-1")
    assert first is not None
    time.sleep(0.8)  # past the TTL: only the renewals keep it
    assert slots.try_take("erp|1") is None
    assert slots.owners("erp|1") == ["task-1"]
    other = slots.try_take("erp|2")  # another account has slots of its own
    assert other is not None
    other.close()
    first.close()
    second = slots.try_take("erp|1")
    assert second is not None
    second.close()


def test_a_dead_holder_s_slot_frees_itself_after_the_ttl(client: Any, prefix: str) -> None:
    slots = Slots(client, prefix=prefix, limit=2, ttl=0.3)
    taken = [slots.try_take("erp|1"), slots.try_take("erp|1")]
    assert all(taken)
    assert slots.try_take("erp|1") is None  # the limit is 2
    for slot in taken:  # their process dies: nothing renews them and nothing gives them back
        assert slot is not None
        slot._closed.set()
        slot._renewer.join()
    assert slots.try_take("erp|1") is None
    time.sleep(0.4)
    freed = slots.try_take("erp|1")
    assert freed is not None
    freed.close()


# -- progress and planning --------------------------------------------------------------------


def test_progress_merges_windows_completed_in_any_order(client: Any, prefix: str) -> None:
    progress = WindowProgress(client, prefix=prefix)
    progress.note_origin("shop", 0)
    progress.note_origin("shop", 500)  # only the first origin counts
    for start, end in [(200, 299), (0, 99), (400, 499)]:
        progress.complete("shop", start, end)
    assert progress.completed("shop") == [(0, 99), (200, 299), (400, 499)]
    assert progress.resume_from("shop") == 100  # the gap: its window failed or is running
    progress.complete("shop", 100, 199)
    assert progress.completed("shop") == [(0, 299), (400, 499)]
    assert progress.resume_from("shop") == 300
    assert progress.resume_from("other") is None
    progress.forget("shop")
    assert progress.completed("shop") == []


def test_a_dispatch_continues_after_the_last_completed_window(
    client: Any, prefix: str, simulators: Simulators
) -> None:
    tenants = load_tenants(simulators.tenants_path)
    shop = tenants["shop-a"]  # window 1h, overlap 10m
    progress = WindowProgress(client, prefix=prefix)
    end = simulators.t0 + 20 * HOUR_MS
    windows, origins = plan(
        [shop], start=None, end=end, since_last=True, progress=progress, now_ms=0
    )
    # The first time: the scheme's 20 hours before end (as a run without a watermark), in hours.
    assert windows[0].start_ms == simulators.t0
    assert windows[1].start_ms == simulators.t0 + HOUR_MS
    assert all(w.end_ms - w.start_ms < HOUR_MS for w in windows)
    assert all(a.end_ms + 1 == b.start_ms for a, b in itertools.pairwise(windows))
    assert windows[-1].end_ms == end
    assert origins == windows[:1]
    progress.note_origin("shop-a", origins[0].start_ms)
    for window in windows[:5]:  # the first five completed, the sixth did not
        progress.complete("shop-a", window.start_ms, window.end_ms)
    progress.complete("shop-a", windows[6].start_ms, windows[6].end_ms)
    later, origins = plan(
        [shop], start=None, end=end + HOUR_MS, since_last=True, progress=progress, now_ms=0
    )
    overlap = 10 * 60_000
    assert later[0].start_ms == windows[5].start_ms - overlap
    assert later[-1].end_ms == end + HOUR_MS
    assert origins == []
    # An explicit range is planned as given, and the origin stays where it was.
    explicit, origins = plan(
        [shop], start=end - HOUR_MS + 1, end=end, since_last=True, progress=progress, now_ms=0
    )
    assert [(w.start_ms, w.end_ms) for w in explicit] == [(end - HOUR_MS + 1, end)]
    assert origins == []
    with pytest.raises(ValueError, match="is after end"):
        plan([shop], start=end, end=end - 1, since_last=True, progress=progress, now_ms=0)


# -- verdicts ---------------------------------------------------------------------------------

_WHEN = datetime(2024, 11, 28, tzinfo=timezone.utc)


def _report(*errors: str, statuses: tuple[str, ...] = ("created",)) -> SyncReport:
    outcomes = tuple(
        TradeOutcome(
            i,
            status,
            number="C1",
            reason=None if status == "created" else "why",  # type: ignore[arg-type]
        )
        for i, status in enumerate(statuses)
    )
    return SyncReport(start=_WHEN, end=_WHEN, outcomes=outcomes, errors=errors)


@pytest.mark.parametrize(
    ("report", "verdict"),
    [
        (_report(), Verdict.COMPLETED),
        (_report(statuses=("created", "failed")), Verdict.ROWS_FAILED),
        (_report(statuses=("uncertain",)), Verdict.TRANSIENT),
        (
            _report(
                "ExecuteBillQuery failed as a whole, after the client's retries, for 9 "
                "customers: K3CloudConnectionError: POST /k3cloud/x failed: refused"
            ),
            Verdict.TRANSIENT,
        ),
        (_report("fetching ... failed: HukeTimeoutError: timed out"), Verdict.TRANSIENT),
        (
            _report("x: K3CloudHTTPError: POST /k3cloud/x answered HTTP 503: 'busy'"),
            Verdict.TRANSIENT,
        ),
        (_report("x: HukeHTTPError: POST /openapi/x answered HTTP 404: 'no'"), Verdict.FATAL),
        (_report("x: RateLimitedError: MsgCode 14"), Verdict.TRANSIENT),
        (
            _report("x: K3CloudAuthenticationError: answered HTTP 500: 'Fail to verify'"),
            Verdict.FATAL,
        ),
        (
            _report("x: HukeAPIError: /openapi/x failed with Huke error 40004: checksum"),
            Verdict.FATAL,
        ),
        (
            _report("x: K3CloudConnectionError: reset", "y: LoginError: refused"),
            Verdict.FATAL,
        ),
        (_report("could not store the watermark"), Verdict.FATAL),
    ],
)
def test_a_report_s_errors_decide_between_retry_and_failure(
    report: SyncReport, verdict: Verdict
) -> None:
    assert judge(report) is verdict


def test_a_huke_code_its_client_retries_is_a_passing_trouble() -> None:
    report = _report("x: HukeAPIError: /openapi/x failed with Huke error 429: slow down")
    assert judge(report) is Verdict.FATAL
    assert judge(report, huke_retry_codes={"429"}) is Verdict.TRANSIENT


# -- settings and the app ---------------------------------------------------------------------


def test_settings_come_from_the_environment_and_name_a_bad_variable() -> None:
    settings = FleetSettings.from_env({"HUKE_K3_SLOTS": "2", "HUKE_K3_SLOT_TTL": "30"})
    assert (settings.k3_slots, settings.slot_ttl, settings.max_retries) == (2, 30.0, 5)
    with pytest.raises(FleetConfigError, match="HUKE_K3_SLOT_TTL='soon'"):
        FleetSettings.from_env({"HUKE_K3_SLOT_TTL": "soon"})
    with pytest.raises(FleetConfigError, match="k3_slots must be an int >= 1"):
        FleetSettings.from_env({"HUKE_K3_SLOTS": "0"})


def test_the_app_redelivers_after_the_visibility_timeout_and_waits_under_it() -> None:
    app = make_app(
        {
            "HUKE_K3_BROKER_URL": "redis://127.0.0.1:1/3",
            "HUKE_K3_VISIBILITY_TIMEOUT": "60",
            "HUKE_K3_RETRY_BACKOFF_MAX": "600",
        }
    )
    options = app.conf.broker_transport_options
    assert options["visibility_timeout"] == 60.0
    assert options["unacked_restore_interval"] == 6.0
    assert app.conf.result_backend == "redis://127.0.0.1:1/3"
    assert app.conf.worker_prefetch_multiplier == 1
    task = app.tasks["huke_k3_bridge.sync_window"]
    assert task.acks_late
    assert task.reject_on_worker_lost
    from huke_k3_bridge.celery import fleet_of

    assert fleet_of(app).settings.retry_backoff_max == 30.0  # half the visibility timeout
    assert configuration(3600)["broker_transport_options"]["unacked_restore_interval"] == 10.0


# -- the task, in-process ----------------------------------------------------------------------


@pytest.fixture
def own_app(
    redis_url: str, simulators: Simulators, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """An app of one's own with the fleet installed, running tasks in this process."""
    from celery import Celery

    for name, value in simulators.secrets.items():
        monkeypatch.setenv(name, value)
    app = Celery("mine", broker=redis_url, backend=redis_url, set_as_current=False)
    task = install(
        app,
        tenants_path=simulators.tenants_path,
        settings=FleetSettings(key_prefix=prefix, retry_backoff=0, slot_wait=0),
        max_retries=2,
    )
    assert task.name == "huke_k3_bridge.sync_window"
    return app


def _window(simulators: Simulators, hour: int) -> tuple[int, int]:
    start = simulators.t0 + hour * HOUR_MS
    return start, start + HOUR_MS - 1


def test_a_passing_trouble_is_retried_and_the_window_completes(
    own_app: Any, simulators: Simulators
) -> None:
    account = simulators.accounts["B"]
    start, end = _window(simulators, 2)
    queries = account.fake.call_count("ExecuteBillQuery")
    # Every attempt of the client's first run (1 + 2 retries) cannot connect.
    account.fake.inject(Fault.connect_error(), times=3, path="ExecuteBillQuery")
    result = own_app.tasks["huke_k3_bridge.sync_window"].apply(args=("shop-c", start, end))
    summary = result.get(timeout=30)
    assert summary["ok"]
    assert summary["verdict"] == "completed"
    assert account.fake.call_count("ExecuteBillQuery") - queries >= 4
    from huke_k3_bridge.celery import fleet_of

    assert [start, end] in [list(r) for r in fleet_of(own_app).progress.completed("shop-c")]


def test_passing_troubles_that_last_fail_the_window_after_the_retries(
    own_app: Any, simulators: Simulators
) -> None:
    account = simulators.accounts["B"]
    start, end = _window(simulators, 3)
    queries = account.fake.call_count("ExecuteBillQuery")
    account.fake.inject(Fault.connect_error(), times=1000, path="ExecuteBillQuery")
    try:
        result = own_app.tasks["huke_k3_bridge.sync_window"].apply(args=("shop-c", start, end))
        with pytest.raises(WindowFailedError, match="still failing after 2 retries"):
            result.get(timeout=30)
    finally:
        account.fake.faults.clear()
    assert account.fake.call_count("ExecuteBillQuery") - queries == 3 * 3  # 3 runs, 3 attempts


def test_an_unknown_tenant_fails_at_once(own_app: Any, simulators: Simulators) -> None:
    result = own_app.tasks["huke_k3_bridge.sync_window"].apply(args=("shop-z", 0, 1))
    with pytest.raises(WindowFailedError, match="no tenant 'shop-z'"):
        result.get(timeout=10)


def test_a_missing_secret_fails_at_once_naming_the_variable(
    own_app: Any, simulators: Simulators, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOP_C_K3_APP_SECRET")
    result = own_app.tasks["huke_k3_bridge.sync_window"].apply(
        args=("shop-c", *_window(simulators, 1))
    )
    with pytest.raises(WindowFailedError, match="SHOP_C_K3_APP_SECRET"):
        result.get(timeout=10)


def test_an_app_without_install_has_no_fleet() -> None:
    from celery import Celery

    from huke_k3_bridge.celery import fleet_of

    with pytest.raises(FleetConfigError, match="install"):
        fleet_of(Celery("bare", set_as_current=False))


# -- huke-k3 dispatch ---------------------------------------------------------------------------


def _dispatch(*argv: str, app: Any = None) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="huke-k3")
    add_dispatch_command(parser.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    status = run_dispatch(parser.parse_args(["dispatch", *argv]), out, err, app=app)
    return status, out.getvalue(), err.getvalue()


def test_the_dispatch_command_sends_the_windows_and_waits_for_them(
    simulators: Simulators, workers: Workers, fleet_app: Any
) -> None:
    start = datetime.fromtimestamp(simulators.t0 / 1000, tz=timezone.utc)
    end = start + timedelta(hours=2) - timedelta(milliseconds=1)
    status, out, err = _dispatch(
        "--tenants",
        str(simulators.tenants_path),
        "--tenant",
        "shop-c",
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
        "--wait",
        "30",
        app=fleet_app,
    )
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == 4  # two windows sent, two results
    assert lines[2].startswith("shop-c ")
    assert ": ok (" in lines[2]


def test_the_dispatch_command_refuses_an_unknown_tenant(simulators: Simulators) -> None:
    status, out, err = _dispatch("--tenants", str(simulators.tenants_path), "--tenant", "nobody")
    assert status == 2
    assert "no tenant nobody" in err
    assert "shop-a" in err
    assert out == ""


def test_the_dispatch_command_sends_the_last_hours_with_since(
    simulators: Simulators, workers: Workers, fleet_app: Any
) -> None:
    status, out, err = _dispatch(
        "--tenants", str(simulators.tenants_path), "--tenant", "shop-c", "--since", "90m",
        "--wait", "30", app=fleet_app,
    )  # fmt: skip
    assert (status, err) == (0, "")
    sent = out.splitlines()[:2]  # 90 minutes in windows of 1 hour: two windows
    assert all(line.startswith("shop-c ") for line in sent)
    assert len(out.splitlines()) == 4


def test_a_since_last_dispatch_sends_no_completed_window_after_a_failed_one(
    client: Any, prefix: str, simulators: Simulators
) -> None:
    """Found from outside: a window that failed made every later since-last dispatch send all
    the windows after it again, completed ones included."""
    shop = load_tenants(simulators.tenants_path)["shop-a"]
    progress = WindowProgress(client, prefix=prefix)
    end = simulators.t0 + 20 * HOUR_MS
    windows, origins = plan(
        [shop], start=None, end=end, since_last=True, progress=progress, now_ms=0
    )
    progress.note_origin("shop-a", origins[0].start_ms)
    for index, window in enumerate(windows):
        if index != 3:  # the fourth failed; every other one completed
            progress.complete("shop-a", window.start_ms, window.end_ms)
    later, _ = plan([shop], start=None, end=end, since_last=True, progress=progress, now_ms=0)
    done = [w for w in windows if w is not windows[3]]
    assert later, "the failed window is planned again"
    assert not [
        w for w in later if any(d.start_ms <= w.start_ms and w.end_ms <= d.end_ms for d in done)
    ]
    assert later[0].start_ms <= windows[3].start_ms <= windows[3].end_ms <= later[-1].end_ms
    # A range given explicitly is sent whole, completed windows included (a deliberate re-run).
    again, _ = plan(
        [shop], start=windows[0].start_ms, end=end, since_last=True, progress=progress, now_ms=0
    )
    assert len(again) == len(windows)


def test_a_dispatch_plans_by_redis_s_clock_not_its_own(
    redis_url: str, simulators: Simulators, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found from outside: a dispatcher whose clock ran 2 h ahead planned windows ending in the
    future; once completed, the future counted as done and its trades were never fetched."""
    import time as time_module

    from huke_k3_bridge.celery import fleet_of

    env = {"HUKE_K3_BROKER_URL": redis_url, "HUKE_K3_TENANTS": str(simulators.tenants_path)}
    app = make_app(env)
    real = time_module.time
    monkeypatch.setattr(time_module, "time", lambda: real() + 7200)
    now_ms = fleet_of(app).now_ms()
    monkeypatch.setattr(time_module, "time", real)
    seconds, micros = redis.Redis.from_url(redis_url).time()
    assert abs(now_ms - (int(seconds) * 1000 + int(micros) // 1000)) < 5_000
