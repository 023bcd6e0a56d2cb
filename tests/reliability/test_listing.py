"""A Huke listing that ends short or inconsistently never completes a window, under a real sync
over loopback sockets, for both engines.

Three ways a listing used to end a window quietly, the report OK and the watermark past trades
never seen: page 2 without ``data``; an empty page while the total says more; a total lower than
what full pages already delivered. Now each is a run-level error, the watermark stays before the
broken window, and the next run (the fault gone) fetches what was missed, every buyer ending in
K/3 Cloud exactly once.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from huke_client import to_epoch_ms
from huke_client.testing import ServedPage, fake_trade
from huke_k3_bridge import FileState

from .conftest import Engine, Stage, assert_accounted, assert_store_complete

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
#: The run's windows: four of 5 hours over the default 20-hour span (the async engine cuts each
#: into four sub-windows of 75 minutes, fetched side by side).
WINDOW = timedelta(hours=5)
#: Trades in the busy part of the second window: three pages (10, 10, 5) in either engine.
BUSY = 25


def below_page_size(served: ServedPage) -> int:
    """A total lower than what one full page delivers (the true one on a smaller page)."""
    return min(served.total, served.page_size - 1)


def lay_out(stage: Stage) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The first window quiet (one page whichever engine reads it), the second busy early on,
    the rest quiet. Some buyers come back in a later window. Returns (quiet first window, busy)."""
    at = stage.start

    def trade(i: int, ms: int, buyer: int) -> dict[str, Any]:
        return fake_trade(
            create_time=ms, tid=f"L{i:03d}", buyer_nick=f"买家{buyer}", buyer_cid=f"wmL{buyer:03d}"
        )

    first = [trade(i, at + 30 * MINUTE_MS + i * 45 * MINUTE_MS, i) for i in range(6)]
    # 10 to 58 minutes into the second window: inside the first sub-window the async engine reads.
    busy = [
        trade(100 + i, at + 5 * HOUR_MS + 10 * MINUTE_MS + 2 * i * MINUTE_MS, 100 + i)
        for i in range(BUSY)
    ]
    # Buyers who come back: one from the first window, one from the busy part.
    busy[3].update(buyerCid=first[1]["buyerCid"], buyerNick=first[1]["buyerNick"])
    later = [trade(200 + i, at + (11 + i) * HOUR_MS + i * MINUTE_MS, 200 + i % 4) for i in range(8)]
    later[5].update(buyerCid=busy[7]["buyerCid"], buyerNick=busy[7]["buyerNick"])
    stage.add(first + busy + later)
    return first, busy


@pytest.mark.parametrize(
    ("kind", "options", "error"),
    [
        ("no_data", {"page": 2}, ("HukeResponseError", "data is missing or null")),
        ("empty", {"page": 2}, ("HukeConsistencyError", "the listing ended on page 2")),
        ("total", {"total": below_page_size}, ("HukeConsistencyError", "more than the total")),
    ],
    ids=["page-2-without-data", "empty-page-while-total-says-more", "total-below-delivered"],
)
def test_an_inconsistent_listing_is_a_run_error_and_the_next_run_fetches_the_rest(
    stage: Stage,
    engine: Engine,
    tmp_path: Path,
    kind: str,
    options: dict[str, Any],
    error: tuple[str, str],
) -> None:
    first_window, busy = lay_out(stage)
    state = FileState(tmp_path / "watermark.json")
    fault = stage.huke.listing_fault(kind, **options)

    first = stage.run(engine, start=None, state=state, window=WINDOW)

    assert fault.struck, "the fault never struck: the scenario did not happen"
    assert any(s.total == BUSY for s in fault.struck)  # it struck the busy window
    assert not first.ok, str(first)
    [message] = first.errors
    assert "fetching trades" in message
    for part in error:
        assert part in message
    assert first.counts["failed"] == 0
    first.check(len(first.outcomes))
    # The watermark ends with the first window, the last one read whole: before the broken one.
    assert first.watermark is not None
    mark = to_epoch_ms(first.watermark)
    assert mark == stage.start + 5 * HOUR_MS - 1
    assert mark < min(t["createTime"] for t in busy)
    stored = state.load()
    assert stored is not None
    assert to_epoch_ms(stored) == mark
    fetched = {o.trade_id for o in first.outcomes}
    assert {t["tid"] for t in first_window} <= fetched
    assert {t["tid"] for t in busy} - fetched, "the broken window was read whole after all"
    assert set(stage.customers()) == {o.number for o in first.by_status("created")}

    fault.cancel()
    second = stage.run(engine, start=None, state=state, window=WINDOW)

    assert second.ok, str(second)
    assert second.resumed_from is not None
    resumed = to_epoch_ms(second.resumed_from)
    assert resumed == mark - state.overlap // timedelta(milliseconds=1)
    wanted = [t for t in stage.stream() if t["createTime"] >= resumed]
    assert {o.trade_id for o in second.outcomes} == {t["tid"] for t in wanted}
    assert {t["tid"] for t in busy} <= {o.trade_id for o in second.outcomes}
    assert second.counts["failed"] == 0
    assert second.watermark is not None
    assert to_epoch_ms(second.watermark) == stage.end
    # Every buyer in K/3 Cloud exactly once (stage.customers() fails on a number stored twice),
    # named after its latest trade.
    assert_store_complete(stage)
    assert len(stage.customers()) == len(stage.winners())


def test_a_fault_that_clears_within_the_run_costs_nothing(stage: Stage, engine: Engine) -> None:
    """An empty page 2 once, then the true one: the window is read again from page 1 and the run
    is OK, every trade accounted for once (a repeat merged into its first copy)."""
    lay_out(stage)
    fault = stage.huke.listing_fault("empty", page=2, times=1)
    report = stage.run(engine, window=WINDOW)
    assert len(fault.struck) == 1
    assert report.ok, str(report)
    firsts = list(dict.fromkeys(o.trade_id for o in report.outcomes))
    assert firsts == [t["tid"] for t in stage.stream()]
    assert report.counts["failed"] == 0
    assert_store_complete(stage)
    assert_accounted(stage.run(engine, window=WINDOW), stage)
