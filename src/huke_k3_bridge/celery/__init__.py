"""The bridge on a task queue: many tenants, many machines (``pip install "huke-k3-bridge[celery]"``).

``app`` is a Celery app configured from the environment (``HUKE_K3_BROKER_URL``,
``HUKE_K3_RESULT_BACKEND``, ``HUKE_K3_TENANTS``, ``HUKE_K3_VISIBILITY_TIMEOUT`` and the
:class:`FleetSettings` variables), so a worker is ``celery -A huke_k3_bridge.celery worker`` and a
dispatch is ``huke-k3 dispatch --tenants tenants.toml`` (or :func:`dispatch`). ``install`` puts
the same task on an app of your own.

The task ``huke_k3_bridge.sync_window(tenant, start_ms, end_ms)`` syncs one tenant's window and
returns its report's summary; at most ``k3_slots`` windows run at once per K/3 Cloud account
across the fleet (a slot in Redis, freed by itself when its worker dies); each tenant's completed
windows are kept in Redis, so a dispatch continues after the last one.

Inside: ``_settings`` (the settings and their variables), ``_app`` (the app, ``install``),
``_fleet`` (what an app's tasks share), ``_tasks`` (the task), ``_verdict`` (a report: done,
retry or fail), ``_slots`` (the per-account semaphore), ``_progress`` (completed windows),
``_dispatch`` (planning and sending the windows), ``_errors``.
"""

from ._app import configuration, install, make_app
from ._dispatch import Dispatched, PlannedWindow, dispatch
from ._errors import FleetConfigError, WindowFailedError
from ._fleet import Fleet, fleet_of
from ._settings import FleetSettings
from ._tasks import TASK_NAME
from ._verdict import Verdict

#: The app the ``HUKE_K3_*`` variables configure: ``celery -A huke_k3_bridge.celery worker``.
app = make_app()
#: Its ``huke_k3_bridge.sync_window`` task.
sync_window = app.tasks[TASK_NAME]

__all__ = [
    "TASK_NAME",
    "Dispatched",
    "Fleet",
    "FleetConfigError",
    "FleetSettings",
    "PlannedWindow",
    "Verdict",
    "WindowFailedError",
    "app",
    "configuration",
    "dispatch",
    "fleet_of",
    "install",
    "make_app",
    "sync_window",
]
