"""Issue 9.2: a failure that affects the whole run is said once, with the fix; each trade's line
stays short."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from huke_k3_bridge import sync_customers
from k3cloud_client import K3CloudClient

from .conftest import K3_CREDENTIALS, Stage


def _sync_with(stage: Stage, **credentials: Any) -> Any:
    with (
        stage.fake_huke.client() as huke,
        K3CloudClient(
            "http://k3.test/k3cloud/",
            **credentials,
            http_client=httpx.Client(transport=stage.fake_k3.transport()),
        ) as k3,
    ):
        return sync_customers(huke, k3, start=stage.start, end=stage.end, progress=False)


@pytest.mark.parametrize("wrong", ["app_secret", "acct_id", "user_name"])
def test_wrong_credentials_are_one_run_level_error_with_the_hint(stage: Stage, wrong: str) -> None:
    trades = stage.generate(60, buyers=20, seed=2)
    credentials = dict(K3_CREDENTIALS)
    credentials[wrong] = "0" * 32 if wrong == "app_secret" else "nobody"
    report = _sync_with(stage, **credentials)
    assert len(report.errors) == 1, report.errors
    (error,) = report.errors
    for word in ("acct_id", "user_name", "app_id", "app_secret", "clock"):
        assert word in error
    assert json.loads(report.to_json())["errors"] == [error]
    # Nothing could be looked up or saved: each buyer's customer failed (its other trades merge).
    buyers = {t["buyerCid"] for t in trades if "buyerCid" in t}
    assert sorted(o.number for o in report.failures) == sorted(buyers)
    for outcome in report.failures:
        assert outcome.reason is not None
        assert len(outcome.reason) < 200, outcome.reason
        assert "see the run's errors" in outcome.reason
    assert stage.fake_k3.call_count("BatchSave") == 0


def test_a_wrong_password_is_one_run_level_error_with_the_hint(stage: Stage) -> None:
    stage.generate(30, buyers=10, seed=3)
    stage.fake_k3 = type(stage.fake_k3)(**K3_CREDENTIALS, password="right-password")
    report = _sync_with(
        stage,
        acct_id=K3_CREDENTIALS["acct_id"],
        user_name=K3_CREDENTIALS["user_name"],
        password="wrong-password",
    )
    assert len(report.errors) == 1, report.errors
    assert "password" in report.errors[0]
    assert all(len(str(o.reason)) < 200 for o in report.failures)
