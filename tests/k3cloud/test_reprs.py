"""``BatchSaveResult`` in a notebook: its counts and first rows as HTML, failures first."""

from __future__ import annotations

import httpx

from k3cloud_client import BatchSaveResult, Customer, FailedRow, K3CloudClient, SavedRow
from k3cloud_client.testing import (
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
)


def _result() -> BatchSaveResult:
    return BatchSaveResult(
        saved=[SavedRow(i, 100_000 + i, f"C{i:03d}") for i in range(30)],
        failed=[
            FailedRow(30, "FNumber", "违反字段唯一性要求 <C030>", 11, number="C030"),
            FailedRow(31, None, "POST … timed out", None, uncertain=True, number="C031"),
        ],
        responses=[{"Result": {"ResponseStatus": {"Session": "SECRET-SESSION"}}}] * 2,
    )


def test_counts_then_the_first_rows_failed_first() -> None:
    html = _result()._repr_html_()
    summary, listing = html.split("\n")
    assert summary == (
        "<p><b>BatchSave: NOT all saved</b> 30 saved, 1 failed, 1 uncertain (they may have been "
        "saved: look them up before sending again); 2 calls answered</p>"
    )
    assert "<th>index</th><th>number</th><th>id</th><th>status</th><th>message</th>" in listing
    rows = listing.split("<tr><td>")[1:]
    assert len(rows) == 20
    assert rows[0].startswith("30</td><td>C030</td><td></td><td>failed</td><td>FNumber: 违反")
    assert rows[1].startswith("31</td><td>C031</td><td></td><td>uncertain</td><td>POST")
    assert rows[2].startswith("0</td><td>C000</td><td>100000</td><td>saved</td><td></td>")
    assert "12 more rows not shown: see result.saved and result.failed" in listing


def test_messages_are_escaped_and_no_reply_body_is_shown() -> None:
    html = _result()._repr_html_()
    assert "&lt;C030&gt;" in html
    assert "<C030>" not in html
    assert "SECRET-SESSION" not in html


def test_a_result_from_the_simulator_renders() -> None:
    fake = FakeK3Cloud(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
    )
    with K3CloudClient(
        "http://k3.test/k3cloud/",
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
        http_client=httpx.Client(transport=fake.transport()),
    ) as k3:
        k3.batch_save("BD_Customer", [Customer("DUP", "first")])
        result = k3.batch_save("BD_Customer", [Customer("NEW", "n"), Customer("DUP", "again")])
    html = result._repr_html_()
    assert html.startswith(
        "<p><b>BatchSave: NOT all saved</b> 1 saved, 1 failed, 0 uncertain; 1 call answered</p>"
    )
    assert "<tr><td>1</td><td>DUP</td><td></td><td>failed</td><td>FNumber: " in html
    assert TEST_APP_SECRET not in html
    everything_saved = BatchSaveResult(saved=[SavedRow(0, 1, "A")], failed=[])._repr_html_()
    assert everything_saved.startswith("<p><b>BatchSave: all saved</b> 1 saved, 0 failed")
    assert "tfoot" not in everything_saved
