"""A window is complete only when its listing ends consistently.

A page with no ``data`` is a lost page, not an empty one; a full page always asks for the next;
a short or empty page while the total says more, or full pages holding more trades than the
total, make the window be read again (bounded) and then raise ``HukeConsistencyError``. Before,
each of these ended the window quietly on trades never seen.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from huke_client import HukeConsistencyError, HukeResponseError, Trade
from huke_client._pages import extract_page
from huke_client._plan import RESTART_KINDS, PagePlan, Restart
from huke_client.testing import (
    LISTING_FAULT_KINDS,
    NO_DATA,
    FakeHuke,
    ListingFault,
    ServedPage,
    fake_trade,
)

from .conftest import APP_KEY, APP_SECRET, END_MS, INSTANT, START_MS, Clock

PAGE = 10
N = 25  # pages of 10, 10 and 5


def make_fake(clock: Clock, n: int = N, **options: Any) -> FakeHuke:
    trades = [fake_trade(create_time=START_MS + 10 * i, tid=f"T{i:03d}") for i in range(n)]
    return FakeHuke(APP_KEY, APP_SECRET, trades=trades, clock=clock, **options)


def all_tids(n: int = N) -> list[str]:
    return [f"T{i:03d}" for i in range(n)]


def tids(trades: Sequence[Trade]) -> list[str]:
    return [t["tid"] for t in trades]


def pages_asked(fake: FakeHuke) -> list[int]:
    return [int(json.loads(r.content)["timeRanges"][0]["page"]) for r in fake.received]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "huke_client" and r.levelname == "WARNING"
    ]


def collect(trades: Iterable[Trade], into: list[str]) -> None:
    """Append each tid to ``into`` as it arrives (so what came before an error is kept)."""
    for trade in trades:
        into.append(trade["tid"])


async def acollect(trades: AsyncIterator[Trade], into: list[str]) -> None:
    async for trade in trades:
        into.append(trade["tid"])


def below_page_size(served: ServedPage) -> int:
    """A total lower than what one full page delivers (the true one when the range is smaller)."""
    return min(served.total, served.page_size - 1)


# -- extract_page: a success without data is a lost page ---------------------------------------


def test_null_data_is_a_transient_response_error_quoting_the_reply() -> None:
    reply = '{"code":200,"msg":"success"}'
    with pytest.raises(HukeResponseError) as info:
        extract_page(None, where="/openapi/trade/searchTrades", reply=reply)
    error = info.value
    assert error.transient  # retried by reads, like a body cut short
    assert error.body == reply
    assert str(error) == (
        "/openapi/trade/searchTrades: the reply says success but its data is missing or null, "
        "where a list of trades (or an object holding one) was expected; a page that holds "
        f"nothing is a lost page, not an empty one; received: {reply}"
    )
    with pytest.raises(HukeResponseError, match=r"received: null$"):
        extract_page(None, where="w")


def test_null_data_is_an_empty_page_only_when_asked() -> None:
    page = extract_page(None, where="w", null_is_empty=True)
    assert (page.items, page.total) == ([], None)


def test_the_reply_quoted_for_null_data_is_redacted() -> None:
    with pytest.raises(HukeResponseError) as info:
        extract_page(
            None, where="w", reply='{"msg":"s3cret"}', redact=lambda t: t.replace("s3cret", "***")
        )
    assert "s3cret" not in str(info.value)
    assert info.value.body == '{"msg":"***"}'


@pytest.mark.parametrize("data", ["trades", 0, {"list": None, "total": 3}])
def test_data_of_a_wrong_shape_is_not_transient(data: Any) -> None:
    """A well-formed body of the wrong shape will not change when read again."""
    with pytest.raises(HukeResponseError) as info:
        extract_page(data, where="w")
    assert not info.value.transient


# -- PagePlan: when a window ends ----------------------------------------------------------------


def drive(plan: PagePlan, pages: Sequence[tuple[int, int | None]], page_size: int) -> list[Any]:
    """Record ``(count, total)`` pages in turn; what ``record`` returned for each."""
    out: list[Any] = []
    for count, total in pages:
        assert plan.next_call() is not None
        out.append(plan.record(count=count, page_size=page_size, total=total))
    return out


def test_a_full_page_asks_for_the_next_even_at_its_total() -> None:
    plan = PagePlan([(0, 9)], max_pages=10)
    assert drive(plan, [(2, 2)], page_size=2) == [None]
    assert plan.next_call() == (0, 9, 2)
    assert drive(plan, [(0, 2)], page_size=2) == [None]
    assert plan.next_call() is None


@pytest.mark.parametrize("total", [3, None])
def test_a_short_page_that_reaches_the_total_ends_the_window(total: int | None) -> None:
    plan = PagePlan([(0, 9)], max_pages=10)
    assert drive(plan, [(2, total), (1, total)], page_size=2) == [None, None]
    assert plan.next_call() is None


@pytest.mark.parametrize(
    ("pages", "kind", "before", "after"),
    [
        ([(2, 5), (0, 5)], "short", 5, 2),  # an empty page while the total says more
        ([(2, 7), (1, 7)], "short", 7, 3),  # a short page in the middle
        ([(2, 9), (2, 9), (2, 9), (1, 9)], "short", 9, 7),  # the last page cut short
        ([(2, 3), (2, 3)], "overfull", 3, 4),  # full pages beyond the total
        ([(2, 1)], "overfull", 1, 2),
        ([(2, 5), (2, 5), (2, 5)], "overfull", 5, 6),  # a short last page beyond the total
        ([(2, 5), (2, 4)], "dropped", 5, 4),
    ],
)
def test_an_inconsistent_listing_restarts_the_window(
    pages: list[tuple[int, int | None]], kind: str, before: int, after: int
) -> None:
    plan = PagePlan([(0, 9), (10, 19)], max_pages=100, max_restarts=1)
    *fine, restart = drive(plan, pages, page_size=2)
    assert fine == [None] * len(fine)
    assert restart == Restart(
        window=(0, 9),
        page=len(pages),
        before=before,
        after=after,
        number=1,
        max_restarts=1,
        kind=kind,
    )
    assert plan.next_call() == (0, 9, 1)  # the same window again, from page 1
    # Again: the window has used its one restart.
    *fine, last = pages
    drive(plan, fine, page_size=2)
    with pytest.raises(HukeConsistencyError) as info:
        plan.record(count=last[0], page_size=2, total=last[1])
    assert info.value.kind == kind
    assert info.value.window == (0, 9)
    assert info.value.max_restarts == 1
    assert plan.restarts == 1


def test_the_consistency_error_says_what_was_wrong() -> None:
    plan = PagePlan([(0, 86_399_999)], max_pages=100, max_restarts=0)
    drive(plan, [(2, 5)], page_size=2)
    with pytest.raises(HukeConsistencyError) as info:
        plan.record(count=0, page_size=2, total=5)
    assert str(info.value) == (
        "trade/searchTrades [0, 86399999] ms (1970-01-01T00:00:00.000Z .. "
        "1970-01-01T23:59:59.999Z): the listing did not end consistently: the listing ended on "
        "page 2 after 2 trades while its total says 5, so a page was lost or cut short (totals "
        "seen: 5), even after reading it again max_restarts=0 times; this stops rather than end "
        "the window on trades never seen; retry later, or narrow the range (window=)"
    )
    assert info.value.totals_seen == (5,)


def test_restart_messages_name_each_kind() -> None:
    messages = {
        kind: Restart(
            window=(0, 9), page=2, before=5, after=3, number=1, max_restarts=3, kind=kind
        ).message()
        for kind in RESTART_KINDS
    }
    assert "the total dropped from 5 to 3 by page 2" in messages["dropped"]
    assert "ended on page 2 after 3 trades while its total says 5" in messages["short"]
    assert (
        "the pages delivered 3 trades by page 2, more than the total of 5" in messages["overfull"]
    )
    assert "page 2 held 3 trades, more than the 5 of page 1" in messages["oversized"]
    assert all("restart 1 of at most 3" in m for m in messages.values())


def test_a_server_that_caps_the_page_size_is_learned_from_page_1() -> None:
    plan = PagePlan([(0, 9)], max_pages=100)
    # 12 trades, pages of 5 where 10 were asked: 5 + 5 + 2.
    assert drive(plan, [(5, 12), (5, 12), (2, 12)], page_size=10) == [None, None, None]
    assert plan.next_call() is None


def test_a_capped_listing_that_ends_short_of_its_total_restarts() -> None:
    plan = PagePlan([(0, 9)], max_pages=100)
    restart = drive(plan, [(5, 12), (5, 12), (1, 12)], page_size=10)[-1]
    assert restart is not None
    assert (restart.kind, restart.before, restart.after) == ("short", 12, 11)


def test_a_page_larger_than_page_1_shows_page_1_was_cut_short() -> None:
    plan = PagePlan([(0, 9)], max_pages=100)
    restart = drive(plan, [(9, 25), (10, 25)], page_size=10)[-1]
    assert restart is not None
    assert (restart.kind, restart.before, restart.after) == ("oversized", 9, 10)


def test_an_empty_page_1_while_the_total_says_more_restarts() -> None:
    plan = PagePlan([(0, 9)], max_pages=100)
    restart = drive(plan, [(0, 4)], page_size=10)[-1]
    assert restart is not None
    assert (restart.kind, restart.page, restart.before, restart.after) == ("short", 1, 4, 0)


def test_a_page_without_a_total_is_judged_by_the_windows_latest_total() -> None:
    """A reading that restarts on a null page 1 (no trades, no total) must not end the window:
    the window's earlier pages said it holds trades."""
    plan = PagePlan([(0, 9)], max_pages=100)
    assert drive(plan, [(2, 5)], page_size=2) == [None]
    assert drive(plan, [(0, None)], page_size=2)[0].kind == "short"
    restart = drive(plan, [(0, None)], page_size=2)[0]
    assert (restart.kind, restart.page, restart.before, restart.after) == ("short", 1, 5, 0)


def test_a_window_without_totals_ends_on_its_first_short_page() -> None:
    """The documented limit: without a total, a lost page (or a capped server) cannot be seen."""
    plan = PagePlan([(0, 9)], max_pages=100)
    assert drive(plan, [(2, None), (1, None)], page_size=2) == [None, None]
    assert plan.next_call() is None


# -- the invariants, over any listing ------------------------------------------------------------


def serve(
    listing: Sequence[int], size: int, page: int, with_total: bool
) -> tuple[list[int], int | None]:
    first = (page - 1) * size
    return list(listing[first : first + size]), len(listing) if with_total else None


def read(
    plan: PagePlan,
    page_size: int,
    answer: Callable[[int, int], tuple[list[int], int | None]],
) -> list[int]:
    """What a client yields: each page ``answer(page, reading)`` that ``record`` accepts."""
    got: list[int] = []
    reading = 0
    while (call := plan.next_call()) is not None:
        page = call[2]
        reading += page == 1
        items, total = answer(page, reading)
        if plan.record(count=len(items), page_size=page_size, total=total) is None:
            got.extend(items)
    return got


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 60),
    page_size=st.integers(1, 12),
    cap=st.integers(1, 14),
    with_total=st.booleans(),
)
def test_a_consistent_listing_yields_every_trade_once_and_ends(
    n: int, page_size: int, cap: int, with_total: bool
) -> None:
    """Any listing served consistently, in any page size, capped by the server or not, is read
    whole, once, in order, without a restart. (Without a total a capped server cannot be told
    from the listing's end: only uncapped listings are read whole then.)"""
    size = min(page_size, cap) if with_total else page_size
    listing = list(range(n))
    plan = PagePlan([(0, 1)], max_pages=n + 3)
    got = read(plan, page_size, lambda page, _: serve(listing, size, page, with_total))
    assert got == listing
    assert plan.restarts == 0
    assert plan.pages_fetched <= n // size + 2  # bounded: at most one empty page past the end


FAULTS = ("empty", "short", "skip", "low_total", "no_total", "drop_total")


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(0, 50),
    page_size=st.integers(1, 10),
    cap=st.integers(1, 12),
    faults=st.lists(
        st.tuples(st.integers(1, 8), st.sampled_from(FAULTS), st.integers(1, 5)),
        min_size=1,
        max_size=3,
        unique_by=lambda fault: fault[0],
    ),
    max_restarts=st.integers(0, 3),
)
def test_an_inconsistent_listing_is_read_whole_again_or_raises(
    n: int,
    page_size: int,
    cap: int,
    faults: list[tuple[int, str, int]],
    max_restarts: int,
) -> None:
    """Whatever is lost or miscounted (a page empty, cut short, or skipped so that the later
    pages shift; a total too low, dropped, or missing), on any pages, during any number of
    readings of the window: the window is either read whole in the end, or
    ``HukeConsistencyError`` is raised. Never does it end short.

    Left out, as no client can tell them from the truth: a page whose trades *and* total lie
    alike (no trades, and a total that says so), hence one fault a page; and, when the server
    caps the page size, a page 1 whose total is cut to what it holds or left out (a short page 1
    that meets its total, or has none, is what a small listing looks like)."""
    size = min(page_size, cap)
    hidden = {(1, "drop_total"), (1, "no_total")}
    assume(size == page_size or not any((at, kind) in hidden for at, kind, _ in faults))
    listing = list(range(n))

    def answer(page: int, reading: int) -> tuple[list[int], int | None]:
        active = [(at, kind) for at, kind, readings in faults if reading <= readings]
        shift = sum(1 for at, kind in active if kind == "skip" and at <= page)
        items, total = serve(listing, size, page + shift, with_total=True)
        assert total is not None
        for kind in (kind for at, kind in active if at == page):
            if kind == "empty":
                items = []
            elif kind == "short":
                items = items[:-1]
            elif kind == "low_total":
                total = max(0, (page - 1) * size - 1)
            elif kind == "no_total":
                return items, None
            elif kind == "drop_total":
                total = max(0, total - 1)
        return items, total

    plan = PagePlan([(0, 1)], max_pages=10_000, max_restarts=max_restarts)
    try:
        got = read(plan, page_size, answer)
    except HukeConsistencyError as error:
        raised: HukeConsistencyError | None = error
    else:
        raised = None
        assert set(got) == set(listing)
    assert raised is None or raised.kind in RESTART_KINDS


# -- the client, over FakeHuke (httpx.MockTransport) ---------------------------------------------


@pytest.mark.parametrize("kind", ["no_data", "null_data"])
def test_page_2_without_data_is_retried_and_then_an_error(clock: Clock, kind: str) -> None:
    fake = make_fake(clock)
    fault = fake.listing_fault(kind, page=2)
    got: list[str] = []
    with fake.client(retry=INSTANT, max_retries=2) as client:
        trades = client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE)
        with pytest.raises(HukeResponseError) as info:
            collect(trades, got)
    assert got == all_tids()[:PAGE]  # page 1; the window did not end on page 2
    assert pages_asked(fake) == [1, 2, 2, 2]  # page 2 and its two retries
    assert len(fault.struck) == 3
    message = str(info.value)
    assert "data is missing or null" in message
    received = '{"code":200,"msg":"success"}' if kind == "no_data" else '"data":null'
    assert received in message
    assert info.value.transient


@pytest.mark.parametrize("kind", ["no_data", "null_data"])
def test_page_2_without_data_once_is_read_again_and_loses_nothing(clock: Clock, kind: str) -> None:
    fake = make_fake(clock)
    fake.listing_fault(kind, page=2, times=1)
    with fake.client(retry=INSTANT) as client:
        got = tids(list(client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE)))
    assert got == all_tids()
    assert pages_asked(fake) == [1, 2, 2, 3]


@pytest.mark.parametrize("kind", ["no_data", "null_data"])
def test_a_page_1_without_data_is_an_error_by_default(clock: Clock, kind: str) -> None:
    """A lost first page read as an empty one would skip the whole window silently."""
    fake = make_fake(clock)
    fake.listing_fault(kind, page=1)
    with fake.client(retry=INSTANT, max_retries=1) as client:
        with pytest.raises(HukeResponseError, match="data is missing or null"):
            list(client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE))
        with pytest.raises(HukeResponseError, match="data is missing or null"):
            client.search_trades(start=START_MS, end=END_MS, page_size=PAGE)


def test_a_null_page_1_is_an_empty_window_when_the_client_is_told_so(clock: Clock) -> None:
    """For a Huke that answers "nothing matches" with null data on page 1."""
    fake = make_fake(clock, 0)
    fake.listing_fault("null_data", page=1)
    with fake.client(null_first_page_is_empty=True) as client:
        assert list(client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE)) == []
        page = client.search_trades(start=START_MS, end=END_MS, page_size=PAGE)
    assert (page.trades, page.total, page.has_next, page.raw) == ([], None, False, None)
    assert pages_asked(fake) == [1, 1]


def test_an_empty_page_while_the_total_says_more_is_a_consistency_error(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    fake = make_fake(clock)
    fake.listing_fault("empty", page=2)
    got: list[str] = []
    with fake.client() as client, caplog.at_level("WARNING", logger="huke_client"):
        trades = client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE)
        with pytest.raises(HukeConsistencyError) as info:
            collect(trades, got)
    assert info.value.kind == "short"
    assert info.value.totals_seen == (N,)
    assert "the listing ended on page 2 after 10 trades while its total says 25" in str(info.value)
    assert pages_asked(fake) == [1, 2] * 4  # three restarts, then the error
    assert got == all_tids()[:PAGE] * 4  # page 1 of each reading; never the empty page 2
    assert len(warnings_of(caplog)) == 3


def test_an_empty_page_once_is_read_again_and_loses_nothing(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    fake = make_fake(clock)
    fake.listing_fault("empty", page=2, times=1)
    with fake.client() as client, caplog.at_level("WARNING", logger="huke_client"):
        got = tids(list(client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE)))
    assert pages_asked(fake) == [1, 2, 1, 2, 3]
    assert got == all_tids()[:PAGE] + all_tids()  # page 1 twice: dedupe by tid
    [warning] = warnings_of(caplog)
    assert "the listing ended on page 2 after 10 trades while its total says 25" in warning
    assert "restart 1 of at most 3" in warning


def test_a_short_page_in_the_middle_is_read_again(clock: Clock) -> None:
    fake = make_fake(clock)
    fake.listing_fault("short", page=2, times=1)
    with fake.client() as client:
        got = tids(list(client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE)))
    assert pages_asked(fake) == [1, 2, 1, 2, 3]
    assert set(got) == set(all_tids())


def test_a_total_lower_than_full_pages_delivered_is_a_consistency_error(clock: Clock) -> None:
    fake = make_fake(clock)
    fake.listing_fault("total", total=below_page_size)
    with fake.client() as client, pytest.raises(HukeConsistencyError) as info:
        list(client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE, max_restarts=1))
    assert info.value.kind == "overfull"
    assert "the pages delivered 10 trades by page 1, more than the total of 9" in str(info.value)
    assert pages_asked(fake) == [1, 1]


def test_a_total_that_counts_one_page_no_longer_hides_the_next_pages(clock: Clock) -> None:
    """A total equal to what page 1 holds: before, page 1 reached it and the window ended there,
    OK; now the full page asks for page 2, which shows the total wrong."""
    fake = make_fake(clock, 15)
    fake.listing_fault("total", total=PAGE)
    got: list[str] = []
    with fake.client() as client:
        trades = client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE, max_restarts=0)
        with pytest.raises(HukeConsistencyError) as info:
            collect(trades, got)
    assert got == all_tids(PAGE)
    assert pages_asked(fake) == [1, 2]
    assert info.value.kind == "overfull"
    assert "the pages delivered 15 trades by page 2, more than the total of 10" in str(info.value)


def test_a_full_last_page_costs_one_empty_page_more(clock: Clock) -> None:
    fake = make_fake(clock, 2 * PAGE)
    with fake.client() as client:
        pages = list(client.iter_trade_pages(start=START_MS, end=END_MS, page_size=PAGE))
    assert [(p.page, len(p.trades), p.has_next) for p in pages] == [
        (1, PAGE, True),
        (2, PAGE, True),
        (3, 0, False),
    ]


def test_a_capped_server_whose_last_page_is_lost_is_an_error(clock: Clock) -> None:
    fake = make_fake(clock)
    search = fake._search_trades

    def capped(body: dict[str, Any]) -> Any:  # serves 5 a page, whatever is asked
        body["timeRanges"][0]["pageSize"] = "5"
        return search(body)

    fake.add_route("trade/searchTrades", capped)
    fake.listing_fault("empty", page=5)
    with fake.client() as client, pytest.raises(HukeConsistencyError) as info:
        list(client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE, max_restarts=0))
    assert info.value.kind == "short"
    assert pages_asked(fake) == [1, 2, 3, 4, 5]


# -- async parity --------------------------------------------------------------------------------


async def test_async_page_2_without_data_is_an_error(clock: Clock) -> None:
    fake = make_fake(clock)
    fake.listing_fault("no_data", page=2)
    got: list[str] = []
    async with fake.async_client(retry=INSTANT, max_retries=1) as client:
        trades = client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE)
        with pytest.raises(HukeResponseError, match="data is missing or null"):
            await acollect(trades, got)
    assert got == all_tids()[:PAGE]
    assert pages_asked(fake) == [1, 2, 2]


async def test_async_an_empty_page_is_read_again_then_an_error(clock: Clock) -> None:
    fake = make_fake(clock)
    fault = fake.listing_fault("empty", page=2, times=1)
    async with fake.async_client() as client:
        got = [
            t["tid"] async for t in client.iter_trades(start=START_MS, end=END_MS, page_size=PAGE)
        ]
        assert set(got) == set(all_tids())
        assert not fault.active
        fake.listing_fault("empty", page=2)
        with pytest.raises(HukeConsistencyError) as info:
            async for _ in client.iter_trades(
                start=START_MS, end=END_MS, page_size=PAGE, max_restarts=2
            ):
                pass
    assert info.value.kind == "short"
    assert info.value.max_restarts == 2


async def test_async_a_total_lower_than_delivered_is_an_error(clock: Clock) -> None:
    fake = make_fake(clock)
    fake.listing_fault("total", total=below_page_size)
    async with fake.async_client() as client:
        with pytest.raises(HukeConsistencyError) as info:
            async for _ in client.iter_trade_pages(start=START_MS, end=END_MS, page_size=PAGE):
                pass
    assert info.value.kind == "overfull"


# -- FakeHuke.listing_fault ----------------------------------------------------------------------


def raw(fake: FakeHuke, endpoint: str, body: dict[str, Any]) -> Any:
    """The whole decoded reply (envelope included) of one signed request."""
    with fake.client() as client:
        reply = client._http.post(
            f"https://huke.163.com/openapi/{endpoint}",
            content=json.dumps(body).encode(),
            auth=client.auth,
        )
    return reply.json()


def raw_pages(fake: FakeHuke, pages: Sequence[int]) -> list[dict[str, Any]]:
    return [
        raw(
            fake,
            "trade/searchTrades",
            {
                "source": "2",
                "dealerList": [],
                "timeRanges": [
                    {
                        "timeType": "1",
                        "startTime": str(START_MS),
                        "endTime": str(END_MS),
                        "page": str(page),
                        "pageSize": str(PAGE),
                    }
                ],
            },
        )
        for page in pages
    ]


@pytest.mark.parametrize(
    ("kind", "options", "expected"),
    [
        ("no_data", {}, {"code": 200, "msg": "success"}),
        ("null_data", {}, {"code": 200, "msg": "success", "data": None}),
        ("empty", {}, {"code": 200, "msg": "success", "data": {"list": [], "total": N}}),
        ("short", {}, 9),
        ("total", {"total": 3}, 3),
        ("total", {"total": lambda served: served.total * 2}, 2 * N),
    ],
)
def test_listing_fault_kinds(clock: Clock, kind: str, options: Any, expected: Any) -> None:
    fake = make_fake(clock)
    fault = fake.listing_fault(kind, page=2, **options)
    first, second, third = raw_pages(fake, [1, 2, 3])
    assert (len(first["data"]["list"]), first["data"]["total"]) == (PAGE, N)  # untouched
    assert len(third["data"]["list"]) == 5
    if kind == "short":
        assert [t["tid"] for t in second["data"]["list"]] == all_tids()[PAGE : 2 * PAGE - 1]
    elif kind == "total":
        assert second["data"]["total"] == expected
        assert len(second["data"]["list"]) == PAGE
    else:
        assert second == expected
    assert [(s.page, s.total, len(s.trades)) for s in fault.struck] == [(2, N, PAGE)]


def test_listing_fault_times_when_and_cancel(clock: Clock) -> None:
    fake = make_fake(clock)
    twice = fake.listing_fault("empty", times=2, when=lambda served: served.page > 1)
    pages = raw_pages(fake, [1, 2, 3, 2])
    assert [len(p["data"]["list"]) for p in pages] == [PAGE, 0, 0, PAGE]
    assert not twice.active
    assert repr(twice) == "ListingFault('empty', page=None, times=2, struck=2, active=False)"
    every = fake.listing_fault("null_data")
    assert [p["data"] for p in raw_pages(fake, [1, 3])] == [None, None]
    every.cancel()
    assert [len(p["data"]["list"]) for p in raw_pages(fake, [1])] == [PAGE]
    assert fake.trades == make_fake(clock).trades  # the store is never changed


def test_listing_faults_strike_in_order_and_a_missing_data_ends_it(clock: Clock) -> None:
    fake = make_fake(clock, data_shape="list")
    fake.listing_fault("short", page=1)
    gone = fake.listing_fault("no_data", page=1, times=1)
    after = fake.listing_fault("empty", page=1)
    [first, second] = raw_pages(fake, [1, 1])
    assert first == {"code": 200, "msg": "success"}
    assert len(gone.struck) == 1
    assert after.struck[0].page == 1
    assert second["data"] == []


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("lost", {}, "kind must be one of"),
        ("total", {}, "total= is required"),
        ("empty", {"total": 3}, "total= is required"),
        ("empty", {"page": 0}, "page must be >= 1"),
        ("empty", {"times": 0}, "times must be >= 1"),
    ],
)
def test_listing_fault_checks_its_arguments(
    clock: Clock, kind: str, options: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_fake(clock).listing_fault(kind, **options)


def test_listing_fault_names_are_public() -> None:
    assert LISTING_FAULT_KINDS == ("no_data", "null_data", "empty", "short", "total")
    assert repr(NO_DATA) == "NO_DATA"
    assert ListingFault("empty").active


def test_a_route_may_answer_without_data(clock: Clock) -> None:
    fake = FakeHuke(APP_KEY, APP_SECRET, clock=clock)
    fake.add_route("customer/fields", lambda body: NO_DATA)
    assert raw(fake, "customer/fields", {}) == {"code": 200, "msg": "success"}
    with fake.client() as client:
        assert client.request("customer/fields") is None


# -- a page served again in place of another ------------------------------------------------------


def _page(plan: PagePlan, ids: list[str], total: int | None, page_size: int = 3) -> Any:
    assert plan.next_call() is not None
    items = [{"tid": ident, "buyerCid": f"b{ident}", "createTime": 1} for ident in ids]
    return plan.record(count=len(ids), page_size=page_size, total=total, items=items)


@pytest.mark.parametrize("total", [7, None])
def test_a_page_served_again_restarts_the_window_then_fails(total: int | None) -> None:
    plan = PagePlan([(0, 9)], max_pages=100, max_restarts=1)
    assert _page(plan, ["a", "b", "c"], total) is None
    restart = _page(plan, ["a", "b", "c"], total)  # page 2 is page 1 again
    assert isinstance(restart, Restart)
    assert (restart.kind, restart.page) == ("repeated", 2)
    assert plan.next_call() == (0, 9, 1)
    assert _page(plan, ["a", "b", "c"], total) is None
    with pytest.raises(HukeConsistencyError) as info:
        _page(plan, ["a", "b", "c"], total)
    assert info.value.kind == "repeated"
    assert "came a second time" in str(info.value)


def test_repeats_matched_by_growth_are_followed() -> None:
    """An insertion on a page already read shifts one trade into the next page, and the total
    grows by one: that repeat is explained, the window goes on."""
    plan = PagePlan([(0, 9)], max_pages=100)
    assert _page(plan, ["a", "b", "c"], 5) is None
    assert _page(plan, ["c", "d", "e"], 6) is None
    assert _page(plan, [], 6) is None
    assert plan.next_call() is None


def test_without_a_total_only_a_page_of_nothing_but_repeats_is_wrong() -> None:
    plan = PagePlan([(0, 9)], max_pages=100)
    assert _page(plan, ["a", "b", "c"], None) is None
    assert _page(plan, ["c", "d", "e"], None) is None  # could be an insertion
    restart = _page(plan, ["d", "e", "a"], None)
    assert isinstance(restart, Restart)
    assert restart.kind == "repeated"


def test_one_trade_twice_on_a_page_is_no_repeat() -> None:
    plan = PagePlan([(0, 9)], max_pages=100)
    assert _page(plan, ["a", "a", "b"], 3) is None
    assert _page(plan, [], 3) is None
    assert plan.next_call() is None


def test_one_id_for_another_buyer_or_time_is_another_trade() -> None:
    """Some shops' ids are unique per shop only: the buyer and the time tell the trades apart."""
    plan = PagePlan([(0, 9)], max_pages=100)
    assert _page(plan, ["a", "b", "c"], 6) is None
    assert plan.next_call() == (0, 9, 2)
    other = [
        {"tid": "a", "buyerCid": "someone else", "createTime": 1},
        {"tid": "b", "buyerCid": "bb", "createTime": 2},
        {"tid": "d", "buyerCid": "bd", "createTime": 1},
    ]
    assert plan.record(count=3, page_size=3, total=6, items=other) is None


def test_pages_beyond_the_memory_are_forgotten_so_memory_stays_flat() -> None:
    from huke_client._plan import REPEAT_MEMORY_PAGES

    plan = PagePlan([(0, 9)], max_pages=10_000)
    for n in range(REPEAT_MEMORY_PAGES * 3):
        assert _page(plan, [f"{n}-{i}" for i in range(3)], None) is None
    assert len(plan._recent) == REPEAT_MEMORY_PAGES * 3
