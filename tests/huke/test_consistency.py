"""Offset pages over a listing that changes while it is read.

A trade removed from the part already paged past shifts the later pages left, and one trade is
never fetched. When the replies carry a total, a change of it between two pages of a window makes
the client read that window again from page 1 (bounded by ``max_restarts``, then
``HukeConsistencyError``); without a total nothing can be seen.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import huke_client
from huke_client import (
    DEFAULT_MAX_RESTARTS,
    HukeConsistencyError,
    HukeError,
    Trade,
)
from huke_client._plan import PagePlan, Restart, describe_window
from huke_client._plan import search_ranges as windows
from huke_client.testing import FakeHuke, ServedPage, fake_trade, generate_trades

from .conftest import APP_KEY, APP_SECRET, END_MS, START_MS, Clock

N = 250
PAGE = 100
WINDOW = describe_window(START_MS, END_MS)


def make_fake(clock: Clock, n: int = N, **options: Any) -> FakeHuke:
    trades = generate_trades(n, start=START_MS, end=END_MS, seed=11)
    return FakeHuke(APP_KEY, APP_SECRET, trades=trades, clock=clock, **options)


def stream(fake: FakeHuke) -> list[str]:
    """The tids in the order the fake serves them (by createTime, stably)."""
    return [t["tid"] for t in sorted(fake.trades, key=lambda t: t["createTime"])]


def by_tid(fake: FakeHuke) -> dict[str, dict[str, Any]]:
    return {t["tid"]: t for t in fake.trades}


def tids(trades: Sequence[Trade]) -> list[str]:
    return [t["tid"] for t in trades]


def collect(trades: Iterable[Trade], into: list[str]) -> None:
    """Append each tid to ``into`` as it arrives (so what came before an error is kept)."""
    for trade in trades:
        into.append(trade["tid"])


def pages_asked(fake: FakeHuke) -> list[int]:
    return [int(json.loads(r.content)["timeRanges"][0]["page"]) for r in fake.received]


def once_after(fake: FakeHuke, page: int, action: Any) -> list[ServedPage]:
    """Run ``action(served)`` once, right after the first page ``page`` is made; log every page."""
    served: list[ServedPage] = []

    def hook(this: ServedPage) -> None:
        if this.page == page and not any(p.page == page for p in served):
            action(this)
        served.append(this)

    fake.on_page(hook)
    return served


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "huke_client" and r.levelname == "WARNING"
    ]


def restart_warning(page: int, before: int, after: int, number: int, limit: int = 3) -> str:
    return (
        f"trade/searchTrades {WINDOW}: the total dropped from {before} to {after} by page {page}, "
        "so trades were removed while the window was read and its later pages shifted; "
        f"reading the window again from page 1 (restart {number} of at most {limit}); trades "
        "already yielded may repeat"
    )


# -- (1) a trade removed from page 1 while page 2 is read ----------------------------------------


def test_a_trade_removed_from_a_page_already_read_loses_nothing(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    fake = make_fake(clock)
    before = stream(fake)
    gone = before[0]
    served = once_after(fake, 1, lambda page: fake.remove_trades(gone))
    with fake.client() as client, caplog.at_level("WARNING", logger="huke_client"):
        got = tids(list(client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE)))

    # The gap, shown on what was served: after the removal page 2 starts one trade later, so
    # the trade that was first on page 2 (now last on page 1, already read) is on no page read
    # before the restart.
    victim = before[PAGE]
    assert served[1].tids == before[PAGE + 1 : 2 * PAGE + 1]
    assert victim not in served[0].tids + served[1].tids
    # The total changed on page 2, so the window was read again from page 1, to the end.
    assert pages_asked(fake) == [1, 2, 1, 2, 3]
    assert [p.total for p in served] == [N, N - 1, N - 1, N - 1, N - 1]
    # Pass 1 up to the page that showed the change (not yielded), then pass 2 whole.
    assert got == before[:PAGE] + before[1:]
    # Every trade that existed throughout was yielded (the victim included); the removed one
    # had been yielded before it went.
    assert set(got) == set(before)
    assert victim in got
    assert warnings_of(caplog) == [restart_warning(page=2, before=N, after=N - 1, number=1)]


def test_without_restarts_the_shift_is_an_error_not_a_silent_loss(clock: Clock) -> None:
    fake = make_fake(clock)
    gone = stream(fake)[0]
    once_after(fake, 1, lambda page: fake.remove_trades(gone))
    with fake.client() as client:
        pages = client.iter_trade_pages(start=START_MS, end=END_MS, page_size=PAGE, max_restarts=0)
        first = next(pages)
        with pytest.raises(HukeConsistencyError) as info:
            next(pages)
    assert len(first.trades) == PAGE
    assert info.value.window == (START_MS, END_MS)
    assert info.value.totals_seen == (N, N - 1)
    assert info.value.max_restarts == 0
    assert isinstance(info.value, HukeError)


# -- (2) a trade inserted into the part already read -------------------------------------------


def test_a_trade_inserted_into_a_page_already_read_is_no_restart_and_loses_nothing(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    fake = make_fake(clock)
    before = stream(fake)
    early = fake_trade(create_time=START_MS, tid="EARLY")  # sorts first: page 1, already read
    once_after(fake, 1, lambda page: fake.add_trades([early]))
    with fake.client() as client, caplog.at_level("WARNING", logger="huke_client"):
        got = tids(list(client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE)))

    assert stream(fake) == ["EARLY", *before]
    # Page 2 starts one trade early: the last trade of page 1 comes twice; none is lost. EARLY
    # came after its page was read: a new trade, for the next (overlapping) run.
    assert got == before[:PAGE] + before[PAGE - 1 :]
    assert pages_asked(fake) == list(range(1, len(pages_asked(fake)) + 1))
    assert warnings_of(caplog) == []


def test_a_total_that_grows_on_every_page_is_followed_not_restarted(clock: Clock) -> None:
    """A busy shop: a window that ends now gains trades (at its end) while it is read."""
    fake = make_fake(clock)
    before = stream(fake)
    added: list[str] = []

    def hook(served: ServedPage) -> None:
        tid = f"NEW{len(added)}"
        added.append(tid)
        fake.add_trades([fake_trade(create_time=END_MS, tid=tid)])

    fake.on_page(hook)
    with fake.client() as client:
        got = tids(list(client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE)))
    assert got[: len(before)] == before  # everything that was there, in order, once
    assert set(got) - set(before) <= set(added)
    assert pages_asked(fake) == list(range(1, len(pages_asked(fake)) + 1))  # never page 1 again


# -- (3) totals that keep changing ----------------------------------------------------------------


def _remove_one_after_every_page(fake: FakeHuke) -> None:
    """Remove the latest trade in the range after each page: the total never holds still."""

    def hook(served: ServedPage) -> None:
        latest = stream(fake)[-1]
        fake.remove_trades(latest)

    fake.on_page(hook)


def test_totals_that_keep_changing_end_in_a_consistency_error(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    fake = make_fake(clock)
    _remove_one_after_every_page(fake)
    with fake.client() as client, caplog.at_level("WARNING", logger="huke_client"):
        got: list[str] = []
        with pytest.raises(HukeConsistencyError) as info:
            collect(client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE), got)

    error = info.value
    assert DEFAULT_MAX_RESTARTS == 3
    # Page 1 and 2 of each reading disagree: three restarts, then the fourth change is fatal.
    assert pages_asked(fake) == [1, 2] * 4
    assert error.window == (START_MS, END_MS)
    assert error.totals_seen == tuple(range(N, N - 8, -1))
    assert error.max_restarts == 3
    assert str(error) == (
        f"trade/searchTrades {WINDOW}: the listing kept changing while it was read (totals "
        "seen: 250, 249, 248, 247, 246, 245, 244, 243), even after reading it again "
        "max_restarts=3 times; offset pages over a changing listing can skip trades, so this "
        "stops rather than lose one silently; retry later, or narrow the range (window=)"
    )
    assert len(got) == 4 * PAGE  # page 1 of each reading; no page that showed a change
    assert warnings_of(caplog) == [
        restart_warning(page=2, before=N - 2 * i, after=N - 2 * i - 1, number=i + 1)
        for i in range(3)
    ]


@pytest.mark.parametrize("max_restarts", [0, 1, 5])
def test_max_restarts_is_configurable(clock: Clock, max_restarts: int) -> None:
    fake = make_fake(clock)
    _remove_one_after_every_page(fake)
    with fake.client() as client, pytest.raises(HukeConsistencyError) as info:
        list(
            client.iter_trades(
                start=START_MS, end=END_MS, page_size=PAGE, max_restarts=max_restarts
            )
        )
    assert info.value.max_restarts == max_restarts
    assert fake.request_count == 2 * (max_restarts + 1)
    times = "time" if max_restarts == 1 else "times"
    assert f"max_restarts={max_restarts} {times}" in str(info.value)


@pytest.mark.parametrize("bad", [-1, 1.5, True, None])
def test_max_restarts_must_be_a_count(clock: Clock, bad: Any) -> None:
    with make_fake(clock, 1).client() as client, pytest.raises(ValueError, match="max_restarts"):
        client.iter_trades(start=START_MS, end=END_MS, max_restarts=bad)


def test_the_error_names_the_window_that_changed_and_earlier_windows_are_yielded(
    clock: Clock,
) -> None:
    fake = make_fake(clock)
    half = timedelta(hours=12)
    first, second = list(windows(START_MS, END_MS, half // timedelta(milliseconds=1)))[:2]
    in_first = [t for t in stream(fake) if by_tid(fake)[t]["createTime"] <= first[1]]
    in_second = [t for t in stream(fake) if second[0] <= by_tid(fake)[t]["createTime"] <= second[1]]
    assert len(in_second) > PAGE  # two pages at least: the total is compared

    def hook(served: ServedPage) -> None:
        if (served.start_ms, served.end_ms) == second:
            fake.remove_trades(in_second.pop())  # the latest trade of the second window

    fake.on_page(hook)
    got: list[str] = []
    with fake.client() as client, pytest.raises(HukeConsistencyError) as info:
        collect(client.iter_trades(start=START_MS, end=END_MS, window=half, page_size=PAGE), got)
    assert info.value.window == second
    assert describe_window(*second) in str(info.value)
    assert got[: len(in_first)] == in_first  # the first window, whole and once


# -- (4) no total: no change can be seen ---------------------------------------------------------


@pytest.mark.parametrize("shape", ["object_no_total", "list"])
def test_without_a_total_a_shift_cannot_be_seen(
    clock: Clock, caplog: pytest.LogCaptureFixture, shape: str
) -> None:
    """The documented limitation: the removal shifts page 2 and its first trade is lost."""
    fake = make_fake(clock, data_shape=shape)
    before = stream(fake)
    once_after(fake, 1, lambda page: fake.remove_trades(before[0]))
    with fake.client() as client, caplog.at_level("WARNING", logger="huke_client"):
        got = tids(list(client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE)))
    assert pages_asked(fake) == [1, 2, 3]
    assert got == before[:PAGE] + before[PAGE + 1 :]
    assert before[PAGE] not in got  # existed throughout, never fetched
    assert warnings_of(caplog) == []


def test_pages_without_a_total_are_never_compared() -> None:
    plan = PagePlan([(0, 9)], max_pages=10)
    assert plan.next_call() == (0, 9, 1)
    assert plan.record(count=2, page_size=2, total=6) is None
    assert plan.record(count=2, page_size=2, total=None) is None  # no total: nothing to compare
    assert plan.record(count=2, page_size=2, total=6) is None
    assert plan.next_call() == (0, 9, 4)  # full pages: the listing ends only on a short one
    assert plan.record(count=0, page_size=2, total=6) is None
    assert plan.next_call() is None
    assert plan.restarts == 0


# -- (5) async parity ----------------------------------------------------------------------------


async def test_async_a_removed_trade_restarts_and_loses_nothing(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    fake = make_fake(clock)
    before = stream(fake)
    once_after(fake, 1, lambda page: fake.remove_trades(before[0]))
    async with fake.async_client() as client:
        with caplog.at_level("WARNING", logger="huke_client"):
            got = [
                t["tid"]
                async for t in client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE)
            ]
    assert pages_asked(fake) == [1, 2, 1, 2, 3]
    assert got == before[:PAGE] + before[1:]
    assert warnings_of(caplog) == [restart_warning(page=2, before=N, after=N - 1, number=1)]


async def test_async_totals_that_keep_changing_end_in_a_consistency_error(clock: Clock) -> None:
    fake = make_fake(clock)
    _remove_one_after_every_page(fake)
    async with fake.async_client() as client:
        pages = client.iter_trade_pages(start=START_MS, end=END_MS, page_size=PAGE, max_restarts=2)
        with pytest.raises(HukeConsistencyError) as info:
            async for _ in pages:
                pass
    assert pages_asked(fake) == [1, 2] * 3
    assert info.value.window == (START_MS, END_MS)
    assert info.value.totals_seen == tuple(range(N, N - 6, -1))
    assert info.value.max_restarts == 2


async def test_async_without_a_total_a_shift_cannot_be_seen(clock: Clock) -> None:
    fake = make_fake(clock, data_shape="object_no_total")
    before = stream(fake)
    once_after(fake, 1, lambda page: fake.remove_trades(before[0]))
    async with fake.async_client() as client:
        got = [
            t["tid"] async for t in client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE)
        ]
    assert got == before[:PAGE] + before[PAGE + 1 :]


# -- the plan --------------------------------------------------------------------------------------


def test_plan_restarts_are_counted_per_window() -> None:
    plan = PagePlan([(0, 9), (10, 19)], max_pages=100, max_restarts=1)
    assert plan.next_call() == (0, 9, 1)
    assert plan.record(count=2, page_size=2, total=4) is None
    assert plan.next_call() == (0, 9, 2)
    restart = plan.record(count=2, page_size=2, total=3)
    assert restart == Restart(window=(0, 9), page=2, before=4, after=3, number=1, max_restarts=1)
    assert plan.next_call() == (0, 9, 1)
    assert plan.record(count=2, page_size=2, total=3) is None
    assert plan.record(count=1, page_size=2, total=3) is None
    # The next window has its own budget (and its own totals).
    assert plan.next_call() == (10, 19, 1)
    assert plan.record(count=2, page_size=2, total=5) is None
    assert plan.record(count=2, page_size=2, total=4) == Restart(
        window=(10, 19), page=2, before=5, after=4, number=1, max_restarts=1
    )
    assert plan.next_call() == (10, 19, 1)
    assert plan.record(count=2, page_size=2, total=4) is None
    with pytest.raises(HukeConsistencyError) as info:
        plan.record(count=2, page_size=2, total=3)
    assert info.value.window == (10, 19)
    assert info.value.totals_seen == (5, 4, 3)
    assert plan.restarts == 2


def test_a_growing_total_is_followed() -> None:
    plan = PagePlan([(0, 9)], max_pages=100)
    assert plan.record(count=2, page_size=2, total=4) is None
    assert plan.record(count=2, page_size=2, total=5) is None
    assert plan.next_call() == (0, 9, 3)
    assert plan.record(count=1, page_size=2, total=5) is None
    assert plan.next_call() is None


def test_a_change_of_total_on_the_last_page_still_restarts() -> None:
    """Page 2 short of the first total but at the new one: the shift may have hidden a trade."""
    plan = PagePlan([(0, 9)], max_pages=100)
    plan.record(count=2, page_size=2, total=4)
    assert plan.record(count=1, page_size=2, total=3) == Restart(
        window=(0, 9), page=2, before=4, after=3, number=1, max_restarts=DEFAULT_MAX_RESTARTS
    )
    assert plan.next_call() == (0, 9, 1)


def test_describe_window_gives_ms_and_utc() -> None:
    assert describe_window(0, 86_399_999) == (
        "[0, 86399999] ms (1970-01-01T00:00:00.000Z .. 1970-01-01T23:59:59.999Z)"
    )


def test_new_names_are_public() -> None:
    for name in ("HukeConsistencyError", "DEFAULT_MAX_RESTARTS"):
        assert name in huke_client.__all__
    assert huke_client.DEFAULT_MAX_RESTARTS == 3
    assert huke_client.HukeConsistencyError.__name__ == "HukeConsistencyError"
    assert issubclass(huke_client.HukeConsistencyError, huke_client.HukeError)


# -- FakeHuke -------------------------------------------------------------------------------------


def test_remove_trades_by_tid_and_predicate(clock: Clock) -> None:
    trades = [
        fake_trade(create_time=START_MS + i, tid=f"T{i}", payment=f"{i}.00") for i in range(6)
    ]
    fake = FakeHuke(APP_KEY, APP_SECRET, trades=trades, clock=clock)
    assert fake.remove_trades("T0", "nope") == 1
    assert fake.remove_trades(where=lambda t: t["payment"] in ("3.00", "4.00")) == 2
    assert fake.remove_trades("T1", where=lambda t: t["tid"] == "T2") == 2
    assert fake.remove_trades("T1") == 0
    assert [t["tid"] for t in fake.trades] == ["T5"]
    with pytest.raises(ValueError, match="needs tids, where="):
        fake.remove_trades()
    with fake.client() as client:
        assert tids(client.search_trades(start=START_MS, end=END_MS).trades) == ["T5"]


def test_on_page_hooks_see_each_page_before_it_is_answered(clock: Clock) -> None:
    trades = [fake_trade(create_time=START_MS + i, tid=f"T{i}") for i in range(5)]
    fake = FakeHuke(APP_KEY, APP_SECRET, trades=trades, clock=clock, data_shape="list")
    seen: list[ServedPage] = []
    assert fake.on_page(seen.append) == seen.append
    with fake.client() as client:
        assert len(list(client.iter_trades(start=START_MS, end=END_MS, page_size=2))) == 5
    assert [(p.page, p.page_size, p.total, p.tids) for p in seen] == [
        (1, 2, 5, ["T0", "T1"]),
        (2, 2, 5, ["T2", "T3"]),
        (3, 2, 5, ["T4"]),
    ]
    assert {(p.start_ms, p.end_ms) for p in seen} == {(START_MS, END_MS)}


# -- the invariant ---------------------------------------------------------------------------------


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(0, 40),
    page_size=st.integers(1, 8),
    changes=st.lists(
        st.tuples(st.integers(1, 12), st.sampled_from(["remove", "insert"]), st.integers(0, 10**6)),
        max_size=4,
        unique_by=lambda change: change[0],
    ),
)
def test_every_trade_that_exists_throughout_is_yielded_or_an_error_is_raised(
    clock: Clock, n: int, page_size: int, changes: list[tuple[int, str, int]]
) -> None:
    """Whatever is removed or inserted between pages (one change between any two pages: a
    removal and an insertion between the same two pages leave the total as it was, which no
    client can see), a trade present from the first request to the last is yielded, unless the
    client says it could not read the window consistently."""
    trades = [fake_trade(create_time=START_MS + 10 * i, tid=f"T{i}") for i in range(n)]
    fake = FakeHuke(APP_KEY, APP_SECRET, trades=trades, clock=clock)
    touched: set[str] = set()
    pending = sorted(changes, key=lambda c: c[0])
    count = 0

    def hook(served: ServedPage) -> None:
        nonlocal count
        count += 1
        for at, kind, pick in [c for c in pending if c[0] == count]:
            held = stream(fake)
            if kind == "remove" and held:
                victim = held[pick % len(held)]
                touched.add(victim)
                fake.remove_trades(victim)
            elif kind == "insert":
                tid = f"NEW{at}-{pick}"
                touched.add(tid)
                fake.add_trades([fake_trade(create_time=START_MS + pick % (10 * n + 1), tid=tid)])

    fake.on_page(hook)
    with fake.client() as client:
        try:
            got = tids(list(client.iter_trades(start=START_MS, end=END_MS, page_size=page_size)))
        except HukeConsistencyError:
            return
    throughout = [f"T{i}" for i in range(n) if f"T{i}" not in touched]
    # Every one of them, and by first appearance still in listing (time) order.
    assert [t for t in dict.fromkeys(got) if t in throughout] == throughout
