"""The fleet's settings: one frozen object, read from the environment or given to ``install``.

Every worker and every dispatcher of one fleet must agree on them (the Redis that holds the slots
and the progress, the slots per K/3 account), so they come from the same environment variables
on every machine, and a bad value stops the process at start with the variable's name.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import attrs

from ._errors import FleetConfigError

#: Where the broker is when ``HUKE_K3_BROKER_URL`` does not say: a Redis on this machine.
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
#: Seconds Redis waits before it hands an unacknowledged task to another worker (kombu's own
#: default). Longer than any window takes: a task still running then would be run twice at once.
DEFAULT_VISIBILITY_TIMEOUT = 3600.0


@attrs.frozen(kw_only=True)
class FleetSettings:
    """How the fleet's workers and dispatchers share the work.

    Attributes:
        tenants_path: the tenants file (``HUKE_K3_TENANTS``); the task resolves its tenant's
            name there.
        redis_url: the Redis holding the per-account slots and the per-tenant progress
            (``HUKE_K3_REDIS_URL``; default: the broker's URL when it is Redis, else the result
            backend's).
        k3_slots: windows running at once per K/3 account, across the whole fleet
            (``HUKE_K3_SLOTS``, default 1).
        slot_ttl: seconds a slot lives without being renewed (``HUKE_K3_SLOT_TTL``, default 60);
            a running task renews it every third of that, so a killed worker's slot frees
            itself within this long.
        slot_wait: seconds a task that found no free slot waits before it tries again
            (``HUKE_K3_SLOT_WAIT``, default 5; jittered). Not counted as a failure.
        max_retries: retries of a window after transient errors (``HUKE_K3_MAX_RETRIES``,
            default 5); then the task fails.
        retry_backoff: seconds before the first retry, doubled each time
            (``HUKE_K3_RETRY_BACKOFF``, default 10) ...
        retry_backoff_max: ... up to this many (``HUKE_K3_RETRY_BACKOFF_MAX``, default 600).
        key_prefix: the prefix of the fleet's Redis keys (``HUKE_K3_KEY_PREFIX``, "huke_k3").
    """

    tenants_path: str | None = None
    redis_url: str | None = None
    k3_slots: int = 1
    slot_ttl: float = 60.0
    slot_wait: float = 5.0
    max_retries: int = 5
    retry_backoff: float = 10.0
    retry_backoff_max: float = 600.0
    key_prefix: str = "huke_k3"

    def __attrs_post_init__(self) -> None:
        _check_int("k3_slots", self.k3_slots, 1)
        _check_int("max_retries", self.max_retries, 0)
        for name in ("slot_ttl", "slot_wait", "retry_backoff", "retry_backoff_max"):
            _check_seconds(name, getattr(self, name))
        if self.slot_ttl < 0.3:
            raise FleetConfigError(f"slot_ttl must be at least 0.3 seconds, got {self.slot_ttl!r}")
        if not self.key_prefix:
            raise FleetConfigError("key_prefix must not be empty")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FleetSettings:
        """The settings the ``HUKE_K3_*`` variables give (unset ones keep their defaults)."""
        env = os.environ if environ is None else environ
        given: dict[str, object] = {}
        for name, (variable, parse) in _VARIABLES.items():
            text = env.get(variable, "").strip()
            if text:
                given[name] = parse(variable, text)
        return cls(**given)  # type: ignore[arg-type]


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FleetConfigError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise FleetConfigError(f"{name} must be finite seconds >= 0, got {value!r}")


def env_seconds(variable: str, text: str) -> float:
    """A variable's value as finite seconds >= 0; the error names the variable."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:
        raise FleetConfigError(f"{variable}={text!r}: expected seconds, a number >= 0")
    return value


def _env_count(variable: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FleetConfigError(f"{variable}={text!r}: expected a whole number") from None


def _env_text(variable: str, text: str) -> str:
    return text


_VARIABLES = {
    "tenants_path": ("HUKE_K3_TENANTS", _env_text),
    "redis_url": ("HUKE_K3_REDIS_URL", _env_text),
    "k3_slots": ("HUKE_K3_SLOTS", _env_count),
    "slot_ttl": ("HUKE_K3_SLOT_TTL", env_seconds),
    "slot_wait": ("HUKE_K3_SLOT_WAIT", env_seconds),
    "max_retries": ("HUKE_K3_MAX_RETRIES", _env_count),
    "retry_backoff": ("HUKE_K3_RETRY_BACKOFF", env_seconds),
    "retry_backoff_max": ("HUKE_K3_RETRY_BACKOFF_MAX", env_seconds),
    "key_prefix": ("HUKE_K3_KEY_PREFIX", _env_text),
}
