"""Issue 9.5: every BatchSave option a transform sets reaches the wire as given, or is refused
when the transform is made."""

from __future__ import annotations

from typing import Any

import pytest

from huke_client.testing import fake_trade
from huke_k3_bridge import SAVE_OPTIONS, CustomerTransform

from .conftest import HOUR_MS, Stage

SAMPLES: dict[str, Any] = {
    "IsAutoSubmitAndAudit": False,
    "IsVerifyBaseDataField": True,
    "IsDeleteEntry": False,
    "ValidateFlag": False,
    "NumberSearch": False,
    "BatchCount": 4,
    "InterationFlags": "STK_InvCheckResult",
    "NeedReturnFields": ["FNumber", "FName"],
    "IsEntryBatchFill": False,
    "IsAutoAdjustField": True,
    "IgnoreInterationFlag": True,
    "IsControlPrecision": True,
    "ValidateRepeatJson": True,
    "SubSystemId": "BD",
}


def test_every_option_has_a_sample() -> None:
    assert set(SAMPLES) == set(SAVE_OPTIONS)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_option_reaches_the_wire_as_given(stage: Stage, name: str) -> None:
    stage.fake_huke.add_trades([fake_trade(create_time=stage.now_ms - HOUR_MS, tid="T1")])
    transform = CustomerTransform(save_flags={name: SAMPLES[name]})
    stage.sync(transform=transform)
    (save,) = stage.sent("BatchSave")
    assert save["data"][name] == SAMPLES[name]


def test_validate_flag_false_is_sent_as_false(stage: Stage) -> None:
    stage.fake_huke.add_trades([fake_trade(create_time=stage.now_ms - HOUR_MS, tid="T1")])
    report = stage.sync(transform=CustomerTransform(save_flags={"ValidateFlag": False}))
    (save,) = stage.sent("BatchSave")
    assert save["data"]["ValidateFlag"] is False
    # The scheme's own flags stay unless overridden.
    assert save["data"]["IsAutoSubmitAndAudit"] is True
    assert report.ok


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"ValidFlag": False}, "'ValidFlag' is not a BatchSave option"),
        ({"NeedUpDateFields": ["FName"]}, "sets NeedUpDateFields itself"),
        ({"Model": []}, "'Model' is not a BatchSave option"),
        ({"ValidateFlag": "false"}, "ValidateFlag must be True or False"),
        ({"BatchCount": 0}, "BatchCount must be an int >= 1"),
        ({"NeedReturnFields": "FNumber"}, "NeedReturnFields must be a list"),
    ],
)
def test_an_unknown_or_mistyped_option_is_refused_at_construction(
    flags: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        CustomerTransform(save_flags=flags)


def test_a_user_transform_with_bad_save_flags_is_refused_before_any_request(stage: Stage) -> None:
    from k3cloud_client import Customer

    def transform(trade: Any) -> Customer:
        return Customer("c1", "n")

    transform.save_flags = {"ValidateFlags": False}  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="'ValidateFlags' is not a BatchSave option"):
        stage.sync(transform=transform)
    assert not stage.fake_k3.received
