"""The task: sync one tenant's window, holding a slot of its K/3 account.

Idempotent by the bridge's design (the ledger looks every customer number up before it saves,
and settles a lost reply by looking again), so a task redelivered after its worker died, or
retried after a passing trouble, creates nothing twice.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from _huke_k3_core import plural, shorten
from huke_k3_bridge._engine import sync_customers
from huke_k3_bridge._errors import BridgeError
from huke_k3_bridge._report import SyncReport
from huke_k3_bridge._windows import ms_to_datetime
from huke_k3_bridge.tenants import Tenant

from ._errors import WindowFailedError
from ._fleet import Fleet, fleet_of
from ._verdict import Verdict, judge

logger = logging.getLogger("huke_k3_bridge.celery")

#: The task's name, the same on every app it is installed on.
TASK_NAME = "huke_k3_bridge.sync_window"
#: Options of the task: acknowledged after it ran (a worker that dies mid-window leaves the
#: message to be delivered again), and given back to the queue when its pool process is lost.
TASK_OPTIONS: dict[str, Any] = {
    "name": TASK_NAME,
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    # Retries are counted here (waits for a slot are not failures): Celery's own count is off.
    "max_retries": None,
    "shared": False,
}


def _window(tenant: str, start_ms: int, end_ms: int) -> str:
    start = ms_to_datetime(start_ms).isoformat(timespec="seconds")
    end = ms_to_datetime(end_ms).isoformat(timespec="seconds")
    return f"tenant {tenant!r} window {start} .. {end}"


def _jitter(seconds: float) -> float:
    """``seconds`` spread over its upper half, so waiting tasks do not all come back at once."""
    return seconds * (0.5 + random.random() / 2)


def _run(tenant: Tenant, start_ms: int, end_ms: int) -> tuple[SyncReport, frozenset[str]]:
    """The window's sync with the tenant's clients: its report, and the Huke codes its client
    retries (they mean "try again later")."""
    options = tenant.sync_options(start=start_ms, end=end_ms, progress=False)
    with tenant.huke_client() as huke, tenant.k3_client() as k3:
        retry_codes = frozenset(str(code) for code in huke.retry_codes)
        return sync_customers(huke, k3, options=options), retry_codes


def summary_of(
    tenant: str, start_ms: int, end_ms: int, report: SyncReport, verdict: Verdict
) -> dict[str, Any]:
    """The task's result: the report's summary (JSON-able, no outcomes, no secrets)."""
    return {
        "tenant": tenant,
        "start_ms": start_ms,
        "end_ms": end_ms,
        "verdict": verdict.value,
        **report.summary(),
    }


def _failed(what: str, report: SyncReport, why: str) -> WindowFailedError:
    errors = "; ".join(report.errors) or f"{plural(len(report.failures), 'trade')} failed"
    return WindowFailedError(f"{what}: {why}: {shorten(errors, 2000)}")


def _ended(fleet: Fleet, task: Any, tenant: str, start_ms: int, end_ms: int) -> None:
    """The window's task is over (done, or failed for good)."""
    fleet.forget_failures(task.request.id)


def sync_window(task: Any, tenant: str, start_ms: int, end_ms: int) -> dict[str, Any]:
    """Sync ``tenant``'s trades of ``[start_ms, end_ms]`` (epoch milliseconds, inclusive) into
    its K/3 Cloud; the report's summary (``ok``, counts, errors) is the result.

    Waits (a retry with a countdown, not a failure) while its K/3 account has no free slot.
    Retried with capped exponential backoff after passing troubles (the network, timeouts,
    5xx, rate limits, saves left uncertain), at most ``max_retries`` times; fails at once
    (:class:`WindowFailedError`) for configuration or credential errors and errors repeating
    cannot help. A window where only rows failed (K/3 Cloud refused them) returns its summary
    with ``ok`` false, and is not marked completed.
    """
    fleet: Fleet = fleet_of(task.app)
    what = _window(tenant, start_ms, end_ms)
    try:
        chosen = fleet.tenant(tenant)
        slot = fleet.slots.try_take(chosen.k3_account, owner=task.request.id)
        if slot is None:
            raise task.retry(countdown=_jitter(fleet.settings.slot_wait))
        with slot:
            report, retry_codes = _run(chosen, int(start_ms), int(end_ms))
    except (BridgeError, ValueError) as exc:  # a tenant, a setting, a client's configuration
        if isinstance(exc, WindowFailedError):
            raise
        raise WindowFailedError(f"{what}: {type(exc).__name__}: {exc}") from None
    verdict = judge(report, huke_retry_codes=retry_codes)
    logger.info("%s: %s (%r)", what, verdict.value, report)
    if verdict is Verdict.COMPLETED:
        fleet.progress.complete(tenant, start_ms, end_ms)
    if verdict in (Verdict.COMPLETED, Verdict.ROWS_FAILED):
        _ended(fleet, task, tenant, start_ms, end_ms)
        return summary_of(tenant, start_ms, end_ms, report, verdict)
    if verdict is Verdict.FATAL:
        _ended(fleet, task, tenant, start_ms, end_ms)
        raise _failed(what, report, "not retried (repeating cannot help)")
    settings = fleet.settings
    failures = fleet.count_failure(task.request.id)
    if failures > settings.max_retries:
        _ended(fleet, task, tenant, start_ms, end_ms)
        raise _failed(
            what, report, f"still failing after {plural(settings.max_retries, 'retry', 'retries')}"
        )
    backoff = min(settings.retry_backoff_max, settings.retry_backoff * 2 ** (failures - 1))
    logger.warning("%s: retry %d in about %.0fs: %s", what, failures, backoff, report.errors)
    raise task.retry(countdown=_jitter(backoff))
