"""Back-pressure: the engines' retry of rate-limited calls, and the adaptive limit of the async
engine (driven deterministically through ``start``/``finish`` and an injected clock)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import anyio
import pytest

from huke_k3_bridge._operations import ExistenceQuery, Operation, Pause, SaveBatch
from huke_k3_bridge._pressure import (
    AdaptiveLimiter,
    RateLimitRetry,
    Slot,
    acall_with_backoff,
    call_with_backoff,
    is_rate_limited,
)
from k3cloud_client import (
    BatchSaveResult,
    Customer,
    FailedRow,
    K3CloudAPIError,
    K3CloudHTTPError,
    K3CloudTimeoutError,
    RateLimitedError,
    RetryPolicy,
    SavedRow,
)

from .conftest import Stage

LOOKUP = ExistenceQuery(("C1", "C2"))
CUSTOMERS = tuple(Customer(f"C{i}", f"Name {i}") for i in range(4))
SAVE = SaveBatch("create", (10, 11, 12, 13), CUSTOMERS)
#: Delays of 0.1 * 2**n, no jitter, so that the waits can be asserted exactly.
PLAIN = RateLimitRetry(policy=RetryPolicy(max_retries=5, initial_delay=0.1, jitter=0))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def rate_limited() -> RateLimitedError:
    return RateLimitedError("接口调用频率超出限制", msg_code=14, operation="BatchSave")


def http_429(retry_after: float | None = None) -> K3CloudHTTPError:
    return K3CloudHTTPError(
        "POST /k3cloud/x answered HTTP 429: 'busy'",
        status_code=429,
        url="http://k3.test/k3cloud/x",
        body="busy",
        retry_after=retry_after,
    )


def turned_away(index: int, number: str | None = None) -> FailedRow:
    return FailedRow(index, None, "rate limit", 14, uncertain=False, number=number)


class Replies:
    """``execute`` for the retry wrappers: hands out ``replies`` in turn, noting each op."""

    def __init__(self, replies: Iterable[Any]) -> None:
        self.replies = list(replies)
        self.ops: list[Operation] = []

    def __call__(self, op: Operation) -> Any:
        self.ops.append(op)
        return self.replies.pop(0)


def run(
    op: Operation, replies: Replies, retry: RateLimitRetry = PLAIN, clock: Clock | None = None
) -> tuple[Any, list[float]]:
    sleeps: list[float] = []
    clock = clock or Clock()

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds

    result = call_with_backoff(op, replies, retry=retry, sleep=sleep, clock=clock)
    return result, sleeps


# -- what counts as a rate limit ------------------------------------------------------------------


def test_rate_limits_are_recognised() -> None:
    assert is_rate_limited(rate_limited())
    assert is_rate_limited(http_429())
    assert is_rate_limited(BatchSaveResult(saved=[], failed=[turned_away(0)]))
    assert not is_rate_limited(K3CloudAPIError("bad", msg_code=11))
    assert not is_rate_limited(
        K3CloudHTTPError("503", status_code=503, url="http://k3.test", body="")
    )
    uncertain = FailedRow(0, None, "rate limit?", 14, uncertain=True)
    assert not is_rate_limited(BatchSaveResult(saved=[], failed=[uncertain]))
    assert not is_rate_limited({"C1": 1})
    assert not is_rate_limited(None)


# -- the engines' retry -----------------------------------------------------------------------------


def test_a_rate_limited_call_is_sent_again_after_full_jitter_backoff() -> None:
    replies = Replies([rate_limited(), http_429(), {"C1": 7}])
    sleeps: list[float] = []
    draws = iter([0.5, 0.25])
    retry = RateLimitRetry(policy=RetryPolicy(max_retries=5, initial_delay=0.1))
    result = call_with_backoff(
        LOOKUP, replies, retry=retry, sleep=sleeps.append, rand=lambda: next(draws)
    )
    assert result == {"C1": 7}
    assert replies.ops == [LOOKUP] * 3
    assert sleeps == pytest.approx([0.05, 0.05])  # uniform(0, 0.1), then uniform(0, 0.2)


def test_retry_after_is_the_least_wait() -> None:
    result, sleeps = run(LOOKUP, Replies([http_429(retry_after=3.0), {}]))
    assert result == {}
    assert sleeps == [3.0]


def test_retries_are_bounded_in_count() -> None:
    replies = Replies([rate_limited() for _ in range(6)])
    result, sleeps = run(LOOKUP, replies)
    assert isinstance(result, RateLimitedError)  # reported as it failed
    assert len(replies.ops) == 6
    assert sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])


def test_retries_are_bounded_in_time() -> None:
    retry = RateLimitRetry(
        policy=RetryPolicy(max_retries=50, initial_delay=1.0, max_delay=1.0, jitter=0),
        max_elapsed=3.5,
    )
    replies = Replies([rate_limited() for _ in range(50)])
    result, sleeps = run(LOOKUP, replies, retry)
    assert isinstance(result, RateLimitedError)
    assert sleeps == [1.0, 1.0, 1.0]  # a fourth wait would end past 3.5 s
    assert len(replies.ops) == 4


@pytest.mark.parametrize(
    "failure",
    [
        K3CloudAPIError("校验失败", msg_code=11),
        K3CloudTimeoutError("timed out", url="http://k3.test", reached_server=True),
        K3CloudHTTPError("503", status_code=503, url="http://k3.test", body=""),
    ],
)
def test_other_failures_are_not_sent_again(failure: Exception) -> None:
    replies = Replies([failure])
    result, sleeps = run(SAVE, replies)
    assert result is failure
    assert (len(replies.ops), sleeps) == (1, [])


def test_a_batch_save_turned_away_as_a_whole_is_sent_again() -> None:
    whole = BatchSaveResult(saved=[], failed=[turned_away(i) for i in range(4)])
    saved = BatchSaveResult(saved=[SavedRow(i, 100 + i, f"C{i}") for i in range(4)], failed=[])
    replies = Replies([whole, saved])
    result, _ = run(SAVE, replies)
    assert replies.ops == [SAVE, SAVE]
    assert result is saved


def test_only_the_turned_away_rows_of_a_batch_save_are_sent_again() -> None:
    first = BatchSaveResult(
        saved=[SavedRow(0, 100, "C0"), SavedRow(2, 102, "C2")],
        failed=[turned_away(1, "C1"), turned_away(3, "C3")],
        responses=["reply 1"],
    )
    refused = FailedRow(1, "FName", "校验失败", 11, number="C3")
    second = BatchSaveResult(
        saved=[SavedRow(0, 101, "C1")], failed=[refused], responses=["reply 2"]
    )
    replies = Replies([first, second])
    result, sleeps = run(SAVE, replies)
    assert replies.ops[1] == SaveBatch("create", (11, 13), (CUSTOMERS[1], CUSTOMERS[3]))
    assert len(sleeps) == 1
    assert result == BatchSaveResult(
        saved=[SavedRow(0, 100, "C0"), SavedRow(1, 101, "C1"), SavedRow(2, 102, "C2")],
        failed=[FailedRow(3, "FName", "校验失败", 11, number="C3")],
        responses=["reply 1", "reply 2"],
    )


def test_a_part_turned_away_again_is_narrowed_again() -> None:
    first = BatchSaveResult(
        saved=[SavedRow(0, 100, "C0")], failed=[turned_away(i) for i in (1, 2, 3)]
    )
    second = BatchSaveResult(
        saved=[SavedRow(1, 102, "C2")], failed=[turned_away(0), turned_away(2)]
    )
    third = BatchSaveResult(saved=[SavedRow(0, 101, "C1"), SavedRow(1, 103, "C3")], failed=[])
    replies = Replies([first, second, third])
    result, _ = run(SAVE, replies)
    assert [op.positions for op in replies.ops if isinstance(op, SaveBatch)] == [
        (10, 11, 12, 13),
        (11, 12, 13),
        (11, 13),
    ]
    assert result.failed == []
    assert [(r.index, r.id) for r in result.saved] == [(0, 100), (1, 101), (2, 102), (3, 103)]


def test_rows_that_may_have_been_saved_are_never_sent_again() -> None:
    maybe = FailedRow(1, None, "reply lost", 14, uncertain=True)
    first = BatchSaveResult(saved=[SavedRow(0, 100, "C0")], failed=[maybe])
    replies = Replies([first])
    result, sleeps = run(SaveBatch("create", (10, 11), CUSTOMERS[:2]), replies)
    assert result is first
    assert sleeps == []


def test_a_resent_part_that_fails_as_a_whole_takes_that_failure() -> None:
    first = BatchSaveResult(
        saved=[SavedRow(0, 100, "C0")], failed=[turned_away(1, "C1")], responses=["reply"]
    )
    lost = K3CloudTimeoutError("timed out", url="http://k3.test", reached_server=True)
    replies = Replies([first, lost])
    result, _ = run(SaveBatch("create", (10, 11), CUSTOMERS[:2]), replies)
    assert result == BatchSaveResult(
        saved=[SavedRow(0, 100, "C0")],
        failed=[FailedRow(1, None, str(lost), None, uncertain=True, number="C1")],
        responses=["reply"],
    )


def test_operations_that_are_no_k3_call_pass_through() -> None:
    replies = Replies([None])
    result, sleeps = run(Pause(0.01), replies)
    assert (result, sleeps, replies.ops) == (None, [], [Pause(0.01)])


async def test_the_async_retry_waits_without_holding_a_place() -> None:
    limiter = AdaptiveLimiter(4, initial=2)
    held_while_waiting: list[int] = []
    calls: list[Operation] = []

    async def execute(op: Operation) -> Any:
        calls.append(op)
        await anyio.sleep(0)
        return rate_limited() if len(calls) == 1 else {"C1": 1}

    async def sleep(seconds: float) -> None:
        held_while_waiting.append(limiter.in_flight)

    result = await acall_with_backoff(LOOKUP, execute, limiter, retry=PLAIN, sleep=sleep)
    assert result == {"C1": 1}
    assert calls == [LOOKUP, LOOKUP]
    assert held_while_waiting == [0]
    assert limiter.limit == 1  # the rate limit halved it


async def test_async_pauses_take_no_place() -> None:
    limiter = AdaptiveLimiter(1)

    async def execute(op: Operation) -> Any:
        assert limiter.in_flight == 0
        return "paused"

    assert await acall_with_backoff(Pause(0.0), execute, limiter) == "paused"


# -- the adaptive limit ----------------------------------------------------------------------------


def calls(
    limiter: AdaptiveLimiter, clock: Clock, *, latency: float = 1.0, n: int | None = None
) -> list[Slot]:
    """``n`` calls (default: the limit) started together, all done ``latency`` later."""
    slots = [limiter.start("op") for _ in range(limiter.limit if n is None else n)]
    clock.now += latency
    for slot in slots:
        limiter.finish(slot)
    return slots


def limits(limiter: AdaptiveLimiter, clock: Clock, rounds: int, **options: Any) -> list[int]:
    seen = []
    for _ in range(rounds):
        calls(limiter, clock, **options)
        seen.append(limiter.limit)
    return seen


def test_the_limit_starts_at_a_few_and_within_the_ceiling() -> None:
    assert AdaptiveLimiter(64).limit == 4
    assert AdaptiveLimiter(2).limit == 2
    assert AdaptiveLimiter(64, initial=10).limit == 10
    assert AdaptiveLimiter(64, adaptive=False).limit == 64


def test_while_the_server_keeps_up_the_step_doubles_up_to_the_ceiling() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(64, clock=clock)
    # Each change waits until calls started after it had time to show they are slow (2 rounds).
    assert limits(limiter, clock, 14) == [4, 5, 5, 7, 7, 11, 11, 19, 19, 35, 35, 64, 64, 64]
    assert limiter.decreases == 0


def test_the_limit_only_grows_while_it_is_in_full_use() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(64, clock=clock)
    assert limits(limiter, clock, 6, n=3) == [4] * 6


def test_a_fixed_limit_never_moves() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(16, adaptive=False, clock=clock)
    for slot in calls(limiter, clock, latency=9.0):
        slot.rate_limited = True
    limiter.finish(limiter.start())
    assert (limiter.limit, limiter.decreases) == (16, 0)


def test_a_rate_limit_halves_the_limit_once_per_congestion_never_below_one() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(16, initial=8, clock=clock)
    calls(limiter, clock)
    before = [limiter.start("op") for _ in range(8)]
    clock.now += 0.5
    before[0].rate_limited = before[1].rate_limited = True
    limiter.finish(before[0])
    assert limiter.limit == 4
    limiter.finish(before[1])  # started before the halving: the same congestion
    assert (limiter.limit, limiter.decreases) == (4, 1)
    for expected in (2, 1, 1):
        slot = limiter.start("op")
        slot.rate_limited = True
        limiter.finish(slot)
        assert limiter.limit == expected


def test_rising_latency_halves_the_limit() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(8, initial=8, clock=clock)
    calls(limiter, clock)  # the fastest: 1.0
    assert limits(limiter, clock, 2, latency=1.9) == [8, 8]  # slower, not twice as slow
    assert limits(limiter, clock, 1, latency=2.5) == [4]  # queueing at the server


def test_a_call_far_slower_than_its_kind_counts_as_turned_away() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(16, initial=8, clock=clock)
    calls(limiter, clock)
    slots = [limiter.start("op") for _ in range(8)]
    assert [s.full for s in slots] == [False] * 7 + [True]
    clock.now += 1.0
    for slot in slots[:7]:
        limiter.finish(slot)
    clock.now += 4.0  # the last one: 5x the fastest, so it waited for the server
    limiter.finish(slots[7])
    assert limiter.limit == 4


def test_the_kinds_of_call_are_timed_apart() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(16, initial=4, clock=clock)
    for _ in range(3):
        lookups = [limiter.start("lookup") for _ in range(limiter.limit)]
        clock.now += 0.1
        for slot in lookups:
            limiter.finish(slot)
        saves = [limiter.start("save") for _ in range(limiter.limit)]
        clock.now += 1.0  # 10x a lookup: a slow lookup, a normal save
        for slot in saves:
            limiter.finish(slot)
    assert (limiter.limit, limiter.decreases) == (5, 0)


def test_no_increase_while_a_call_in_flight_is_slow() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(64, clock=clock)
    calls(limiter, clock)
    straggler = limiter.start("op")  # e.g. waiting out a rate limit in the client's retries
    clock.now += 2.5  # over twice the fastest: its outcome is in doubt
    assert limits(limiter, clock, 4, n=4) == [4, 4, 4, 4]
    limiter.finish(straggler)  # it did get through, slowly, without the limiter full
    assert limits(limiter, clock, 2, n=4) == [4, 5]  # its window was a slow one


def test_after_a_halving_the_limit_climbs_back_to_what_the_server_took_then_probes() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(32, initial=16, patience=3, clock=clock)
    calls(limiter, clock)
    waiting = [limiter.start("op") for _ in range(6)]  # turned away earlier, in client retries
    clock.now += 3.0
    served = [limiter.start("op") for _ in range(10)]
    clock.now += 1.0
    served[0].rate_limited = True
    limiter.finish(served[0])
    # Halved; the server was serving the 9 others that were not waiting out a rate limit.
    assert limiter.limit == 8
    for slot in served[1:] + waiting:
        limiter.finish(slot)
    limiter._waiting = 1000  # plenty of work queued: probing is worth it
    # Back up at once, 3 calm windows (each change waits a round to show), one above; that
    # went through: the server has room again, the step grows anew.
    assert limits(limiter, clock, 10) == [8, 9, 9, 9, 9, 10, 10, 11, 11, 12]


def test_a_failed_probe_doubles_the_patience_and_no_probe_near_the_end() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(32, initial=8, patience=2, clock=clock)
    calls(limiter, clock)
    slots = [limiter.start("op") for _ in range(8)]
    clock.now += 1.0
    slots[0].rate_limited = True
    for slot in slots:
        limiter.finish(slot)  # found: the server takes 7; the limit halves to 4
    limiter._waiting = 1000
    # Back to 7 (each change waits a round to show), 2 calm windows, then a probe.
    assert limits(limiter, clock, 6) == [4, 7, 7, 7, 8, 8]
    probe = [limiter.start("op") for _ in range(8)]
    clock.now += 1.0
    probe[0].rate_limited = True
    for slot in probe:
        limiter.finish(slot)
    assert limiter.limit == 4
    assert limits(limiter, clock, 7) == [4, 7, 7, 7, 7, 7, 8]  # 4 calm windows this time
    probe = [limiter.start("op") for _ in range(8)]
    clock.now += 1.0
    probe[0].rate_limited = True
    for slot in probe:
        limiter.finish(slot)
    assert limiter.decreases == 3
    limiter._waiting = 3  # little work left: a probe turned away would delay the end
    assert limits(limiter, clock, 20) == [4] + [7] * 19
    limiter._waiting = 1000
    assert limits(limiter, clock, 1) == [8]


@pytest.mark.parametrize(
    "bad",
    [
        {"ceiling": 0},
        {"ceiling": True},
        {"initial": 0},
        {"patience": 0},
        {"latency_factor": 1.0},
    ],
)
def test_invalid_settings_are_refused(bad: dict[str, Any]) -> None:
    options: dict[str, Any] = {"ceiling": 8, **bad}
    with pytest.raises(ValueError):
        AdaptiveLimiter(**options)


async def test_at_most_limit_calls_hold_a_place() -> None:
    limiter = AdaptiveLimiter(3, adaptive=False)
    peak = 0

    async def one() -> None:
        nonlocal peak
        async with limiter.slot("op"):
            peak = max(peak, limiter.in_flight)
            await anyio.sleep(0.001)

    async with anyio.create_task_group() as tasks:
        for _ in range(12):
            tasks.start_soon(one)
    assert peak == 3
    assert (limiter.in_flight, limiter.waiting) == (0, 0)


async def test_a_raised_limit_lets_a_waiting_call_in() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(8, initial=1, clock=clock)
    for _ in range(AdaptiveLimiter.MIN_WINDOW):
        async with limiter.slot("op"):
            clock.now += 1.0
    assert limiter.limit == 2
    release = anyio.Event()

    async def hold() -> None:
        async with limiter.slot("op"):
            await release.wait()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(hold)
        tasks.start_soon(hold)
        tasks.start_soon(hold)
        await anyio.wait_all_tasks_blocked()
        assert (limiter.in_flight, limiter.waiting) == (2, 1)
        release.set()


async def test_a_halving_hands_back_the_places_of_calls_waiting_out_a_rate_limit() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(8, initial=2, clock=clock)
    async with limiter.slot("op"):
        clock.now += 1.0
    straggler_done = anyio.Event()
    third_ran = anyio.Event()
    order: list[str] = []

    async def straggler() -> None:
        async with limiter.slot("op"):
            await straggler_done.wait()
        order.append("straggler")

    async def turned_away_now() -> None:
        async with limiter.slot("op") as slot:
            clock.now += 5.0  # the straggler is now far slower than the fastest
            slot.rate_limited = True
        order.append("turned away")

    async def third() -> None:
        async with limiter.slot("op"):
            order.append("third")
            third_ran.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(straggler)
        await anyio.wait_all_tasks_blocked()
        tasks.start_soon(turned_away_now)
        await anyio.wait_all_tasks_blocked()
        tasks.start_soon(third)
        with anyio.fail_after(5):
            await third_ran.wait()
        straggler_done.set()
    assert order == ["turned away", "third", "straggler"]
    assert limiter.limit == 1
    assert limiter.in_flight == 0


# -- the engines -----------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["sync", "async"])
def test_the_engines_retry_saves_still_rate_limited_after_the_clients_retries(
    stage: Stage, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huke_k3_bridge import _pressure

    monkeypatch.setattr(
        _pressure,
        "ENGINE_RETRY",
        RateLimitRetry(policy=RetryPolicy(max_retries=5, initial_delay=0.001)),
    )
    trades = stage.generate(20, buyers=10)
    expected = len({t["buyerCid"] for t in trades})
    # The client makes 3 attempts (FAST: 2 retries); 5 answers of MsgCode 14 outlast them.
    stage.fake_k3.inject_rate_limit(times=5, path="BatchSave")
    run: Callable[..., Any] = stage.sync if engine == "sync" else stage.async_sync
    report = run() if engine == "sync" else anyio.run(run)
    assert report.counts["failed"] == 0, str(report)
    assert report.counts["created"] == expected
    assert stage.fake_k3.call_count("BatchSave") == 6
    assert len(stage.customers()) == expected
