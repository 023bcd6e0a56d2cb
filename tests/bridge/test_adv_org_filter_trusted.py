"""The existence lookup asks only FCUSTID,FNumber and trusts the server to have applied
"FUseOrgId.FNumber = <org>". A server that ignores (or cannot apply) that condition returns
another organisation's record, and with on_existing="update" the bridge overwrites org 200's
customer with data meant for org 100 (claim 8: "an update targets that org's record"). Asking
for FUseOrgId.FNumber too and checking it would refuse such a row."""

import re
from typing import Any

from k3cloud_client.testing import FakeK3Cloud

from .conftest import K3_CREDENTIALS, Stage


class OrgBlindK3(FakeK3Cloud):
    def _query(self, data: dict[str, Any], *, as_objects: bool) -> Any:
        data = dict(data)
        data["FilterString"] = re.sub(
            r"\s+and\s+\(FUseOrgId\.FNumber = '[^']*'\)", "", str(data.get("FilterString") or "")
        )
        return super()._query(data, as_objects=as_objects)


def test_update_never_touches_another_orgs_record():
    stage = Stage()
    stage.fake_k3 = OrgBlindK3(**K3_CREDENTIALS, organizations={1: "100", 2: "200"})
    trades = stage.generate(1, buyers=1)  # default transform: use org "100"
    number = trades[0]["buyerCid"]
    stage.fake_k3.seed(
        "BD_Customer",
        [{"FNumber": number, "FName": "org 200's own", "FCreateOrgId": "200", "FUseOrgId": "200"}],
    )
    report = stage.sync(on_existing="update")
    [record] = [
        r for r in stage.fake_k3.records("BD_Customer") if r["FUseOrgId"]["FNumber"] == "200"
    ]
    assert record["FName"] == "org 200's own", (
        f"org 200's customer was overwritten: {record['FName']!r}; outcome "
        f"{report.outcomes[0].status} {report.outcomes[0].reason}"
    )


def test_skip_mode_does_not_call_another_orgs_record_existing():
    stage = Stage()
    stage.fake_k3 = OrgBlindK3(**K3_CREDENTIALS, organizations={1: "100", 2: "200"})
    trades = stage.generate(1, buyers=1)
    number = trades[0]["buyerCid"]
    stage.fake_k3.seed(
        "BD_Customer",
        [{"FNumber": number, "FName": "org 200's own", "FCreateOrgId": "200", "FUseOrgId": "200"}],
    )
    report = stage.sync()
    in_100 = [r for r in stage.fake_k3.records("BD_Customer") if r["FUseOrgId"]["FNumber"] == "100"]
    assert in_100 or not report.ok, (
        f"run OK, trade reported {report.outcomes[0].status} (id {report.outcomes[0].customer_id}) "
        "but no customer exists in its organisation 100"
    )
