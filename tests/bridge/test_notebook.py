"""The bridge in a notebook: the report's HTML stays small, its times keep the window's zone, the
fetch bar knows its total, tqdm does not warn without ipywidgets, and ``search=`` reaches Huke."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from huke_client import SearchOptions, to_epoch_ms
from huke_client.testing import FakeHuke
from huke_k3_bridge import FileState, ProgressEvent, SyncOptions, SyncReport, TradeOutcome
from huke_k3_bridge.__main__ import main
from huke_k3_bridge._progress import Progress, _Tqdm, _tqdm_factory, make_sink
from huke_k3_bridge._windows import split_windows

from .conftest import HOUR_MS, HUKE_KEY, HUKE_SECRET, K3_CREDENTIALS, Stage

ROOT = Path(__file__).resolve().parents[2]
CST = timezone(timedelta(hours=8))

# -- the report's HTML -----------------------------------------------------------------------


def _big_report(n: int) -> SyncReport:
    statuses = ("created", "merged", "merged", "existed", "skipped", "failed", "uncertain")
    reason = "BatchSave refused the customer: " + "违反字段唯一性要求 <x> " * 40
    outcomes = tuple(
        TradeOutcome(
            i,
            statuses[i % len(statuses)],
            trade_id=f"HK{i:013d}",
            buyer_cid=f"wm{i:012x}",
            number=f"wm{i:012x}",
            reason=None if statuses[i % len(statuses)] in ("created", "existed") else reason,
            merged_into=0 if statuses[i % len(statuses)] == "merged" else None,
        )
        for i in range(n)
    )
    start = datetime(2024, 5, 31, 16, tzinfo=CST)
    return SyncReport(
        start,
        start + timedelta(hours=20),
        outcomes,
        errors=tuple(f"window {i} failed: " + "x" * 2000 for i in range(30)),
        notes=tuple(f"note {i}: " + "y" * 2000 for i in range(30)),
        elapsed=123.456,
    )


def test_a_report_of_50000_trades_renders_a_summary_and_the_first_rows_in_16_kb() -> None:
    report = _big_report(50_000)
    html = report._repr_html_()
    assert len(html.encode()) < 16_000
    assert "Customer sync 2024-05-31 16:00:00+08:00 .. 2024-06-01 12:00:00+08:00: NOT OK" in html
    assert "<td>50000</td>" in html  # the total, beside the counts
    assert "<th>duration</th><td>123.46 s</td>" in html
    assert "<th>errors</th><td>30</td>" in html
    assert "25 more rows not shown: see report.errors" in html
    assert "25 more rows not shown: see report.notes" in html
    assert "49980 more rows not shown: see report.outcomes" in html
    # The trades to act on come first: failed, then uncertain (skipped when there is room).
    listing = html.rsplit("<table>", 1)[1]
    statuses = [row.split("</td><td>")[1] for row in listing.split("<tr><td>")[1:]]
    assert statuses == ["failed"] * 20
    assert "<x>" not in html
    assert len(repr(report)) < 200


def test_a_small_report_lists_the_failures_first_then_the_rest_in_order() -> None:
    report = _big_report(14)
    listing = report._repr_html_().rsplit("<table>", 1)[1]
    positions = [int(row.split("</td>")[0]) for row in listing.split("<tr><td>")[1:]]
    assert positions == [5, 12, 6, 13, 4, 11, 0, 1, 2, 3, 7, 8, 9, 10]
    assert "tfoot" not in listing


# -- times in the window's zone --------------------------------------------------------------


@pytest.fixture
def local_zone() -> Iterator[Callable[[str], None]]:
    """Sets the process's local time zone (POSIX ``TZ``) for the test, then restores it."""
    before = os.environ.get("TZ")

    def use(zone: str) -> None:
        os.environ["TZ"] = zone
        time.tzset()

    yield use
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.parametrize("engine", ["sync", "async"])
async def test_report_times_are_in_the_zone_of_the_window_given(
    engine: str, local_zone: Callable[[str], None], tmp_path: Path
) -> None:
    local_zone("XXX+03")  # local time is -03:00: neither UTC nor the window's +08:00
    stage = Stage()
    stage.generate(30, buyers=10)
    state = FileState(tmp_path / "state.json")

    async def run(**options: Any) -> SyncReport:
        return stage.sync(**options) if engine == "sync" else await stage.async_sync(**options)

    start = datetime.fromtimestamp(stage.start / 1000, tz=CST)
    end = datetime.fromtimestamp(stage.end / 1000, tz=CST)
    report = await run(start=start, end=end, state=state)
    assert (to_epoch_ms(report.start), to_epoch_ms(report.end)) == (stage.start, stage.end)
    for moment in (report.start, report.end, report.watermark):
        assert moment is not None
        assert moment.utcoffset() == timedelta(hours=8)
    assert str(report).startswith(f"Customer sync {start:%Y-%m-%d %H:%M:%S}+08:00 .. ")
    assert "+08:00 .. " in report._repr_html_()
    assert json.loads(report.to_json())["start"].endswith("+08:00")

    resumed = await run(start=None, end=end + timedelta(minutes=1), state=state)
    assert resumed.resumed_from is not None
    assert resumed.resumed_from.utcoffset() == timedelta(hours=8)
    assert "resumed from the stored watermark: " in str(resumed)
    assert str(resumed).split("resumed from the stored watermark: ")[1][19:25] == "+08:00"

    by_ms = await run(start=stage.start, end=stage.end)  # epoch ms: local time
    assert by_ms.start.utcoffset() == by_ms.end.utcoffset() == timedelta(hours=-3)


def test_the_cli_since_shows_the_local_time_zone(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    local_zone: Callable[[str], None],
) -> None:
    local_zone("XYZ-05:30")
    stage = Stage()
    stage.generate(5, buyers=3)
    with stage.fake_huke.serve() as huke_server, stage.fake_k3.serve() as k3_server:
        for name in list(os.environ):
            if name.startswith(("HUKE_", "K3CLOUD_")):
                monkeypatch.delenv(name)
        monkeypatch.setenv("HUKE_APP_KEY", HUKE_KEY)
        monkeypatch.setenv("HUKE_APP_SECRET", HUKE_SECRET)
        monkeypatch.setenv("HUKE_BASE_URL", huke_server.url + "/openapi")
        monkeypatch.setenv("K3CLOUD_SERVER_URL", k3_server.url + "/k3cloud/")
        for key, value in K3_CREDENTIALS.items():
            monkeypatch.setenv(f"K3CLOUD_{key.upper()}", value)
        assert main(["sync", "--since", "20h", "--no-progress"]) == 0
    headline = capsys.readouterr().out.splitlines()[0]
    assert headline.startswith("Customer sync ")
    assert headline.count("+05:30") == 2, headline


# -- the fetch bar's total -------------------------------------------------------------------


def _fetch_events(events: list[ProgressEvent]) -> list[ProgressEvent]:
    return [event for event in events if event.phase == "fetch"]


def test_the_fetch_total_grows_by_each_windows_total_as_its_first_page_arrives() -> None:
    stage = Stage()
    trades = stage.generate(250, buyers=50)
    events: list[ProgressEvent] = []
    stage.sync(progress=events.append, window=timedelta(hours=5), page_size=30)
    fetch = _fetch_events(events)
    assert fetch[0] == ProgressEvent("fetch", 0, None)
    assert fetch[-1] == ProgressEvent("fetch", 250, 250)
    windows = split_windows(stage.start, stage.end, timedelta(hours=5))
    sizes = [sum(1 for t in trades if a <= t["createTime"] <= b) for a, b in windows]
    announced = [sum(sizes[: i + 1]) for i in range(len(sizes)) if sizes[i]]
    assert len(announced) > 2
    assert sorted({e.total for e in fetch[1:] if e.total is not None}) == announced
    assert all(e.total is not None and e.done <= e.total for e in fetch[1:])


async def test_the_async_engine_shows_the_fetch_total_too() -> None:
    stage = Stage()
    stage.generate(250, buyers=50)
    events: list[ProgressEvent] = []
    await stage.async_sync(
        progress=events.append, window=timedelta(hours=5), page_size=30, fetch_concurrency=3
    )
    fetch = _fetch_events(events)
    assert fetch[-1] == ProgressEvent("fetch", 250, 250)
    assert all(e.total is not None and e.done <= e.total for e in fetch[1:])


def test_without_a_total_in_the_replies_the_fetch_total_stays_unknown() -> None:
    stage = Stage()
    stage.fake_huke = FakeHuke(HUKE_KEY, HUKE_SECRET, data_shape="list")
    stage.generate(40, buyers=10)
    events: list[ProgressEvent] = []
    stage.sync(progress=events.append, page_size=15)
    fetch = _fetch_events(events)
    assert fetch[-1].done == 40
    assert {e.total for e in fetch} == {None}


def test_a_window_delivering_more_than_its_total_raises_the_total() -> None:
    events: list[ProgressEvent] = []
    progress = Progress(make_sink(events.append))
    progress.start("fetch")
    progress.page_arrived(0, 10, 12)
    progress.advance(10)
    progress.page_arrived(1, 0, None)  # a window without a total counts what it fetched
    progress.advance(0)
    progress.page_arrived(0, 5, 99)  # only a window's first page says its total
    progress.advance(5)
    assert [(e.done, e.total) for e in events] == [(0, None), (10, 12), (10, 12), (15, 15)]


def test_a_tqdm_bar_learns_the_new_total_and_keeps_its_start_time() -> None:
    bars: list[Any] = []

    class Bar:
        def __init__(self, **options: Any) -> None:
            self.total = options["total"]
            self.n, self.start_t, self.resets = 0, 1.0, []
            bars.append(self)

        def reset(self, total: int | None = None) -> None:
            self.resets.append(total)
            self.n, self.start_t, self.total = 0, 99.0, total

        def refresh(self) -> None:
            pass

        def close(self) -> None:
            pass

    progress = Progress(_Tqdm(Bar))
    progress.start("fetch")
    progress.page_arrived(0, 100, 150)
    progress.advance(100)
    progress.page_arrived(0, 50, None)
    progress.advance(50)
    progress.page_arrived(1, 20, 30)
    progress.advance(20)
    (bar,) = bars
    assert bar.resets == [150, 180]
    assert (bar.n, bar.total, bar.start_t) == (170, 180, 1.0)


# -- tqdm with and without ipywidgets --------------------------------------------------------

_FAKE_TQDM = {
    "tqdm/__init__.py": "from .std import tqdm\n",
    "tqdm/std.py": """
        class TqdmWarning(Warning):
            pass


        class tqdm:
            kind = "text"

            def __init__(self, **options):
                self.total, self.n, self.start_t = options.get("total"), 0, 0.0

            def refresh(self):
                pass

            def close(self):
                pass
        """,
    # As tqdm.autonotebook in a notebook: the widget needs ipywidgets, else a warning.
    "tqdm/auto.py": """
        import warnings

        try:
            import ipywidgets
        except ImportError:
            from .std import TqdmWarning, tqdm
            warnings.warn("IProgress not found. Please update jupyter and ipywidgets.", TqdmWarning)
        else:
            from .notebook import tqdm
        """,
    "tqdm/notebook.py": """
        from . import std


        class tqdm(std.tqdm):
            kind = "widget"
        """,
}


@pytest.fixture
def fake_tqdm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A stand-in tqdm package on ``sys.path`` (tqdm is an optional dependency); any loaded
    tqdm or ipywidgets is set aside for the test."""
    for name, code in _FAKE_TQDM.items():
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(code), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))

    def loaded() -> list[str]:
        return [m for m in sys.modules if m.partition(".")[0] in ("tqdm", "ipywidgets")]

    for name in loaded():
        monkeypatch.delitem(sys.modules, name)
    yield tmp_path
    for name in loaded():  # the stand-ins; monkeypatch then puts back what was there
        del sys.modules[name]


def test_without_ipywidgets_the_text_bar_is_used_and_nothing_warns(
    fake_tqdm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # as if not installed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        factory = _tqdm_factory()
        sink = make_sink(True)
    assert factory is not None
    assert factory.kind == "text"
    assert isinstance(sink, _Tqdm)


def test_with_ipywidgets_tqdm_auto_chooses_the_widget(fake_tqdm: Path) -> None:
    (fake_tqdm / "ipywidgets").mkdir()
    (fake_tqdm / "ipywidgets" / "__init__.py").write_text("", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        factory = _tqdm_factory()
    assert factory is not None
    assert factory.kind == "widget"


def test_the_notebook_extra_brings_tqdm_and_ipywidgets() -> None:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    with open(ROOT / "pyproject.toml", "rb") as file:
        extras = tomllib.load(file)["project"]["optional-dependencies"]
    names = {line.split(">=")[0] for line in extras["notebook"]}
    assert names == {"tqdm", "ipywidgets"}


# -- search= ---------------------------------------------------------------------------------


def _stage_answering_under(items_key: str) -> tuple[Stage, int]:
    """A stage whose Huke lists 40 trades under ``items_key``; and how many buyers they have."""
    stage = Stage()
    stage.fake_huke = FakeHuke(HUKE_KEY, HUKE_SECRET, items_key=items_key)
    trades = stage.generate(40, buyers=12)
    return stage, len({trade["buyerCid"] for trade in trades})


@pytest.mark.parametrize("engine", ["sync", "async"])
async def test_search_options_reach_every_window_of_the_run(engine: str) -> None:
    stage, buyers = _stage_answering_under("tradeList")

    async def run(**options: Any) -> SyncReport:
        return stage.sync(**options) if engine == "sync" else await stage.async_sync(**options)

    lost = await run()
    assert not lost.ok
    assert lost.total == 0
    assert "items_key" in lost.errors[0]

    search = SearchOptions(items_key="tradeList", extra={"shopId": "S9"})
    stage.fake_huke.received.clear()
    report = await run(search=search, page_size=20, window=timedelta(hours=4))
    assert report.ok
    assert report.total == 40
    assert report.counts["created"] == buyers
    bodies = [json.loads(request.content) for request in stage.fake_huke.received]
    assert bodies
    assert all(body["shopId"] == "S9" for body in bodies)
    assert {body["timeRanges"][0]["pageSize"] for body in bodies} == {"20"}
    widths = {
        int(body["timeRanges"][0]["endTime"]) - int(body["timeRanges"][0]["startTime"])
        for body in bodies
    }
    assert max(widths) <= 4 * HOUR_MS  # the run's windows, not one search over the range


def test_search_options_that_contradict_the_run_are_refused() -> None:
    assert SyncOptions(page_size=50, search=SearchOptions(page_size=50)).huke_search.page_size == 50
    assert SyncOptions(page_size=50, search=SearchOptions()).huke_search.page_size == 50
    with pytest.raises(ValueError, match=r"search\.page_size=50 contradicts page_size=100"):
        SyncOptions(search=SearchOptions(page_size=50))
    with pytest.raises(ValueError, match=r"search\.window=.* give window="):
        SyncOptions(search=SearchOptions(window=timedelta(hours=1)))
    with pytest.raises(TypeError, match=r"search must be a huke_client\.SearchOptions"):
        SyncOptions(search={"items_key": "tradeList"})  # type: ignore[arg-type]
    options = SyncOptions(search=SearchOptions(items_key="k", max_pages=7))
    assert attrs.asdict(options.huke_search, recurse=False) == attrs.asdict(
        SearchOptions(items_key="k", max_pages=7, page_size=100, window=None), recurse=False
    )
