"""batch_save: chunking, input indexes, per-row and whole-call failures, retries of writes."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _huke_k3_core import RetryPolicy
from _huke_k3_core.testing import Fault
from k3cloud_client import (
    AsyncK3CloudClient,
    BatchSaveError,
    Customer,
    FailedRow,
    K3CloudClient,
    SavedRow,
)
from k3cloud_client.testing import (
    DUPLICATE_NUMBER_MESSAGE,
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
)

from .conftest import FAST, Harness, credentials


def customers(count: int, *, start: int = 0) -> list[Customer]:
    return [Customer(f"C{n:05d}", f"Customer {n}") for n in range(start, start + count)]


def sequential(harness: Harness) -> dict[str, Any]:
    return {"concurrency": 1} if harness.is_async else {}


def test_done_when_1000_customers_3_existing_chunked_by_400(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    fake.seed(
        "BD_Customer", [{"FNumber": n, "FName": "old"} for n in ("C00007", "C00450", "C00999")]
    )
    client = harness.client(fake)
    result = harness.call(client, "batch_save", "BD_Customer", customers(1000), chunk_size=400)
    assert len(result.saved) == 997
    assert result.failed == [
        FailedRow(
            index=index,
            field_name="FNumber",
            message=DUPLICATE_NUMBER_MESSAGE.format(number=number),
            msg_code=11,
            uncertain=False,
            number=number,
        )
        for index, number in ((7, "C00007"), (450, "C00450"), (999, "C00999"))
    ]
    assert (
        result.failed[0].message == "违反字段唯一性要求：编码唯一。[C00007]在当前系统中已经被使用。"
    )
    assert fake.call_count("BatchSave") == 3
    assert len(result.responses) == 3
    assert not result.ok
    assert result.uncertain == []
    saved = {row.index: row for row in result.saved}
    assert saved[401].number == "C00401"
    stored = {r["FNumber"]: r["FCUSTID"] for r in fake.records("BD_Customer")}
    assert saved[401].id == stored["C00401"]
    assert len(stored) == 1000


def test_chunks_carry_the_options_under_their_wire_names(fake: FakeK3Cloud) -> None:
    client = Harness("sync").client(fake)
    assert isinstance(client, K3CloudClient)
    client.batch_save(
        "BD_Customer",
        [Customer("C1", "one"), {"FNumber": "C2", "FName": "two"}],
        need_return_fields=["FNumber"],
        is_auto_submit_and_audit=True,
        is_verify_base_data_field=True,
        batch_count=2,
        interation_flags="STK_InvCheckResult",
        is_entry_batch_fill=False,
        SubSystemId="",
    )
    (request,) = [r for r in fake.received if "BatchSave" in r.url.path]
    assert request.url.path == (
        "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc"
    )
    assert json.loads(request.content) == {
        "formid": "BD_Customer",
        "data": {
            "Model": [
                {
                    "FNumber": "C1",
                    "FName": "one",
                    "FCreateOrgId": {"FNumber": "100"},
                    "FUseOrgId": {"FNumber": "100"},
                },
                {"FNumber": "C2", "FName": "two"},
            ],
            "NeedReturnFields": ["FNumber"],
            "IsAutoSubmitAndAudit": True,
            "IsVerifyBaseDataField": True,
            "IsDeleteEntry": True,
            "ValidateFlag": True,
            "NumberSearch": True,
            "BatchCount": 2,
            "InterationFlags": "STK_InvCheckResult",
            "IsEntryBatchFill": False,
            "SubSystemId": "",
        },
    }
    assert {r["FDocumentStatus"] for r in fake.records("BD_Customer")} == {"C"}


def test_options_that_clash_are_refused(fake: FakeK3Cloud) -> None:
    client = Harness("sync").client(fake)
    with pytest.raises(TypeError, match="repeats a named argument"):
        client.batch_save("BD_Customer", [], IsDeleteEntry=False)
    with pytest.raises(TypeError, match="the SDK sets it"):
        client.batch_save("BD_Customer", [], Model=[])
    with pytest.raises(TypeError, match=r"models\[1\] is a int"):
        client.batch_save("BD_Customer", [{"FNumber": "A"}, 5])
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        client.batch_save("BD_Customer", [], chunk_size=0)
    assert fake.request_count == 0


def test_empty_input_sends_nothing(harness: Harness, fake: FakeK3Cloud) -> None:
    result = harness.call(harness.client(fake), "batch_save", "BD_Customer", [])
    assert (result.saved, result.failed, result.ok) == ([], [], True)
    assert fake.request_count == 0


def test_audited_status_and_draft_status(harness: Harness, fake: FakeK3Cloud) -> None:
    client = harness.client(fake)
    harness.call(client, "batch_save", "BD_Customer", [Customer("A1", "a")])
    harness.call(
        client, "batch_save", "BD_Customer", [Customer("A2", "b")], is_auto_submit_and_audit=True
    )
    assert [(r["FNumber"], r["FDocumentStatus"]) for r in fake.records("BD_Customer")] == [
        ("A1", "A"),
        ("A2", "C"),
    ]


def test_updates_by_fcustid_and_need_update_fields(harness: Harness, fake: FakeK3Cloud) -> None:
    (existing,) = fake.seed(
        "BD_Customer", [{"FNumber": "C1", "FName": "old", "FDescription": "keep"}]
    )
    client = harness.client(fake)
    result = harness.call(
        client,
        "batch_save",
        "BD_Customer",
        [
            Customer("C1", "new name", id=existing, description="ignored"),
            Customer("C2", "unknown id", id=999_999),
        ],
        need_update_fields=["FName"],
    )
    assert result.saved == [SavedRow(0, existing, "C1")]
    (failed,) = result.failed
    assert (failed.index, failed.field_name, failed.msg_code) == (1, "FCUSTID", 10)
    assert failed.message == "FCUSTID=999999 的数据不存在，可能已被删除"
    (record,) = fake.records("BD_Customer")
    assert (record["FName"], record["FDescription"]) == ("new name", "keep")
    sent = json.loads(next(r for r in fake.received if "BatchSave" in r.url.path).content)
    assert sent["data"]["NeedUpDateFields"] == ["FName"]
    assert sent["data"]["Model"][0]["FCUSTID"] == existing


def test_a_duplicate_inside_one_call_fails_the_later_row(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    models = [Customer("D1", "a"), Customer("D2", "b"), Customer("D1", "c")]
    result = harness.call(harness.client(fake), "batch_save", "BD_Customer", models)
    assert [r.index for r in result.saved] == [0, 1]
    assert [(r.index, r.message) for r in result.failed] == [
        (2, DUPLICATE_NUMBER_MESSAGE.format(number="D1"))
    ]
    assert [r["FName"] for r in fake.records("BD_Customer")] == ["a", "b"]


def test_a_write_is_not_retried_after_a_timeout(harness: Harness, fake: FakeK3Cloud) -> None:
    fake.inject(Fault.timeout(), path="BatchSave")
    client = harness.client(fake)
    result = harness.call(client, "batch_save", "BD_Customer", customers(3))
    assert fake.call_count("BatchSave") == 1
    assert [row.index for row in result.uncertain] == [0, 1, 2]
    assert result.failed[0].msg_code is None
    assert "timed out" in result.failed[0].message
    assert fake.records("BD_Customer") == []


def test_reply_lost_after_commit_is_reported_uncertain(harness: Harness, fake: FakeK3Cloud) -> None:
    fake.inject_reply_lost(path="BatchSave", after=1)
    client = harness.client(fake)
    result = harness.call(
        client, "batch_save", "BD_Customer", customers(6), chunk_size=2, **sequential(harness)
    )
    assert [row.index for row in result.saved] == [0, 1, 4, 5]
    assert [row.index for row in result.uncertain] == [2, 3]
    assert [row.number for row in result.uncertain] == ["C00002", "C00003"]
    # The rows WERE saved: that is why they are uncertain, not failed.
    assert len(fake.records("BD_Customer")) == 6
    assert fake.call_count("BatchSave") == 3


def test_reply_timeout_after_commit_is_reported_uncertain(
    harness: Harness, fake: FakeK3Cloud
) -> None:
    fake.inject_reply_timeout(path="BatchSave")
    result = harness.call(harness.client(fake), "batch_save", "BD_Customer", customers(2))
    assert [row.index for row in result.uncertain] == [0, 1]
    assert len(fake.records("BD_Customer")) == 2


def test_a_write_is_retried_after_a_connect_error(harness: Harness, fake: FakeK3Cloud) -> None:
    fake.inject(Fault.connect_error(), path="BatchSave")
    result = harness.call(harness.client(fake), "batch_save", "BD_Customer", customers(2))
    assert result.ok
    assert fake.call_count("BatchSave") == 2


def test_retry_writes_true_retries_after_a_timeout(harness: Harness, fake: FakeK3Cloud) -> None:
    fake.inject(Fault.timeout(), path="BatchSave")
    client = harness.client(fake, retry_writes=True)
    result = harness.call(client, "batch_save", "BD_Customer", customers(2))
    assert result.ok
    assert fake.call_count("BatchSave") == 2


def test_a_write_is_not_retried_after_a_503(harness: Harness, fake: FakeK3Cloud) -> None:
    fake.inject(Fault.http_status(503), path="BatchSave")
    result = harness.call(harness.client(fake), "batch_save", "BD_Customer", customers(2))
    assert fake.call_count("BatchSave") == 1
    # A 5xx may come after the work was done.
    assert [(r.index, r.uncertain) for r in result.failed] == [(0, True), (1, True)]
    assert "HTTP 503" in result.failed[0].message


def test_rate_limit_backs_off_and_retries(
    fake: FakeK3Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr("_huke_k3_core._transport.time.sleep", waits.append)
    fake.inject_rate_limit(times=2, path="BatchSave")
    client = Harness("sync").client(
        fake, retry=RetryPolicy(max_retries=3, initial_delay=0.5, jitter=0)
    )
    result = client.batch_save("BD_Customer", customers(2))
    assert result.ok
    assert waits == [0.5, 1.0]
    assert fake.call_count("BatchSave") == 3


def test_rate_limit_exhausted_is_reported_row_by_row(harness: Harness, fake: FakeK3Cloud) -> None:
    fake.inject_rate_limit(times=5, path="BatchSave")
    client = harness.client(fake, max_retries=1)
    result = harness.call(client, "batch_save", "BD_Customer", customers(2))
    assert [(r.index, r.msg_code, r.uncertain) for r in result.failed] == [
        (0, 14, False),
        (1, 14, False),
    ]
    assert "MsgCode 14" in result.failed[0].message
    assert fake.call_count("BatchSave") == 2


def test_a_whole_call_refusal_is_reported_row_by_row(harness: Harness) -> None:
    refusal = {
        "Result": {
            "ResponseStatus": {
                "IsSuccess": False,
                "MsgCode": 2,
                "Errors": [{"FieldName": None, "Message": "没有客户的新增权限", "DIndex": 0}],
            }
        }
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=refusal))
    result = harness.call(
        harness.client(transport=transport), "batch_save", "BD_Customer", customers(3)
    )
    assert [(r.index, r.msg_code, r.uncertain) for r in result.failed] == [
        (0, 2, False),
        (1, 2, False),
        (2, 2, False),
    ]
    assert result.failed[2].message == (
        "BatchSave BD_Customer failed (MsgCode 2): 没有客户的新增权限"
    )


def test_rows_the_reply_does_not_mention_are_uncertain(harness: Harness) -> None:
    reply = {
        "Result": {
            "ResponseStatus": {
                "IsSuccess": False,
                "MsgCode": 11,
                "Errors": [{"FieldName": "FName", "Message": "名称必填", "DIndex": 1}],
                # No DIndex: placed by its number, unique in the chunk.
                "SuccessEntitys": [{"Id": 7, "Number": "C00000"}],
            }
        }
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=reply))
    result = harness.call(
        harness.client(transport=transport), "batch_save", "BD_Customer", customers(3)
    )
    assert result.saved == [SavedRow(0, 7, "C00000")]
    assert [(r.index, r.field_name, r.message, r.uncertain) for r in result.failed] == [
        (1, "FName", "名称必填", False),
        (
            2,
            None,
            "no outcome for this row in the reply: the reply reports neither success nor failure",
            True,
        ),
    ]


def test_an_unreadable_reply_makes_the_chunk_uncertain(harness: Harness, fake: FakeK3Cloud) -> None:
    fake.inject(Fault.malformed_json(), path="BatchSave")
    result = harness.call(harness.client(fake), "batch_save", "BD_Customer", customers(2))
    assert [r.uncertain for r in result.failed] == [True, True]
    assert "not JSON" in result.failed[0].message


def test_raise_for_failures(harness: Harness, fake: FakeK3Cloud) -> None:
    fake.seed("BD_Customer", [{"FNumber": "C00001", "FName": "x"}])
    result = harness.call(harness.client(fake), "batch_save", "BD_Customer", customers(3))
    with pytest.raises(BatchSaveError) as info:
        result.raise_for_failures()
    assert str(info.value) == (
        "1 of 3 rows was not saved: row 1: " + DUPLICATE_NUMBER_MESSAGE.format(number="C00001")
    )
    assert info.value.result is result
    ok = harness.call(harness.client(fake), "batch_save", "BD_Customer", customers(1, start=50))
    assert ok.raise_for_failures() is ok


def test_sync_batch_save_sends_one_chunk_at_a_time(fake: FakeK3Cloud) -> None:
    in_flight = _InFlight(fake)
    with (
        in_flight.serve() as server,
        K3CloudClient(server.url + "/k3cloud/", **credentials(), retry=FAST) as client,
    ):
        result = client.batch_save("BD_Customer", customers(50), chunk_size=10)
    assert result.ok
    assert in_flight.peak == 1


async def test_async_batch_save_sends_chunks_concurrently_in_input_order(
    fake: FakeK3Cloud,
) -> None:
    fake.seed("BD_Customer", [{"FNumber": "C00013", "FName": "old"}])
    in_flight = _InFlight(fake)
    with in_flight.serve() as server:
        async with AsyncK3CloudClient(
            server.url + "/k3cloud/", **credentials(), retry=FAST
        ) as client:
            started = time.perf_counter()
            result = await client.batch_save(
                "BD_Customer", customers(90), chunk_size=10, concurrency=3
            )
            elapsed = time.perf_counter() - started
    assert in_flight.peak == 3
    assert [r.index for r in result.saved] == [i for i in range(90) if i != 13]
    assert [r.index for r in result.failed] == [13]
    assert elapsed < 9 * 0.05  # 9 chunks of 50 ms each did not run one after the other
    assert len(result.responses) == 9


class _InFlight:
    """Wraps the fake to measure how many requests it handles at the same time."""

    def __init__(self, fake: FakeK3Cloud) -> None:
        self.fake = fake
        self.current = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        try:
            time.sleep(0.05)
            return self.fake(request)
        finally:
            with self._lock:
                self.current -= 1

    def serve(self) -> Any:
        from _huke_k3_core.testing import LoopbackServer

        return LoopbackServer(self)


def test_a_real_loopback_socket_with_a_reset_after_commit(fake: FakeK3Cloud) -> None:
    fake.inject_reply_lost(path="BatchSave")
    with (
        fake.serve() as server,
        K3CloudClient(server.url + "/k3cloud/", **credentials(), retry=FAST) as client,
    ):
        first = client.batch_save("BD_Customer", customers(2))
        second = client.batch_save("BD_Customer", customers(2, start=2))
        rows = client.execute_bill_query("BD_Customer", "FNumber", order_string="FNumber")
    assert [r.uncertain for r in first.failed] == [True, True]
    assert second.ok
    assert rows == [["C00000"], ["C00001"], ["C00002"], ["C00003"]]


# -- property ---------------------------------------------------------------------------------

_numbers = st.sampled_from([f"N{i}" for i in range(12)])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    numbers=st.lists(_numbers, max_size=40),
    existing=st.sets(_numbers, max_size=4),
    chunk_size=st.integers(min_value=1, max_value=15),
)
def test_property_every_index_once_and_each_new_number_stored_once(
    numbers: list[str], existing: set[str], chunk_size: int
) -> None:
    fake = FakeK3Cloud(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
    )
    fake.seed("BD_Customer", [{"FNumber": n, "FName": "old"} for n in sorted(existing)])
    client = Harness("sync").client(fake)
    models = [Customer(n, f"name {i}") for i, n in enumerate(numbers)]
    result = client.batch_save("BD_Customer", models, chunk_size=chunk_size)
    indexes = [r.index for r in result.saved] + [r.index for r in result.failed]
    assert sorted(indexes) == list(range(len(numbers)))
    assert fake.call_count("BatchSave") == -(-len(numbers) // chunk_size)
    stored = [r["FNumber"] for r in fake.records("BD_Customer")]
    assert sorted(stored) == sorted(existing | set(numbers))
    # The first occurrence of each new number is the one saved.
    first = {n: numbers.index(n) for n in set(numbers) - existing}
    assert {r.index for r in result.saved} == set(first.values())
    assert {r.number: r.index for r in result.saved} == first


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(min_value=0, max_value=30),
    chunk_size=st.integers(min_value=1, max_value=8),
    faults=st.lists(
        st.sampled_from(["timeout", "reply_lost", "reset", "503", "rate_limit", "connect"]),
        max_size=4,
    ),
)
def test_property_every_index_once_under_faults(
    count: int, chunk_size: int, faults: list[str]
) -> None:
    fake = FakeK3Cloud(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
    )
    for fault in faults:
        if fault == "rate_limit":
            fake.inject_rate_limit(path="BatchSave")
        else:
            fake.inject(
                {
                    "timeout": Fault.timeout(),
                    "reply_lost": Fault.reply_lost(),
                    "reset": Fault.reset(),
                    "503": Fault.http_status(503),
                    "connect": Fault.connect_error(),
                }[fault],
                path="BatchSave",
            )
    client = Harness("sync").client(fake)
    result = client.batch_save("BD_Customer", customers(count), chunk_size=chunk_size)
    indexes = sorted([r.index for r in result.saved] + [r.index for r in result.failed])
    assert indexes == list(range(count))
    stored = {r["FNumber"] for r in fake.records("BD_Customer")}
    assert {r.number for r in result.saved} <= stored
    # Whatever was stored is either reported saved or flagged uncertain, never "surely failed".
    surely_failed = {r.number for r in result.failed if not r.uncertain}
    assert not stored & surely_failed


def _mangled_reply(numbers: list[str], d_index: Any) -> dict[str, Any]:
    entities = [
        {"Id": 1000 + n, "Number": number, "DIndex": d_index(n, len(numbers))}
        for n, number in enumerate(numbers)
    ]
    return {
        "Result": {"ResponseStatus": {"IsSuccess": True, "MsgCode": 0, "SuccessEntitys": entities}}
    }


@pytest.mark.parametrize(
    "d_index",
    [lambda n, size: n + 1, lambda n, size: size - 1 - n, lambda n, size: 0],
    ids=["one-based", "reversed", "all zero"],
)
def test_success_entries_are_placed_by_their_number_not_a_wrong_dindex(
    harness: Harness, d_index: Any
) -> None:
    rows = customers(45)
    numbers = [c.number for c in rows]
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, json=_mangled_reply(numbers, d_index))
    )
    result = harness.call(harness.client(transport=transport), "batch_save", "BD_Customer", rows)
    assert result.failed == []
    assert [(r.index, r.id, r.number) for r in result.saved] == [
        (n, 1000 + n, number) for n, number in enumerate(numbers)
    ]


def test_a_success_entry_whose_number_fits_no_row_leaves_the_row_uncertain(
    harness: Harness,
) -> None:
    reply = {
        "Result": {
            "ResponseStatus": {
                "IsSuccess": True,
                "MsgCode": 0,
                "SuccessEntitys": [
                    {"Id": 7, "Number": "C00000", "DIndex": 0},
                    # DIndex 1 but another number: whose id this is cannot be known.
                    {"Id": 8, "Number": "ELSEWHERE", "DIndex": 1},
                    # No Number at all: nothing confirms it belongs to row 2.
                    {"Id": 9, "DIndex": 2},
                ],
            }
        }
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=reply))
    result = harness.call(
        harness.client(transport=transport), "batch_save", "BD_Customer", customers(3)
    )
    assert result.saved == [SavedRow(0, 7, "C00000")]
    assert [(r.index, r.uncertain) for r in result.failed] == [(1, True), (2, True)]
    assert "matches no row" in result.failed[0].message
    assert all(str(r.id) != "8" for r in result.saved)


def test_a_success_number_differing_only_in_case_confirms_the_row(harness: Harness) -> None:
    rows = [Customer("hk-abc", "x")]
    reply = _mangled_reply(["HK-ABC"], lambda n, size: 0)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=reply))
    result = harness.call(harness.client(transport=transport), "batch_save", "BD_Customer", rows)
    assert [(r.index, r.id) for r in result.saved] == [(0, 1000)]
