"""A Huke page served twice (page 2 repeats page 1) with an honest total: PagePlan counts
delivered *items*, not distinct trades, so the count reaches the total and the window is taken as
complete although 10 trades were never seen. The bridge merges the repeats ("fetched twice"),
reports OK and stores a watermark past the lost trades (claims 1 and 10). Both engines."""

import asyncio
from typing import Any

import pytest

from huke_client.testing import FakeHuke
from huke_k3_bridge import FileState

from .conftest import Stage


class RepeatingHuke(FakeHuke):
    def _search_trades(self, body: dict[str, Any]) -> Any:
        entry = body["timeRanges"][0]
        if int(entry["page"]) == 2:
            entry["page"] = "1"  # hostile: page 2 is a copy of page 1 (same, true total)
        return super()._search_trades(body)


@pytest.mark.parametrize("engine", ["sync", "async"])
def test_repeated_page_does_not_complete_window(tmp_path, engine):
    stage = Stage()
    stage.fake_huke = RepeatingHuke("bridge-test-key", "bridge-test-secret")
    trades = stage.generate(25, buyers=25)  # 3 pages of 10
    options = {"page_size": 10, "window": None, "state": FileState(tmp_path / "s.json")}
    if engine == "sync":
        report = stage.sync(**options)
    else:
        report = asyncio.run(stage.async_sync(fetch_concurrency=1, **options))
    fetched = {o.trade_id for o in report.outcomes}
    lost = {t["tid"] for t in trades} - fetched
    assert not lost or (not report.ok and report.watermark is None), (
        f"run ok={report.ok}, watermark={report.watermark}, {len(lost)} trades never fetched"
    )
