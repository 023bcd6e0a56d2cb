"""Two different trades that carry the same id (tid) but different buyers -- a hostile or
multi-shop Huke whose tids are only unique per shop/platform -- are merged as "fetched twice"
without comparing them: the second buyer's customer is never created, yet the run is OK and
the watermark moves past it (claim 10). A repeat whose customer key differs is not a repeat."""

from huke_client.testing import generate_trades

from .conftest import Stage


def test_same_tid_different_buyer_is_not_silently_dropped():
    stage = Stage()
    trades = list(
        generate_trades(2, start=stage.start + 1000, end=stage.end - 1000, buyers=2, seed=3)
    )
    trades[1]["tid"] = trades[0]["tid"]
    assert trades[0]["buyerCid"] != trades[1]["buyerCid"]
    stage.fake_huke.add_trades(trades)
    report = stage.sync()
    stored = set(stage.customers())
    missing = {t["buyerCid"] for t in trades} - stored
    assert not missing or not report.ok, (
        f"run OK ({report.counts}) but buyer(s) {missing} have no customer: "
        f"{[(o.status, o.reason) for o in report.outcomes]}"
    )
