"""on_existing="update": the bridge sends FCUSTID=<looked-up id>; a reply whose SuccessEntity
has the right Number but another Id is accepted, and that other id is reported as the trade's
customer_id (claim 7: "a wrong customer id is never reported"). For an update the expected id is
known, so the reply can be verified; a different Id may also mean the server created a new record
instead of updating (a duplicate)."""

from typing import Any

from k3cloud_client.testing import FakeK3Cloud

from .conftest import K3_CREDENTIALS, Stage

BOGUS = 999_999


class WrongIdK3(FakeK3Cloud):
    def _batch_save(self, form_id: Any, data: dict[str, Any]) -> Any:
        reply = super()._batch_save(form_id, data)
        for entity in reply["Result"]["ResponseStatus"]["SuccessEntitys"]:
            entity["Id"] = BOGUS  # right Number, right DIndex, wrong Id
        return reply


def test_update_reply_with_wrong_id_is_not_reported():
    stage = Stage()
    stage.fake_k3 = WrongIdK3(**K3_CREDENTIALS)
    trades = stage.generate(1, buyers=1)
    number = trades[0]["buyerCid"]
    [real_id] = stage.fake_k3.seed("BD_Customer", [{"FNumber": number, "FName": "old"}])
    report = stage.sync(on_existing="update")
    [outcome] = report.outcomes
    assert outcome.customer_id in (None, str(real_id)), (
        f"status {outcome.status}: reported customer_id {outcome.customer_id}, the record "
        f"updated is {real_id}"
    )
