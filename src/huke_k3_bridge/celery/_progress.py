"""Per-tenant progress in Redis: which windows completed, and so where the next dispatch starts.

Windows complete in any order, on any worker, so progress is not one watermark written by one
process but a set of completed ranges, merged as they arrive (a Lua script: atomic on the
server, so two windows finishing at once both count). The dispatcher's "since the last completed
window" is the end of the merged range that holds the tenant's *origin* (where its first
scheduled dispatch began; explicit ranges do not move it): a window that failed leaves a gap, and the next dispatch starts
there, as a state file's watermark stays before a window that failed.
"""

from __future__ import annotations

from typing import Any

# KEYS[1] the tenant's completed ranges (member "start:end", score start); ARGV: start, end.
# Adds the range, then rewrites the set with overlapping or adjacent ranges merged.
_COMPLETE = """
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]), ARGV[1] .. ':' .. ARGV[2])
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local ranges = {}
for _, member in ipairs(members) do
  local colon = string.find(member, ':', 1, true)
  table.insert(ranges, {tonumber(string.sub(member, 1, colon - 1)),
                        tonumber(string.sub(member, colon + 1))})
end
table.sort(ranges, function(a, b) return a[1] < b[1] end)
local merged = {}
for _, r in ipairs(ranges) do
  local last = merged[#merged]
  if last and r[1] <= last[2] + 1 then
    if r[2] > last[2] then last[2] = r[2] end
  else
    table.insert(merged, {r[1], r[2]})
  end
end
redis.call('DEL', KEYS[1])
for _, r in ipairs(merged) do
  redis.call('ZADD', KEYS[1], r[1], string.format('%d:%d', r[1], r[2]))
end
return #merged
"""


class WindowProgress:
    """The completed windows of every tenant, in the Redis the fleet shares."""

    def __init__(self, redis: Any, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._complete = redis.register_script(_COMPLETE)

    def _key(self, tenant: str, kind: str) -> str:
        return f"{self._prefix}:progress:{tenant}:{kind}"

    def complete(self, tenant: str, start_ms: int, end_ms: int) -> None:
        """Record ``[start_ms, end_ms]`` of ``tenant`` as completed."""
        self._complete(keys=[self._key(tenant, "done")], args=[int(start_ms), int(end_ms)])

    def completed(self, tenant: str) -> list[tuple[int, int]]:
        """``tenant``'s completed ranges, merged, in time order."""
        members = self._redis.zrange(self._key(tenant, "done"), 0, -1)
        ranges = []
        for member in members:
            start, _, end = (member.decode() if isinstance(member, bytes) else member).partition(
                ":"
            )
            ranges.append((int(start), int(end)))
        return sorted(ranges)

    def note_origin(self, tenant: str, start_ms: int) -> None:
        """Where ``tenant``'s scheduled dispatches began; only the first call counts."""
        self._redis.set(self._key(tenant, "origin"), int(start_ms), nx=True)

    def origin(self, tenant: str) -> int | None:
        value = self._redis.get(self._key(tenant, "origin"))
        return None if value is None else int(value)

    def resume_from(self, tenant: str) -> int | None:
        """The first millisecond since ``tenant``'s origin not covered by completed windows
        (the origin itself while its first window has not completed); ``None`` before its first
        scheduled dispatch."""
        origin = self.origin(tenant)
        if origin is None:
            return None
        for start, end in self.completed(tenant):
            if start <= origin <= end:
                return end + 1
        return origin

    def forget(self, tenant: str) -> None:
        """Drop ``tenant``'s progress (its next scheduled dispatch starts afresh)."""
        self._redis.delete(self._key(tenant, "done"), self._key(tenant, "origin"))
