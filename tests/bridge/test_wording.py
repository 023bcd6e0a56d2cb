"""Counts read as English: "1 row in 1 call", "2 rows in 2 calls", never "1 rows" or "row(s)",
in every log line, message and output that counts something for a user."""

from __future__ import annotations

import io
import logging
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from _huke_k3_core import Redactor, plural, read_env
from huke_client import HukeClient
from huke_client._plan import _problem
from huke_client.testing import FakeHuke, fake_trade
from huke_k3_bridge import SyncReport, TradeOutcome, sync_customers
from k3cloud_client import (
    BatchSaveError,
    BatchSaveResult,
    Customer,
    FailedRow,
    K3CloudClient,
    K3CloudConfigError,
    K3CloudPageLimitError,
    SavedRow,
)
from k3cloud_client._config import settings_from_env, settings_from_ini
from k3cloud_client.signing import split_app_id
from k3cloud_client.testing import TEST_APP_ID, FakeK3Cloud

from .conftest import FAST, K3_CREDENTIALS
from .stubs import StubHuke, StubK3


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((1, "row"), "1 row"),
        ((0, "row"), "0 rows"),
        ((2, "row"), "2 rows"),
        ((1, "entry", "entries"), "1 entry"),
        ((3, "entry", "entries"), "3 entries"),
        ((-1, "row"), "-1 rows"),
    ],
)
def test_plural(args: tuple[Any, ...], expected: str) -> None:
    assert plural(*args) == expected


def test_plural_without_the_count() -> None:
    assert plural(1, "setting", counted=False) == "setting"
    assert plural(2, "setting", counted=False) == "settings"
    assert plural(2, "retry", "retries", counted=False) == "retries"


def _k3(fake: FakeK3Cloud) -> K3CloudClient:
    return K3CloudClient(
        "http://k3.test/k3cloud/",
        **K3_CREDENTIALS,
        http_client=httpx.Client(transport=fake.transport()),
        retry=FAST,
    )


def _batch_save_lines(caplog: pytest.LogCaptureFixture, count: int, size: int) -> list[str]:
    caplog.clear()
    with (
        caplog.at_level(logging.INFO, logger="k3cloud_client"),
        _k3(FakeK3Cloud(**K3_CREDENTIALS)) as k3,
    ):
        customers = [Customer(f"C{count}-{i}", f"n{i}") for i in range(count)]
        k3.batch_save("BD_Customer", customers, chunk_size=size)
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("BatchSave ")]


def test_the_batch_save_log_line_counts_in_english(caplog: pytest.LogCaptureFixture) -> None:
    assert _batch_save_lines(caplog, 1, 10) == [
        "BatchSave BD_Customer: 1 row in 1 call: 1 saved, 0 failed (0 uncertain)"
    ]
    assert _batch_save_lines(caplog, 3, 2) == [
        "BatchSave BD_Customer: 3 rows in 2 calls: 3 saved, 0 failed (0 uncertain)"
    ]


def test_a_chunk_that_failed_whole_counts_its_rows(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeK3Cloud(**K3_CREDENTIALS)
    fake.inject_rate_limit(times=10, path="BatchSave")
    with caplog.at_level(logging.WARNING, logger="k3cloud_client"), _k3(fake) as k3:
        k3.batch_save("BD_Customer", [Customer("C1", "n")])
    assert any(
        "BatchSave BD_Customer: chunk 0 (1 row) failed as a whole" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]


def test_batch_save_error_counts_rows() -> None:
    one = BatchSaveResult(saved=[], failed=[FailedRow(0, None, "refused", None, number="C1")])
    assert str(BatchSaveError(one)).startswith("1 of 1 row was not saved: row 0: refused")
    two = BatchSaveResult(
        saved=[SavedRow(1, 7, "C2")],
        failed=[FailedRow(0, None, "no", None, number="C1"), FailedRow(2, None, "no", None)],
    )
    assert str(BatchSaveError(two)).startswith("2 of 3 rows were not saved")


def test_the_demo_counts_one_buyer_and_one_customer() -> None:
    from huke_k3_bridge._demo import run_demo

    out = io.StringIO()
    assert run_demo(trades=1, buyers=1, seed=1, progress=False, out=out) == 0
    text = out.getvalue()
    assert "from 1 buyer in the last 20 hours" in text
    assert "K/3 Cloud now holds 1 customer (" in text
    assert "1 buyers" not in text
    assert "1 customers" not in text


def test_a_save_refused_as_a_whole_for_one_customer_says_so() -> None:
    k3 = StubK3()

    def no_permission(models: list[dict[str, Any]], result: BatchSaveResult) -> BatchSaveResult:
        for model in models:
            k3.store.pop(model["FNumber"], None)
        failed = [
            FailedRow(i, None, "没有客户的新增权限", 2, number=m["FNumber"])
            for i, m in enumerate(models)
        ]
        return BatchSaveResult(saved=[], failed=failed)

    k3.on_save = no_permission
    huke = StubHuke([{"tid": "T1", "buyerNick": "n", "buyerCid": "c1"}])
    report = sync_customers(huke, k3, start=0, end=10_000, progress=False)  # type: ignore[arg-type]
    assert "after the client's retries, for 1 customer: " in report.errors[0]


def test_an_unconfirmed_save_counts_one_lookup() -> None:
    k3 = StubK3()

    def lost(models: list[dict[str, Any]], result: BatchSaveResult) -> BatchSaveResult:
        for model in models:
            k3.store.pop(model["FNumber"], None)
        failed = [
            FailedRow(r.index, None, "timed out", None, uncertain=True, number=r.number)
            for r in result.saved
        ]
        return BatchSaveResult(saved=[], failed=failed)

    k3.on_save = lost
    huke = StubHuke([{"tid": "T1", "buyerNick": "n", "buyerCid": "c1"}])
    report: SyncReport = sync_customers(
        huke,  # type: ignore[arg-type]
        k3,  # type: ignore[arg-type]
        start=0,
        end=10_000,
        progress=False,
        confirm_timeout=0,
    )
    (outcome,) = report.outcomes
    assert outcome.status == "uncertain"
    assert "not found in K/3 Cloud by 1 lookup over " in (outcome.reason or "")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "missing settings HUKE_A, HUKE_B: set them in the environment"),
        ({"HUKE_A": "x"}, "missing setting HUKE_B: set it in the environment"),
    ],
)
def test_missing_settings_are_counted(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        read_env(required=("HUKE_A", "HUKE_B"), error=ValueError, environ=environ)


def test_k3_settings_messages_count(tmp_path: Any) -> None:
    base = {"K3CLOUD_SERVER_URL": "http://h/k3cloud/", "K3CLOUD_ACCT_ID": "a"}
    with pytest.raises(K3CloudConfigError, match=r"^missing setting K3CLOUD_USER_NAME: set it"):
        settings_from_env(base)
    with pytest.raises(K3CloudConfigError, match=r"^missing settings K3CLOUD_APP_ID and "):
        settings_from_env({**base, "K3CLOUD_USER_NAME": "u"})
    ini = tmp_path / "conf.ini"
    ini.write_text("[config]\nx-kdapi-acctid = a\n", encoding="utf-8")
    with pytest.raises(K3CloudConfigError, match=r"^missing settings x-kdapi-serverurl, x-kdapi-u"):
        settings_from_ini(ini)
    with pytest.raises(K3CloudConfigError, match=r"^missing setting x-kdapi-appsec in \[config\]"):
        settings_from_ini(ini, given=("server_url", "user_name", "app_id"))
    ini.write_text("[config]\nx-kdapi-acctid = a\nnot a setting\n", encoding="utf-8")
    with pytest.raises(K3CloudConfigError, match=r"line 3: not a 'key = value' line"):
        settings_from_ini(ini)
    ini.write_text("[config]\nnot a setting\nnor this\n", encoding="utf-8")
    with pytest.raises(K3CloudConfigError, match=r"lines 2, 3: not a 'key = value' line"):
        settings_from_ini(ini)


def test_extra_search_fields_are_counted() -> None:
    with (
        HukeClient("key", "secret") as client,
        pytest.raises(ValueError, match=r"^extra fields source, timeRanges would replace"),
    ):
        list(client.iter_trades(start=0, end=1, extra={"timeRanges": [], "source": 1}))


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("short", "after 1 trade while its total says 5"),
        ("overfull", "the pages delivered 1 trade by page 2"),
        ("repeated", "by page 2, 1 trade came a second time while the total grew by only 5"),
        ("oversized", "page 2 held 1 trade, more than the 5 of page 1"),
    ],
)
def test_listing_problems_count_trades(kind: str, words: str) -> None:
    assert words in _problem(kind, 2, 5, 1)


def test_the_page_limit_counts_one_page() -> None:
    fake = FakeHuke("key", "secret", trades=[fake_trade(create_time=5) for _ in range(150)])
    with fake.client() as client, pytest.raises(Exception, match=r"max_pages=1 page \(next"):
        list(client.iter_trades(start=0, end=10, max_pages=1))


def test_the_huke_page_log_counts_trades(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeHuke("key", "secret", trades=[fake_trade(create_time=5)])
    with caplog.at_level(logging.DEBUG, logger="huke_client"), fake.client() as client:
        list(client.iter_trades(start=0, end=10))
    assert any(r.getMessage().endswith("page 1: 1 trade (total 1)") for r in caplog.records)


def test_the_k3_page_limit_counts_one_time() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=[["A"]] * 5))
    client = K3CloudClient(
        "http://k3.test/k3cloud/", **K3_CREDENTIALS, http_client=httpx.Client(transport=transport)
    )
    with client, pytest.raises(K3CloudPageLimitError, match="full pages 1 time \\(max_pages\\)"):
        list(client.iter_bill_query("BD_Customer", "FNumber", page_size=5, max_pages=1))


def test_a_bad_app_id_counts_characters() -> None:
    with pytest.raises(K3CloudConfigError, match=r"got '1_<1 character hidden>' \(3 characters\)"):
        split_app_id("1_x")
    with pytest.raises(K3CloudConfigError, match=r"got '7' \(1 character\)"):
        split_app_id("7")


def test_the_redactor_repr_counts_secrets() -> None:
    assert repr(Redactor(["one-secret"])) == "Redactor(1 secret)"
    assert repr(Redactor(["one-secret", "two-secret"])) == "Redactor(2 secrets)"


def test_the_fleet_counts_failed_trades() -> None:
    pytest.importorskip("celery", reason="the fleet needs the [celery] extra")
    from huke_k3_bridge.celery._tasks import _failed

    now = datetime.now(timezone.utc)
    one = SyncReport(now, now, outcomes=(TradeOutcome(0, "failed", trade_id="T", reason="x"),))
    assert str(_failed("w", one, "why")) == "w: why: 1 trade failed"


def test_a_call_that_raised_is_logged_with_its_customers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    k3 = StubK3()

    def refused(*args: Any, **kwargs: Any) -> BatchSaveResult:
        raise RuntimeError("refused")

    k3.batch_save = refused  # type: ignore[method-assign]
    huke = StubHuke([{"tid": "T1", "buyerNick": "n", "buyerCid": "c1"}])
    with caplog.at_level(logging.WARNING, logger="huke_k3_bridge"):
        sync_customers(huke, k3, start=0, end=10_000, progress=False)  # type: ignore[arg-type]
    assert "Save of 1 customer failed: refused" in caplog.messages, caplog.messages


def test_a_one_trade_report_and_progress_say_trade() -> None:
    from huke_k3_bridge import ProgressEvent

    assert str(ProgressEvent("done", 1)) == "done: 1 trade accounted for"
    when = datetime(2024, 6, 1, tzinfo=timezone.utc)
    outcome = TradeOutcome(position=0, status="skipped", trade_id="T1", reason="no buyerCid")
    report = SyncReport(start=when, end=when, outcomes=(outcome,))
    assert "\n  1 trade: " in str(report)
    assert "(1 trade)" in report._repr_html_()


def test_the_run_log_counts_one_window(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeHuke("k", "s", trades=[fake_trade(create_time=1_717_200_000_000, tid="T1")])
    k3_fake = FakeK3Cloud(acct_id="a", user_name="u", app_id=TEST_APP_ID, app_secret="s" * 32)
    k3 = K3CloudClient(
        "http://k3.test/k3cloud/",
        acct_id="a",
        user_name="u",
        app_id=TEST_APP_ID,
        app_secret="s" * 32,
        http_client=httpx.Client(transport=k3_fake.transport()),
    )
    with caplog.at_level(logging.INFO, logger="huke_k3_bridge"), fake.client() as huke:
        report = sync_customers(
            huke, k3, start=1_717_199_000_000, end=1_717_201_000_000, dry_run=True, progress=False
        )
    assert report.ok, report
    assert any(" in 1 window" in r.getMessage() for r in caplog.records)
    assert not any("window(s)" in r.getMessage() for r in caplog.records)
