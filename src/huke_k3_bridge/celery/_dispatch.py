"""The dispatcher: (tenant x window) tasks for a range, or since each tenant's last completed
window."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from huke_client import to_epoch_ms
from huke_k3_bridge._windows import DEFAULT_SPAN, ONE_MS, ms_to_datetime, split_windows
from huke_k3_bridge.tenants import Tenant

from ._fleet import fleet_of
from ._progress import WindowProgress
from ._tasks import TASK_NAME


@attrs.frozen
class PlannedWindow:
    """One window of one tenant: ``[start_ms, end_ms]``, epoch milliseconds, inclusive."""

    tenant: str
    start_ms: int
    end_ms: int

    @property
    def start(self) -> datetime:
        return ms_to_datetime(self.start_ms)

    @property
    def end(self) -> datetime:
        return ms_to_datetime(self.end_ms)


@attrs.frozen
class Dispatched(PlannedWindow):
    """A window sent to the workers; ``result`` is its ``celery.result.AsyncResult`` (its
    ``get()`` is the report's summary)."""

    result: Any = attrs.field(default=None, repr=False, eq=False)

    @property
    def task_id(self) -> str:
        return str(self.result.id)


def _start_of(
    tenant: Tenant, end_ms: int, since_last: bool, progress: WindowProgress
) -> tuple[int, bool]:
    """Where ``tenant``'s since-last range starts, and whether that is its first (its origin)."""
    resume = progress.resume_from(tenant.name) if since_last else None
    if resume is None:
        return end_ms - DEFAULT_SPAN // ONE_MS, since_last
    origin = progress.origin(tenant.name)
    # Windows overlap as the CLI's runs do: a trade stamped late still lands in the next one.
    back = resume - tenant.overlap // ONE_MS
    return max(back, origin) if origin is not None else back, False


def _covered(start_ms: int, end_ms: int, done: list[tuple[int, int]]) -> bool:
    return any(a <= start_ms and end_ms <= b for a, b in done)


def plan(
    tenants: Iterable[Tenant],
    *,
    start: datetime | int | None,
    end: datetime | int | None,
    since_last: bool,
    progress: WindowProgress,
    now_ms: int,
) -> tuple[list[PlannedWindow], list[PlannedWindow]]:
    """The windows to run, and the first window of each tenant whose origin they set."""
    windows: list[PlannedWindow] = []
    origins: list[PlannedWindow] = []
    end_ms = to_epoch_ms(end, "end") if end is not None else now_ms
    start_ms = to_epoch_ms(start, "start") if start is not None else None
    if start_ms is not None and start_ms > end_ms:
        raise ValueError(
            f"start {ms_to_datetime(start_ms).isoformat()} is after end "
            f"{ms_to_datetime(end_ms).isoformat()}"
        )
    for tenant in tenants:
        if start_ms is None:
            first, is_origin = _start_of(tenant, end_ms, since_last, progress)
        else:
            first, is_origin = start_ms, False
        if first > end_ms:
            continue  # nothing new since its last completed window
        mine = [
            PlannedWindow(tenant.name, a, b) for a, b in split_windows(first, end_ms, tenant.window)
        ]
        if is_origin:
            origins.append(mine[0])
        if start_ms is None and since_last:
            # After a window that failed, a since-last range starts there again: the windows
            # after it that did complete are not sent again. (A range given is sent whole.)
            done = progress.completed(tenant.name)
            mine = [w for w in mine if not _covered(w.start_ms, w.end_ms, done)]
        windows.extend(mine)
    return windows, origins


def dispatch(
    tenants: Iterable[str | Tenant] | None = None,
    *,
    start: datetime | int | None = None,
    end: datetime | int | None = None,
    since_last: bool = True,
    app: Any = None,
    queue: str | None = None,
) -> list[Dispatched]:
    """Send a ``huke_k3_bridge.sync_window`` task per (tenant x window); the tasks sent.

    Args:
        tenants: names (looked up in the app's tenants file) or :class:`Tenant` objects;
            default: every tenant of the app's tenants file.
        start: range start (``datetime``, naive = local time, or epoch ms). Default: each
            tenant's first millisecond after its last completed window (since the first
            scheduled dispatch, minus the tenant's ``overlap``), or ``end`` - 20 h the first
            time (that start is the tenant's origin) or with ``since_last=False``.
        end: range end, inclusive. Default: now.
        since_last: with no ``start``, continue after each tenant's last completed window.
        app: the Celery app (default: ``huke_k3_bridge.celery.app``).
        queue: the queue to send the tasks to (default: the app's default queue).

    Each tenant's range is cut into windows of its ``window``; a window completes only when
    every trade ended well, so a failed window is planned again by the next since-last dispatch.
    """
    if app is None:
        from . import app as default_app

        app = default_app
    fleet = fleet_of(app)
    chosen = [
        fleet.tenant(item) if isinstance(item, str) else item
        for item in (fleet.tenants().values() if tenants is None else tenants)
    ]
    windows, origins = plan(
        chosen,
        start=start,
        end=end,
        since_last=since_last,
        progress=fleet.progress,
        now_ms=fleet.now_ms(),
    )
    for first in origins:
        fleet.progress.note_origin(first.tenant, first.start_ms)
    options = {} if queue is None else {"queue": queue}
    return [
        Dispatched(
            window.tenant,
            window.start_ms,
            window.end_ms,
            app.send_task(
                TASK_NAME, args=(window.tenant, window.start_ms, window.end_ms), **options
            ),
        )
        for window in windows
    ]
