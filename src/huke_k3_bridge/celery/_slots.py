"""The fleet-wide limit of windows running at once per K/3 Cloud account: a counting semaphore in
Redis whose holders expire unless renewed.

One sorted set per account: each member is a holder (``"<task id>/<random>"``: which task holds
the slot is one ZRANGE away), its score the moment (Redis's clock, in milliseconds) it expires. Taking a slot first drops the expired holders, so a worker killed
while it held one frees it after ``ttl`` without anyone's help; a running task renews its slot
every third of ``ttl`` from a thread. Both steps are Lua scripts: atomic on the server, with no
clock of the workers involved.
"""

from __future__ import annotations

import logging
import threading
import uuid
from types import TracebackType
from typing import Any

from typing_extensions import Self

logger = logging.getLogger("huke_k3_bridge.celery")

# KEYS[1] the account's holders; ARGV: holder, limit, ttl (ms). 1 when the holder has a slot.
_TAKE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
local ttl = tonumber(ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now_ms + ttl, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 1
end
return 0
"""
# KEYS[1] the account's holders; ARGV: holder, ttl (ms). 0 when the slot was lost meanwhile.
_RENEW = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl = tonumber(ARGV[2])
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expires or tonumber(expires) <= now_ms then
  return 0
end
redis.call('ZADD', KEYS[1], now_ms + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""


class Slots:
    """``limit`` slots per K/3 account, shared by every process using the same Redis and
    ``prefix``."""

    def __init__(self, redis: Any, *, prefix: str, limit: int, ttl: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self.limit = limit
        self.ttl = ttl
        self._take = redis.register_script(_TAKE)
        self._renew = redis.register_script(_RENEW)

    def key(self, account: str) -> str:
        """The Redis key of ``account``'s holders."""
        return f"{self._prefix}:slots:{account}"

    def try_take(self, account: str, *, owner: str = "") -> Slot | None:
        """A slot of ``account``, renewed until the returned :class:`Slot` is closed, or ``None``
        when all of them are taken. ``owner`` (a task id) is written down with it, for
        :meth:`owners`."""
        holder = f"{owner}/{uuid.uuid4().hex}"
        key = self.key(account)
        if not self._take(keys=[key], args=[holder, self.limit, self._ttl_ms]):
            return None
        return Slot(self, key, holder)

    def owners(self, account: str) -> list[str]:
        """The owners (task ids) of ``account``'s slots held now, expired holders aside."""
        now_s, now_us = self._redis.time()
        held = self._redis.zrangebyscore(
            self.key(account), f"({now_s * 1000 + now_us // 1000}", "+inf"
        )
        return [(h.decode() if isinstance(h, bytes) else h).rpartition("/")[0] for h in held]

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.ttl * 1000))

    def _renew_slot(self, key: str, holder: str) -> bool:
        return bool(self._renew(keys=[key], args=[holder, self._ttl_ms]))

    def _give_back(self, key: str, holder: str) -> None:
        self._redis.zrem(key, holder)


class Slot:
    """A held slot: renewed from a thread every third of the TTL; given back on close."""

    def __init__(self, slots: Slots, key: str, holder: str) -> None:
        self._slots = slots
        self._key = key
        self._holder = holder
        self._closed = threading.Event()
        self.lost = False
        self._renewer = threading.Thread(target=self._keep, name="huke-k3-slot", daemon=True)
        self._renewer.start()

    def _keep(self) -> None:
        while not self._closed.wait(self._slots.ttl / 3):
            try:
                renewed = self._slots._renew_slot(self._key, self._holder)
            except Exception:  # Redis away for a moment: try again at the next beat
                logger.warning("could not renew the slot %s", self._key, exc_info=True)
                continue
            if not renewed and not self.lost:
                # The process stalled past the TTL: another window may now run on this account.
                self.lost = True
                logger.warning("the slot %s expired while its window was running", self._key)

    def close(self) -> None:
        """Stop renewing and give the slot back (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._renewer.join(timeout=5)
        try:
            self._slots._give_back(self._key, self._holder)
        except Exception:  # it expires by itself within the TTL
            logger.warning("could not give back the slot %s", self._key, exc_info=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
