"""Back-pressure: how many K/3 Cloud calls the engines make at once, and what a rate limit does.

K/3 Cloud turns a call away with MsgCode 14 (or a gateway with HTTP 429) when it is busy. Such a
call was not carried out, so it is always safe to send again; the client retries it a few times
itself, and what is still rate-limited after that is retried here, a bounded number of times
with full-jitter backoff (``call_with_backoff``, ``acall_with_backoff``).

The async engine also adapts how many calls it has in flight (``AdaptiveLimiter``): the
configured concurrency is a ceiling, the limit actually used grows while the server keeps up
(additive increase) and halves when it says it does not (multiplicative decrease): a rate limit,
or replies getting much slower than the fastest seen (calls queueing at the server). So any
configured concurrency ends without rate-limit failures, and close to the server's capacity.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from k3cloud_client import (
    BatchSaveResult,
    FailedRow,
    K3CloudAPIError,
    K3CloudHTTPError,
    RetryPolicy,
    SavedRow,
)

from ._operations import ExistenceQuery, Operation, SaveBatch

if TYPE_CHECKING:
    import anyio

logger = logging.getLogger("huke_k3_bridge")

#: K/3 Cloud's MsgCode for "call-rate limit exceeded".
RATE_LIMIT_CODE = 14
#: Where the limit starts (or the ceiling, when lower): a few, not the ceiling. A call turned away
#: waits out the client's own backoff (0.5 s and more by default) holding its place, so a first
#: burst above what the server takes is dear: starting at 8 against a server taking 4 cost 15-20 %
#: of the throughput in benchmark 6. From 4 the step doubles per window while the server keeps up
#: (64 is reached within a dozen round trips), and benchmark 3 (concurrency 8, no limit at the
#: server) ran no slower than starting at 8.
INITIAL_LIMIT = 4


@attrs.frozen
class RateLimitRetry:
    """How the engines retry a call that is still rate-limited after the client's own retries.

    ``policy`` gives the delays (full jitter; a ``Retry-After`` is the floor) and the count
    (``policy.max_retries`` sends after the first); no send starts later than ``max_elapsed``
    seconds after the first one. A call that stays rate-limited is reported as it failed.
    """

    policy: RetryPolicy = attrs.field(
        factory=lambda: RetryPolicy(max_retries=10, initial_delay=0.1, max_delay=10.0)
    )
    max_elapsed: float = attrs.field(default=120.0, validator=attrs.validators.ge(0))


#: What the engines use (read at each call, so a test or benchmark may swap it).
ENGINE_RETRY = RateLimitRetry()


# -- recognising a rate limit -------------------------------------------------------------------


def _limited_error(result: Any) -> bool:
    if isinstance(result, K3CloudAPIError):
        return result.msg_code == RATE_LIMIT_CODE
    return isinstance(result, K3CloudHTTPError) and result.status_code == 429


def _limited_rows(result: BatchSaveResult) -> list[FailedRow]:
    # A row the server turned away with the call (MsgCode 14, surely not carried out).
    return [r for r in result.failed if r.msg_code == RATE_LIMIT_CODE and not r.uncertain]


def is_rate_limited(result: Any) -> bool:
    """Whether an engine call's result (a value or the exception it ended with) says the server
    turned the call, or some of its rows, away for its rate limit."""
    if isinstance(result, BatchSaveResult):
        return bool(_limited_rows(result))
    return _limited_error(result)


def _retry_after(result: Any) -> float | None:
    return result.retry_after if isinstance(result, K3CloudHTTPError) else None


def _resend(op: Operation, result: Any) -> tuple[Operation, Callable[[Any], Any]] | None:
    """What of ``op`` to send again after ``result``, and how to fold that call's result into
    this one; None when nothing was turned away for the rate limit."""
    if _limited_error(result):
        return op, lambda again: again
    if not isinstance(result, BatchSaveResult) or not isinstance(op, SaveBatch):
        return None
    turned_away = sorted({r.index for r in _limited_rows(result)})
    turned_away = [i for i in turned_away if 0 <= i < len(op.positions)]
    if not turned_away:
        return None
    if len(turned_away) == len(op.positions) and not result.saved:
        return op, lambda again: again
    part = attrs.evolve(
        op,
        positions=tuple(op.positions[i] for i in turned_away),
        customers=tuple(op.customers[i] for i in turned_away),
    )
    return part, lambda again: _fold(result, turned_away, again)


def _fold(result: BatchSaveResult, sent: list[int], again: Any) -> BatchSaveResult:
    """``result`` with the rows at ``sent`` replaced by their outcome in ``again``, the result of
    sending just those rows (indexes in ``again`` count from 0 within ``sent``)."""
    resent = set(sent)
    saved = [row for row in result.saved if row.index not in resent]
    failed = [row for row in result.failed if row.index not in resent]
    responses = list(result.responses)
    if isinstance(again, BaseException):
        # As the ledger reads an exception: the rows may be saved if the call may have got there.
        uncertain = bool(getattr(again, "reached_server", False))
        msg_code = again.msg_code if isinstance(again, K3CloudAPIError) else None
        failed += [
            FailedRow(i, None, str(again), msg_code, uncertain=uncertain, number=_number(result, i))
            for i in sent
        ]
    else:
        outcome: BatchSaveResult = again
        saved += [
            attrs.evolve(row, index=sent[row.index])
            for row in outcome.saved
            if 0 <= row.index < len(sent)
        ]
        failed += [
            attrs.evolve(row, index=sent[row.index])
            for row in outcome.failed
            if 0 <= row.index < len(sent)
        ]
        responses += outcome.responses
    return BatchSaveResult(
        saved=sorted(saved, key=_index), failed=sorted(failed, key=_index), responses=responses
    )


def _index(row: SavedRow | FailedRow) -> int:
    return row.index


def _number(result: BatchSaveResult, index: int) -> str | None:
    return next((row.number for row in result.failed if row.index == index), None)


class _Retrying:
    """The retry decisions for one engine call, no I/O: what to send next, after how long."""

    def __init__(
        self,
        op: Operation,
        retry: RateLimitRetry,
        clock: Callable[[], float],
        rand: Callable[[], float],
    ) -> None:
        self.op = op
        self.result: Any = None
        self._retry = retry
        self._clock = clock
        self._rand = rand
        self._started = clock()
        self._retries = 0
        self._fold: Callable[[Any], Any] = lambda result: result

    def settle(self, result: Any) -> float | None:
        """Take the result of sending ``self.op``; the seconds to wait before sending the (new)
        ``self.op``, or None when done (``self.result`` is then the whole call's result)."""
        fold = self._fold
        self.result = fold(result)
        again = _resend(self.op, result)
        if again is None or self._retries >= self._retry.policy.max_retries:
            return None
        delay = self._retry.policy.delay(self._retries, _retry_after(result), rand=self._rand)
        if self._clock() - self._started + delay > self._retry.max_elapsed:
            return None
        self.op, merge = again
        self._fold = lambda later: fold(merge(later))
        self._retries += 1
        return delay


def call_with_backoff(
    op: Operation,
    execute: Callable[[Operation], Any],
    *,
    retry: RateLimitRetry | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
) -> Any:
    """``execute(op)``, sent again (the turned-away rows of a BatchSave only) while the server
    rate-limits it, as ``retry`` (default ``ENGINE_RETRY``) allows. ``execute`` returns the
    call's exception rather than raising it, as the engine's ``_execute`` does."""
    retrying = _Retrying(op, retry or ENGINE_RETRY, clock, rand)
    while True:
        delay = retrying.settle(execute(retrying.op))
        if delay is None:
            return retrying.result
        sleep(delay)


async def _anyio_sleep(seconds: float) -> None:
    import anyio  # loaded by the async engine only

    await anyio.sleep(seconds)


def _median(values: Sequence[float]) -> float:
    """The median (``statistics`` costs more to import than this costs to run)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


async def acall_with_backoff(
    op: Operation,
    execute: Callable[[Operation], Awaitable[Any]],
    limiter: AdaptiveLimiter,
    *,
    retry: RateLimitRetry | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
) -> Any:
    """:func:`call_with_backoff` for the async engine, each send within ``limiter`` (which
    learns from its outcome). The wait between sends holds no slot; an operation that is no K/3
    Cloud call (the ledger's pauses) takes none either."""
    if not isinstance(op, ExistenceQuery | SaveBatch):
        return await execute(op)
    retrying = _Retrying(op, retry or ENGINE_RETRY, clock, rand)
    key = type(op).__name__
    while True:
        async with limiter.slot(key) as slot:
            result = await execute(retrying.op)
            if is_rate_limited(result):
                slot.rate_limited = True
            elif isinstance(result, BaseException):
                slot.failed = True
        delay = retrying.settle(result)
        if delay is None:
            return retrying.result
        await (sleep or _anyio_sleep)(delay)


# -- the adaptive limit ---------------------------------------------------------------------------


class Slot:
    """One call's place in an ``AdaptiveLimiter``; set ``rate_limited`` or ``failed`` before
    leaving it when the call was turned away or failed otherwise (failures teach nothing about
    latency: a refusal is fast, a timeout is the timeout)."""

    __slots__ = (
        "borrower",
        "epoch",
        "failed",
        "full",
        "generation",
        "key",
        "rate_limited",
        "released",
        "started",
    )

    def __init__(
        self, key: Hashable, started: float, full: bool, epoch: int, generation: int
    ) -> None:
        self.key = key
        self.started = started
        #: Whether it took the last free place.
        self.full = full
        #: How many decreases, and limit changes, came before it started.
        self.epoch = epoch
        self.generation = generation
        self.rate_limited = False
        self.failed = False
        #: Its token, and whether it was handed back early (see ``AdaptiveLimiter``).
        self.borrower: object = None
        self.released = False


class AdaptiveLimiter:
    """At most ``limit`` calls at a time, ``limit`` adapted to the server between 1 and
    ``ceiling``: additive increase, multiplicative decrease (AIMD). anyio: asyncio and trio.

    Latencies are compared with the fastest seen for the same ``key`` (kind of call). A call is
    *slow* above ``latency_factor`` times that, a *straggler* while in flight for longer.

    - Decrease: the limit halves (never below 1) when a call is rate-limited, when a call that
      took the last free place was ``latency_factor ** 2`` times slower than the fastest (it
      most likely was turned away, then let in on a retry of the client's own), or when a
      window's median latency is above ``latency_factor`` times the fastest (calls queue at the
      server). Only signals from calls started since the last decrease count: one congestion,
      one halving. Stragglers then give their place back: a call waiting out a rate limit in
      the client's own retries is not at the server, and must not keep the others out.
    - What the server took is remembered: the calls in flight that were not stragglers when
      it turned one away (or one below the limit, for rising latency).
    - Increase, after a window (the calls started since the limit last changed, at least as
      many as the limit and ``MIN_WINDOW``) in which the limit was in full use and no call was
      slow, once the change has had time to show, and while no straggler is in flight (its
      outcome is not known yet). Until the first decrease the step starts at 1 and doubles per
      window (64 is reached in a few round trips, overshooting by a few calls at most). After
      it, the limit doubles back up to what the server took, stays there for ``patience``
      windows (twice as many after each probe that failed), then probes one above: a server
      that turns calls away is not knocked on every round trip, and one that has room again is
      found. It probes only while more calls wait than would take as long to run as a
      turned-away call kept its caller waiting: a failed probe delays one call that much,
      which near the end of the work would delay the end.

    Starts at ``min(ceiling, initial)``. ``adaptive=False`` keeps the limit at ``ceiling`` (a
    plain fixed limit). ``clock`` is injected by tests.
    """

    #: Fewest calls a window judges the limit on (one slow call is not a trend).
    MIN_WINDOW = 4

    def __init__(
        self,
        ceiling: int,
        *,
        initial: int = INITIAL_LIMIT,
        adaptive: bool = True,
        latency_factor: float = 2.0,
        patience: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("ceiling", ceiling), ("initial", initial), ("patience", patience)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not latency_factor > 1:
            raise ValueError(f"latency_factor must be > 1, got {latency_factor!r}")
        self.ceiling = ceiling
        self.adaptive = adaptive
        self.latency_factor = latency_factor
        self.patience = patience
        self._clock = clock
        self._limit = min(ceiling, initial) if adaptive else ceiling
        self._step = 1
        #: What the server was found to take (None: not found yet).
        self._plateau: int | None = None
        self._failed_probes = 0
        self._calm_windows = 0
        self._epoch = 0
        self._generation = 0
        self._changed_at = clock()
        self._floors: dict[Hashable, float] = {}
        self._window: list[float] = []
        self._window_slow = False
        self._window_busy = False
        self._active: dict[int, Slot] = {}
        self._waiting = 0
        #: The longest a call that was turned away kept its caller (0: none seen yet).
        self._probe_cost = 0.0
        self._tokens: anyio.CapacityLimiter | None = None
        #: Times the limit was lowered (for tests and benchmarks).
        self.decreases = 0

    @property
    def limit(self) -> int:
        """How many calls may be in flight now."""
        return self._limit

    @property
    def in_flight(self) -> int:
        """Calls started and not finished."""
        return len(self._active)

    @property
    def waiting(self) -> int:
        """Calls waiting for a place."""
        return self._waiting

    @contextlib.asynccontextmanager
    async def slot(self, key: Hashable = None) -> AsyncIterator[Slot]:
        """Wait for a place and hold it for one call; the call's latency and outcome are
        recorded on leaving (nothing is recorded if the call is cancelled or raises)."""
        if self._tokens is None:
            import anyio  # loaded by the async engine only

            self._tokens = anyio.CapacityLimiter(self._limit)
        tokens = self._tokens
        borrower = object()
        self._waiting += 1
        try:
            await tokens.acquire_on_behalf_of(borrower)
        finally:
            self._waiting -= 1
        slot = self.start(key)
        slot.borrower = borrower
        try:
            yield slot
        except BaseException:
            self._active.pop(id(slot), None)
            raise
        else:
            self.finish(slot)
        finally:
            if not slot.released:
                slot.released = True
                tokens.release_on_behalf_of(borrower)

    def start(self, key: Hashable = None) -> Slot:
        """Note a call starting now (``slot`` does; public for deterministic tests)."""
        full = len(self._active) + 1 >= self._limit
        slot = Slot(key, self._clock(), full, self._epoch, self._generation)
        self._active[id(slot)] = slot
        self._window_busy = self._window_busy or full
        return slot

    def finish(self, slot: Slot) -> None:
        """Note a call's end and adapt the limit (``slot`` does; public for tests)."""
        self._active.pop(id(slot), None)
        if not self.adaptive or slot.failed:
            return
        latency = self._clock() - slot.started
        if slot.rate_limited:
            self._turned_away(slot, latency)
            return
        floor = self._floors.get(slot.key)
        if floor is None or latency < floor:
            self._floors[slot.key] = floor = latency
        ratio = latency / floor if floor > 0 else 1.0
        if slot.full and ratio > self.latency_factor**2:
            self._turned_away(slot, latency)
            return
        if slot.generation != self._generation:
            return  # it started before the limit last changed: it says nothing of this one
        self._window.append(ratio)
        self._window_slow = self._window_slow or ratio > self.latency_factor
        if len(self._window) < max(self._limit, self.MIN_WINDOW):
            return
        if _median(self._window) > self.latency_factor:
            self._decrease(took=self._limit - 1)
        elif self._window_busy and not self._window_slow and self._settled():
            self._increase()
        self._new_window()

    def _turned_away(self, slot: Slot, latency: float) -> None:
        self._probe_cost = max(self._probe_cost, latency)
        if slot.epoch == self._epoch:  # else already answered by a decrease
            now = self._clock()
            took = sum(1 for other in self._active.values() if not self._straggling(other, now))
            self._decrease(took=took)

    def _decrease(self, *, took: int) -> None:
        """Halve the limit; the server was found to take ``took`` calls at a time."""
        if self._plateau is not None and self._limit > self._plateau:
            self._failed_probes += 1  # a probe above what the server took was turned away
        else:
            self._failed_probes = 0
        self._plateau = max(1, min(took, self._limit - 1))
        self._step = 1
        self._calm_windows = 0
        self._epoch += 1
        self._set(max(1, self._limit // 2))
        now = self._clock()
        for slot in self._active.values():
            if self._straggling(slot, now) and not slot.released and self._tokens is not None:
                slot.released = True
                self._tokens.release_on_behalf_of(slot.borrower)
        self._new_window()

    def _increase(self) -> None:
        limit, plateau = self._limit, self._plateau
        if plateau is None:
            limit, self._step = limit + self._step, self._step * 2
        elif limit < plateau:
            limit = min(plateau, limit * 2)
        elif limit > plateau:
            # A probe above what the server took went through: it has room now.
            self._plateau, self._failed_probes, self._calm_windows = None, 0, 0
            limit += 1
        else:
            self._calm_windows += 1
            if (
                self._calm_windows < self.patience * 2 ** min(self._failed_probes, 6)
                or not self._worth_probing()
            ):
                return
            self._calm_windows = 0
            limit += 1
        self._set(min(self.ceiling, limit))

    def _worth_probing(self) -> bool:
        """Whether the calls waiting take longer to run than a turned-away probe would delay
        one of them (so that it would not delay the end of the work)."""
        fastest = min(self._floors.values(), default=0.0)
        return self._waiting * fastest / self._limit > self._probe_cost

    def _straggling(self, slot: Slot, now: float) -> bool:
        floor = self._floors.get(slot.key)
        return floor is not None and now - slot.started > self.latency_factor * floor

    def _settled(self) -> bool:
        """Whether the last change has had time to show its effect: every call admitted since
        could have been seen to be slow, and no straggler that started since the last decrease
        is in flight (its outcome is not known yet)."""
        now = self._clock()
        slowest = max(self._floors.values(), default=0.0)
        if now - self._changed_at < self.latency_factor * slowest:
            return False
        return not any(
            slot.epoch == self._epoch and self._straggling(slot, now)
            for slot in self._active.values()
        )

    def _new_window(self) -> None:
        self._window = []
        self._window_slow = False
        self._window_busy = len(self._active) >= self._limit

    def _set(self, limit: int) -> None:
        if limit == self._limit:
            return
        logger.debug("K/3 Cloud calls in flight: limit %d -> %d", self._limit, limit)
        if limit < self._limit:
            self.decreases += 1
        self._limit = limit
        self._generation += 1
        self._changed_at = self._clock()
        if self._tokens is not None:
            self._tokens.total_tokens = limit
