"""The Celery app configured from the environment, and ``install`` for an app of one's own."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs
from celery import Celery  # type: ignore[import-untyped]

from ._fleet import Fleet, attach, is_redis
from ._settings import DEFAULT_BROKER_URL, DEFAULT_VISIBILITY_TIMEOUT, FleetSettings, env_seconds
from ._tasks import TASK_OPTIONS, sync_window


def configuration(visibility_timeout: float) -> dict[str, Any]:
    """The app settings the fleet relies on.

    - JSON only, so a message carries data, never code;
    - the task is acknowledged after it ran; with ``acks_late`` each worker process takes one
      message at a time (a prefetched message would wait unacknowledged and, past the
      visibility timeout, be delivered to a second worker while the first still holds it);
    - Redis hands a message a dead worker took to another one after ``visibility_timeout``, and
      looks for such messages every tenth of it (at most every 10 s);
    - results keep the task's name, arguments and retries (``result_extended``).
    """
    restore_every = max(1.0, min(10.0, visibility_timeout / 10))
    return {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "result_extended": True,
        "task_track_started": True,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": visibility_timeout,
            "unacked_restore_interval": restore_every,
            "unacked_restore_throttle": 1,
        },
    }


def install(
    app: Any,
    *,
    tenants_path: str | os.PathLike[str] | None = None,
    settings: FleetSettings | None = None,
    **overrides: Any,
) -> Any:
    """Register the fleet's task on ``app`` (a ``celery.Celery``) and give it its settings.

    ``settings`` defaults to :meth:`FleetSettings.from_env`; ``tenants_path`` and the
    ``overrides`` (``k3_slots=2``, ``redis_url=...``; :class:`FleetSettings`' fields) change
    them. The slots and the progress live in ``redis_url``, else in the app's broker or result
    backend when that is Redis. Returns the registered ``huke_k3_bridge.sync_window`` task.

    The task sets ``acks_late`` and ``reject_on_worker_lost`` itself; the broker's
    ``visibility_timeout`` and the prefetch are the app's (see :func:`configuration`).
    """
    chosen = settings if settings is not None else FleetSettings.from_env()
    if tenants_path is not None:
        overrides["tenants_path"] = os.fspath(tenants_path)
    if overrides:
        chosen = attrs.evolve(chosen, **overrides)
    conf = app.conf
    broker, backend = conf.broker_url, conf.result_backend
    fallback = broker if is_redis(broker) else backend if is_redis(backend) else None
    attach(app, Fleet(chosen, redis_url=fallback))
    return app.task(**TASK_OPTIONS)(sync_window)


def make_app(environ: Mapping[str, str] | None = None) -> Any:
    """A Celery app from ``HUKE_K3_*`` variables, with the fleet installed.

    ``HUKE_K3_BROKER_URL`` (default ``redis://127.0.0.1:6379/0``; ``amqp://...`` works too),
    ``HUKE_K3_RESULT_BACKEND`` (default: the broker when it is Redis, else none),
    ``HUKE_K3_VISIBILITY_TIMEOUT`` (seconds, default 3600), and :class:`FleetSettings`'.
    """
    env = os.environ if environ is None else environ
    broker = env.get("HUKE_K3_BROKER_URL", "").strip() or DEFAULT_BROKER_URL
    backend = env.get("HUKE_K3_RESULT_BACKEND", "").strip() or (
        broker if is_redis(broker) else None
    )
    text = env.get("HUKE_K3_VISIBILITY_TIMEOUT", "").strip()
    visibility = (
        env_seconds("HUKE_K3_VISIBILITY_TIMEOUT", text) if text else DEFAULT_VISIBILITY_TIMEOUT
    )
    settings = FleetSettings.from_env(env)
    # A retry waits in a worker unacknowledged: past the visibility timeout it would be
    # delivered twice. Backoff and slot waits stay well under it.
    ceiling = visibility / 2
    if settings.retry_backoff_max > ceiling or settings.slot_wait > ceiling:
        settings = attrs.evolve(
            settings,
            retry_backoff_max=min(settings.retry_backoff_max, ceiling),
            slot_wait=min(settings.slot_wait, ceiling),
        )
    app = Celery("huke_k3_bridge", broker=broker, backend=backend, set_as_current=False)
    app.conf.update(configuration(visibility))
    install(app, settings=settings)
    return app
