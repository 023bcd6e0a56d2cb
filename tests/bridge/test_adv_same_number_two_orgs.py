"""One buyer number in two use organisations goes into ONE BatchSave call. The reply's
SuccessEntitys are verified only by Number, which both rows share, so a reply whose DIndex
values are reversed (a case _successes_by_position says it handles) attaches org 200's new id
to the org-100 trade and vice versa: a wrong customer id is reported for both (claim 7/8)."""

from typing import Any

from huke_client.testing import generate_trades
from huke_k3_bridge._trade import wire_fields
from k3cloud_client import Customer
from k3cloud_client.testing import FakeK3Cloud

from .conftest import K3_CREDENTIALS, Stage


class ReversedDIndexK3(FakeK3Cloud):
    def _batch_save(self, form_id: Any, data: dict[str, Any]) -> Any:
        reply = super()._batch_save(form_id, data)
        entities = reply["Result"]["ResponseStatus"]["SuccessEntitys"]
        n = len(data["Model"])
        for entity in entities:
            entity["DIndex"] = n - 1 - entity["DIndex"]  # reversed, Numbers intact
        return reply


def transform(trade: Any) -> Customer:
    f = wire_fields(trade)
    return Customer(f["buyerCid"], "buyer", create_org=f["org"], use_org=f["org"])


def test_same_number_in_two_orgs_gets_the_right_ids():
    stage = Stage()
    stage.fake_k3 = ReversedDIndexK3(**K3_CREDENTIALS, organizations={1: "100", 2: "200"})
    trades = list(generate_trades(2, start=stage.start + 1000, end=stage.end - 1000, buyers=1))
    trades[0]["org"], trades[1]["org"] = "100", "200"
    trades[1]["buyerCid"] = trades[0]["buyerCid"]
    stage.fake_huke.add_trades(trades)
    report = stage.sync(transform=transform)
    stored = {
        r["FUseOrgId"]["FNumber"]: str(r["FCUSTID"]) for r in stage.fake_k3.records("BD_Customer")
    }
    by_tid = {o.trade_id: o for o in report.outcomes}
    for trade in trades:
        outcome = by_tid[trade["tid"]]
        assert outcome.customer_id in (None, stored.get(trade["org"])), (
            f"trade in org {trade['org']}: {outcome.status}, reported id {outcome.customer_id}, "
            f"its record is {stored.get(trade['org'])} (records: {stored})"
        )
