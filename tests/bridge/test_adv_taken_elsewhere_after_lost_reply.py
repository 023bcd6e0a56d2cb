"""A lost reply turns a refusal into "existed": the number is held by ANOTHER organisation's
customer (account-wide numbering), so K/3 refuses the create. Without a fault the trade ends
"failed" (correct: no customer in its org). If the first reply is lost, the retry gets the same
"number already used" and the bridge concludes "the first save landed": status "existed", run
OK, watermark advanced, while no customer exists in the trade's organisation (silent loss)."""

from huke_k3_bridge import FileState
from k3cloud_client.testing import FakeK3Cloud

from .conftest import K3_CREDENTIALS, Stage


def _stage() -> tuple[Stage, str]:
    stage = Stage()
    stage.fake_k3 = FakeK3Cloud(
        **K3_CREDENTIALS, organizations={1: "100", 2: "200"}, number_scope="account"
    )
    trades = stage.generate(1, buyers=1)  # default transform: org "100"
    number = trades[0]["buyerCid"]
    stage.fake_k3.seed(
        "BD_Customer",
        [{"FNumber": number, "FName": "org 200", "FCreateOrgId": "200", "FUseOrgId": "200"}],
    )
    return stage, number


def test_baseline_without_fault_is_failed():
    stage, _ = _stage()
    report = stage.sync()
    assert report.outcomes[0].status == "failed"


def test_lost_reply_does_not_turn_a_refusal_into_existed(tmp_path):
    stage, number = _stage()
    stage.fake_k3.inject_reply_lost(times=1, path="BatchSave")
    report = stage.sync(state=FileState(tmp_path / "s.json"))
    in_org = [r for r in stage.fake_k3.records("BD_Customer") if r["FUseOrgId"]["FNumber"] == "100"]
    o = report.outcomes[0]
    assert in_org or not report.ok, (
        f"run OK ({o.status}: {o.reason}); watermark {report.watermark}; but no customer "
        f"{number} exists in organisation 100"
    )
