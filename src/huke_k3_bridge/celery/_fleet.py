"""One Celery app's fleet: its settings, and what they open when first used (the Redis of the
slots and the progress, the tenants file).

Nothing connects when the app is made: a worker forks its pool first, and each process opens
its own connection at its first task.
"""

from __future__ import annotations

import functools
import os
import weakref
from typing import Any

from _huke_k3_core._env import shown_url
from huke_k3_bridge.tenants import Tenant, Tenants, load_tenants

from ._errors import FleetConfigError
from ._progress import WindowProgress
from ._settings import FleetSettings
from ._slots import Slots

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def is_redis(url: str | None) -> bool:
    """Whether ``url`` names a Redis (a broker or result backend URL)."""
    return url is not None and url.startswith(_REDIS_SCHEMES)


class Fleet:
    """What the tasks and the dispatcher of one app share."""

    def __init__(self, settings: FleetSettings, *, redis_url: str | None) -> None:
        self.settings = settings
        self.redis_url = settings.redis_url or redis_url
        self._tenants: tuple[tuple[str, int, int], Tenants] | None = None

    def __repr__(self) -> str:
        url = None if self.redis_url is None else shown_url(self.redis_url)
        return f"Fleet(redis={url!r}, tenants={self.settings.tenants_path!r})"

    @functools.cached_property
    def redis(self) -> Any:  # redis.Redis: its commands are typed too loosely to be of help
        url = self.redis_url
        if url is None or not is_redis(url):
            raise FleetConfigError(
                "the fleet keeps its slots and progress in Redis: set HUKE_K3_REDIS_URL (or "
                "use a redis:// broker or result backend)"
            )
        import redis

        return redis.Redis.from_url(url)

    @functools.cached_property
    def slots(self) -> Slots:
        settings = self.settings
        return Slots(
            self.redis, prefix=settings.key_prefix, limit=settings.k3_slots, ttl=settings.slot_ttl
        )

    @functools.cached_property
    def progress(self) -> WindowProgress:
        return WindowProgress(self.redis, prefix=self.settings.key_prefix)

    def tenants(self) -> Tenants:
        """The tenants file, read again when it changed (a worker needs no restart for a new
        tenant)."""
        path = self.settings.tenants_path
        if not path:
            raise FleetConfigError(
                "no tenants file: set HUKE_K3_TENANTS (or install(app, tenants_path=...))"
            )
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise FleetConfigError(f"the tenants file {path}: {exc.strerror}") from None
        stamp = (path, stat.st_mtime_ns, stat.st_size)
        if self._tenants is None or self._tenants[0] != stamp:
            self._tenants = (stamp, load_tenants(path))
        return self._tenants[1]

    def tenant(self, name: str) -> Tenant:
        """The tenant named ``name`` in the tenants file."""
        tenants = self.tenants()
        try:
            return tenants[name]
        except KeyError:
            known = ", ".join(tenants) or "none"
            raise FleetConfigError(
                f"{tenants.path}: no tenant {name!r} (tenants: {known})"
            ) from None

    def count_failure(self, task_id: str) -> int:
        """One more transient failure of the task ``task_id``: how many it has had. Counted
        apart from Celery's retries, which also count the waits for a slot."""
        key = f"{self.settings.key_prefix}:failures:{task_id}"
        count = int(self.redis.incr(key))
        self.redis.expire(key, 7 * 86400)
        return count

    def forget_failures(self, task_id: str) -> None:
        self.redis.delete(f"{self.settings.key_prefix}:failures:{task_id}")

    def now_ms(self) -> int:
        """Redis's clock, in epoch ms: the one clock every dispatcher and worker shares (a
        dispatcher's own clock running ahead would plan windows that end in the future)."""
        seconds, micros = self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000


_FLEETS: weakref.WeakKeyDictionary[Any, Fleet] = weakref.WeakKeyDictionary()


def attach(app: Any, fleet: Fleet) -> None:
    _FLEETS[app] = fleet


def fleet_of(app: Any) -> Fleet:
    """The fleet ``install`` gave ``app``."""
    try:
        return _FLEETS[app]
    except KeyError:
        raise FleetConfigError(
            f"{app!r} has no fleet: call huke_k3_bridge.celery.install(app) first"
        ) from None
