"""K/3 Cloud misbehaving under a real sync over loopback sockets: 5xx bursts, 429 with
``Retry-After``, MsgCode 14, truncated JSON, the session lost mid-sync, saves whose reply is lost
after the commit, rows refused inside a batch, customers that already exist or appear meanwhile.

Reads may be repeated; a write whose outcome is unknown must be settled by looking the numbers up
before anything is sent again. After every scenario: each trade accounted for exactly once, no
customer number stored twice, and a re-run that creates nothing.
"""

from __future__ import annotations

import collections
import json
from typing import Any

import attrs
import httpx
import pytest

from huke_k3_bridge import CustomerTransform, ProgressEvent
from k3cloud_client import Customer
from k3cloud_client.testing import Fault

from .conftest import (
    BATCH_SIZE,
    HANG_TIMEOUT,
    Engine,
    Stage,
    assert_accounted,
    assert_converges,
    assert_store_complete,
    chunks,
    expected_counts,
)

QUERY = "ExecuteBillQuery"
SAVE = "BatchSave"


def _ok_run(stage: Stage, engine: Engine, **options: Any) -> None:
    """One run that must end as if nothing had happened, then a converging re-run."""
    report = stage.run(engine, **options)
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades)
    assert report.ok, str(report)
    assert_store_complete(stage)
    assert_converges(stage, engine, existed=len(stage.winners()), **options)


def _full_chunks(stage: Stage) -> None:
    """Whichever save call a fault strikes, it carries ``BATCH_SIZE`` customers."""
    stage.generate()
    assert len(stage.winners()) % BATCH_SIZE == 0


def _second_attempts(stage: Stage) -> set[str]:
    """Numbers sent to BatchSave more than once."""
    sent = collections.Counter(n for call in stage.k3.sent_numbers() for n in call)
    return {n for n, c in sent.items() if c > 1}


@pytest.mark.parametrize("status", [502, 504])
def test_5xx_burst_on_lookups_is_retried(stage: Stage, engine: Engine, status: int) -> None:
    stage.generate()
    stage.k3.inject(Fault.http_status(status), times=3, path=QUERY)
    report = stage.run(engine)
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades)
    assert stage.k3.call_count(QUERY) == 1 + 3
    assert stage.k3.call_count(SAVE) == chunks(len(stage.winners()))
    assert_store_complete(stage)
    assert_converges(stage, engine, existed=len(stage.winners()))


def test_5xx_on_a_save_is_checked_then_sent_again(stage: Stage, engine: Engine) -> None:
    """A 503 may come from a gateway after the work was done: look, then send again."""
    _full_chunks(stage)
    stage.k3.inject(Fault.http_status(503), path=SAVE)
    report = stage.run(engine)
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades)
    numbers = len(stage.winners())
    assert stage.k3.call_count(SAVE) == chunks(numbers) + 1
    # The lookup, then the checks of the unknown chunk: repeated, with pauses, for the confirm
    # window (it may still be committing), and only then sent again.
    assert 3 <= stage.k3.call_count(QUERY) <= 1 + 20
    resent = _second_attempts(stage)
    assert len(resent) == BATCH_SIZE
    assert {
        o.number
        for o in report.outcomes
        if o.reason == "saved on a second attempt after an uncertain reply"
    } == resent
    assert_store_complete(stage)
    assert_converges(stage, engine, existed=numbers)


def test_5xx_on_every_save_leaves_every_customer_uncertain_and_a_rerun_creates_them(
    stage: Stage, engine: Engine
) -> None:
    stage.generate()
    stage.k3.inject(Fault.http_status(503), times=1000, path=SAVE)
    report = stage.run(engine)
    assert_accounted(report, stage)
    numbers = len(stage.winners())
    # A 503 may follow a commit: never "failed" (that would invite a blind re-send), uncertain.
    assert report.counts["uncertain"] == numbers
    assert report.counts["created"] == 0
    assert not report.ok
    for outcome in report.uncertain:
        assert outcome.reason is not None
        assert outcome.reason.startswith("the save's outcome stayed unknown after a retry")
        assert "answered HTTP 503" in outcome.reason
    # Every chunk twice (sent, checked, sent again), never more.
    assert stage.k3.call_count(SAVE) == 2 * chunks(numbers)
    assert stage.customers() == {}
    stage.k3.faults.clear()
    _ok_run(stage, engine)


def test_429_with_retry_after_on_saves_is_retried_without_doubt(
    stage: Stage, engine: Engine
) -> None:
    """429 means "not carried out": even a write is simply sent again, after Retry-After."""
    stage.generate()
    stage.k3.inject(Fault.http_status(429, retry_after="0.05"), times=2, path=SAVE)
    stage.k3.inject(Fault.http_status(429, retry_after="0"), path=QUERY)
    report = stage.run(engine)
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades)
    assert all(o.reason is None for o in report.by_status("created"))
    assert stage.k3.call_count(SAVE) == chunks(len(stage.winners())) + 2
    assert stage.k3.call_count(QUERY) == 1 + 1
    saves = [t for t, op in stage.k3.arrivals if op == SAVE]
    if engine == "sync":  # one call at a time: the gap after each 429 is the Retry-After
        assert saves[1] - saves[0] >= 0.05
        assert saves[2] - saves[1] >= 0.05
    assert_store_complete(stage)
    assert_converges(stage, engine, existed=len(stage.winners()))


def test_msgcode_14_rate_limit_is_retried(stage: Stage, engine: Engine) -> None:
    stage.generate()
    stage.k3.inject_rate_limit(times=2, path=SAVE)
    stage.k3.inject_rate_limit(times=2, path=QUERY)
    report = stage.run(engine)
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades)
    assert all(o.reason is None for o in report.by_status("created"))
    assert stage.k3.call_count(SAVE) == chunks(len(stage.winners())) + 2
    assert stage.k3.call_count(QUERY) == 1 + 2
    assert_store_complete(stage)
    assert_converges(stage, engine, existed=len(stage.winners()))


def test_truncated_json_on_lookups_is_reread(stage: Stage, engine: Engine) -> None:
    stage.generate()
    stage.k3.inject(Fault.malformed_json(), times=2, path=QUERY)
    _ok_run(stage, engine)
    assert stage.k3.faults.struck == [("body", stage.k3.faults.struck[0][1])] * 2


@pytest.mark.parametrize("committed", [True, False], ids=["after-commit", "before-commit"])
def test_truncated_json_on_a_save(stage: Stage, engine: Engine, committed: bool) -> None:
    """An unreadable reply came from a server that did process the request, or not: the bridge
    looks before it sends anything again."""
    _full_chunks(stage)
    truncated = Fault("body", body=b'{"Result": {"ResponseStatus": {"IsSucc', commit=committed)
    stage.k3.inject(truncated, path=SAVE)
    report = stage.run(engine)
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades)
    numbers = len(stage.winners())
    reasons = collections.Counter(o.reason for o in report.by_status("created"))
    if committed:
        assert stage.k3.call_count(SAVE) == chunks(numbers)
        assert _second_attempts(stage) == set()
        assert reasons["confirmed after an uncertain reply"] == BATCH_SIZE
    else:
        assert stage.k3.call_count(SAVE) == chunks(numbers) + 1
        assert len(_second_attempts(stage)) == BATCH_SIZE
        assert reasons["saved on a second attempt after an uncertain reply"] == BATCH_SIZE
    assert_store_complete(stage)
    assert_converges(stage, engine, existed=numbers)


@pytest.mark.parametrize("fault", ["reply_lost", "reply_timeout"])
def test_save_whose_reply_is_lost_after_commit_is_confirmed_not_resent(
    stage: Stage, engine: Engine, fault: str
) -> None:
    _full_chunks(stage)
    if fault == "reply_lost":
        stage.k3.inject_reply_lost(path=SAVE, after=1)
    else:
        stage.k3.inject_reply_timeout(path=SAVE, after=1)
    report = stage.run(engine, timeout=HANG_TIMEOUT)
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades)
    numbers = len(stage.winners())
    assert stage.k3.call_count(SAVE) == chunks(numbers)  # nothing sent twice
    assert _second_attempts(stage) == set()
    assert stage.k3.call_count(QUERY) == 2
    confirmed = [o for o in report.outcomes if o.reason == "confirmed after an uncertain reply"]
    assert len(confirmed) == BATCH_SIZE
    assert_store_complete(stage)
    assert_converges(stage, engine, existed=numbers)


def test_reply_lost_on_every_save_and_check_failing_then_rerun(
    stage: Stage, engine: Engine
) -> None:
    """Worst case for a write: every save committed but unanswered, and the check fails too.
    Nothing may be created twice, then or on the re-run."""
    stage.generate()
    numbers = len(stage.winners())
    stage.k3.inject_reply_lost(times=chunks(numbers), path=SAVE)
    stage.k3.inject(Fault.http_status(503), after=1, times=1000, path=QUERY)
    report = stage.run(engine)
    assert_accounted(report, stage)
    assert report.counts["uncertain"] == numbers
    for outcome in report.uncertain:
        assert outcome.reason is not None
        assert outcome.reason.startswith("the save's outcome is unknown")
        assert outcome.reason.endswith("the next run checks before saving")
    assert stage.k3.call_count(SAVE) == chunks(numbers)
    assert_store_complete(stage)  # all saved, each once, though nobody heard of it
    stage.k3.faults.clear()
    assert_converges(stage, engine, existed=numbers)


@pytest.mark.parametrize("during", [QUERY, SAVE])
def test_session_lost_mid_sync_logs_in_once_and_replays(
    stage: Stage, engine: Engine, during: str
) -> None:
    stage.generate()
    seen: collections.Counter[str] = collections.Counter()

    def expire_on_second(operation: str, request: httpx.Request) -> None:
        seen[operation] += 1
        if operation == during and seen[operation] == 2:
            stage.k3.expire_sessions()

    stage.on_k3(expire_on_second)
    # The first lookup happens before any save: expire on the check after an unknown save.
    if during == QUERY:
        stage.k3.inject_reply_lost(path=SAVE)
    report = stage.run(engine, auth="password")
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades)
    assert stage.k3.login_count == 2  # calls finding the session lost together share one login
    numbers = len(stage.winners())
    lost = stage.k3.session_lost
    assert lost[during] >= 1
    assert set(lost) == {during}
    if engine == "sync":  # one call at a time: exactly one found the session gone
        assert lost[during] == 1
    # Each call refused for a lost session (not carried out) is replayed once, nothing more.
    assert stage.k3.call_count(SAVE) == chunks(numbers) + lost[SAVE]
    assert stage.k3.call_count(QUERY) == (2 if during == QUERY else 1) + lost[QUERY]
    for session_id in stage.k3.session_ids():
        assert session_id not in report.to_json()
        assert session_id not in str(report)
    assert_store_complete(stage)
    logins = stage.k3.login_count
    assert_converges(stage, engine, existed=numbers, auth="password")
    assert stage.k3.login_count == logins + 1  # a new run, a new session


def test_session_lost_between_chunks_from_a_progress_callback(stage: Stage) -> None:
    stage.generate()
    expired: list[ProgressEvent] = []

    def progress(event: ProgressEvent) -> None:
        if event.phase == "save" and event.done > 0 and not expired:
            expired.append(event)
            stage.k3.expire_sessions()

    report = stage.run("sync", auth="password", progress=progress)
    assert expired == [ProgressEvent("save", BATCH_SIZE, len(stage.winners()))]
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades)
    assert stage.k3.login_count == 2
    # The call that found the session gone was not carried out (MsgCode 1), then replayed.
    assert stage.k3.call_count("BatchSave") == chunks(len(stage.winners())) + 1
    assert _second_attempts(stage) == set(stage.k3.sent_numbers()[1])
    assert_store_complete(stage)


def _blank_name_for(numbers: set[str]) -> CustomerTransform:
    def blank(trade: Any, customer: Customer) -> Customer:
        return attrs.evolve(customer, name="") if customer.number in numbers else customer

    return CustomerTransform().then(blank)


def test_partial_batch_failure_fails_only_the_refused_rows(stage: Stage, engine: Engine) -> None:
    stage.generate()
    winners = stage.winners()
    refused = set(sorted(winners)[:3])
    transform = _blank_name_for(refused)
    report = stage.run(engine, transform=transform)
    assert_accounted(report, stage)
    expected = expected_counts(stage.trades)
    expected["created"] -= 3
    expected["failed"] += 3
    assert report.counts == expected
    assert {o.number for o in report.failures} == refused
    for outcome in report.failures:
        assert outcome.reason == (
            "BatchSave refused the customer: 字段“客户名称”是必填项 (field FName, MsgCode 11)"
        )
        assert outcome.trade_id == winners[str(outcome.number)]["tid"]
    assert stage.k3.call_count(SAVE) == chunks(len(winners))  # refused rows are not resent
    stored = stage.customers()
    assert set(stored) == set(winners) - refused
    # The re-run refuses the same rows again, and changes nothing else.
    before = stage.k3.records("BD_Customer")
    again = stage.run(engine, transform=transform)
    assert_accounted(again, stage)
    assert again.counts["created"] == 0
    assert again.counts["failed"] == 3
    assert again.counts["existed"] == len(winners) - 3
    assert stage.k3.records("BD_Customer") == before


def test_customers_already_in_k3_are_left_alone(stage: Stage, engine: Engine) -> None:
    stage.generate()
    old = sorted(stage.winners())[::4]
    existing = {number: f"手工录入 {number}" for number in old}
    existing["C-UNRELATED"] = "别的客户"
    stage.k3.seed("BD_Customer", [Customer(n, name).to_wire() for n, name in existing.items()])
    report = stage.run(engine)
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades, existing=set(old))
    assert_store_complete(stage, existing=existing)
    assert_converges(stage, engine, existed=len(stage.winners()))


def test_customers_already_in_k3_are_updated_on_request(stage: Stage, engine: Engine) -> None:
    stage.generate()
    old = sorted(stage.winners())[::4]
    ids = stage.k3.seed("BD_Customer", [Customer(n, "旧名字").to_wire() for n in old])
    report = stage.run(engine, on_existing="update")
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades, existing=set(old), update=True)
    assert_store_complete(stage)  # the updated ones now carry the buyer's latest name too
    stored = stage.customers()
    assert [stored[n]["FCUSTID"] for n in old] == ids  # updated in place, not re-created
    # A re-run updates every customer again (the same values) and creates none.
    before = stage.k3.records("BD_Customer")
    again = stage.run(engine, on_existing="update")
    assert_accounted(again, stage)
    assert again.counts["created"] == 0
    assert again.counts["updated"] == len(stage.winners())
    assert stage.k3.records("BD_Customer") == before


def test_customer_created_by_another_writer_meanwhile(stage: Stage, engine: Engine) -> None:
    """Between the lookup and the save someone else creates two of the customers: their rows are
    refused as duplicates, the check finds them, and they count as existing."""
    stage.generate()
    taken: list[str] = []

    def another_writer(operation: str, request: httpx.Request) -> None:
        if operation == SAVE and not taken:
            models = json.loads(request.content)["data"]["Model"]
            taken.extend(str(m["FNumber"]) for m in models[:2])
            stage.k3.seed("BD_Customer", [Customer(n, "另一个系统").to_wire() for n in taken])

    stage.on_k3(another_writer)
    report = stage.run(engine)
    assert_accounted(report, stage)
    expected = expected_counts(stage.trades)
    expected["created"] -= 2
    expected["existed"] += 2
    assert report.counts == expected
    for outcome in report.by_status("existed"):
        assert outcome.number in taken
        assert outcome.reason is not None
        assert outcome.reason.startswith("the save was refused (违反字段唯一性要求")
        assert outcome.reason.endswith("created by another writer meanwhile")
    assert stage.k3.call_count(SAVE) == chunks(len(stage.winners()))
    assert_store_complete(stage, existing=dict.fromkeys(taken, "另一个系统"))
    assert_converges(stage, engine, existed=len(stage.winners()))


def test_a_hung_lookup_ends_at_the_client_timeout(stage: Stage, engine: Engine) -> None:
    stage.generate()
    stage.k3.inject(Fault.timeout(), path=QUERY)
    report = stage.run(engine, timeout=HANG_TIMEOUT)
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades)
    assert report.elapsed >= HANG_TIMEOUT
    assert stage.k3.faults.struck == [("timeout", stage.k3.faults.struck[0][1])]
    assert stage.k3.call_count(QUERY) == 2
    assert_store_complete(stage)


def test_update_whose_reply_is_lost_is_sent_again(stage: Stage, engine: Engine) -> None:
    """Saving the same fields again is harmless: an update with an unknown outcome is resent."""
    stage.generate()
    old = sorted(stage.winners())
    ids = stage.k3.seed("BD_Customer", [Customer(n, "旧名字").to_wire() for n in old])
    stage.k3.inject_reply_lost(path=SAVE)
    report = stage.run(engine, on_existing="update")
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades, existing=set(old), update=True)
    assert stage.k3.call_count(SAVE) == chunks(len(old)) + 1
    calls = [sorted(call) for call in stage.k3.sent_numbers()]
    twice = [call for call in calls if calls.count(call) > 1]
    assert len(twice) == 2  # one call, sent once more; every other call once
    assert sorted(_second_attempts(stage)) == twice[0]
    assert_store_complete(stage)
    assert [stage.customers()[n]["FCUSTID"] for n in old] == ids  # updated in place


@pytest.mark.parametrize("fault", ["503", "timeout", "reset"])
def test_a_failed_login_is_retried(stage: Stage, engine: Engine, fault: str) -> None:
    """The first login and, after the session is lost at the second save, the re-login each
    fail once: the call they were for was never sent, so even a save is simply retried."""
    stage.generate()
    login_fault = {
        "503": Fault.http_status(503),
        "timeout": Fault.timeout(),
        "reset": Fault.reset(),
    }[fault]
    stage.k3.inject(login_fault, path="ValidateUser")  # the first login
    stage.k3.inject(login_fault, after=1, path="ValidateUser")  # the re-login
    saves: list[str] = []

    def expire_on_second_save(operation: str, request: httpx.Request) -> None:
        if operation == SAVE:
            saves.append(operation)
            if len(saves) == 2:
                stage.k3.expire_sessions()

    stage.on_k3(expire_on_second_save)
    report = stage.run(engine, auth="password", timeout=HANG_TIMEOUT)
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades)
    assert report.ok
    assert stage.k3.faults.pending == 0
    lost = stage.k3.session_lost[SAVE]
    assert stage.k3.call_count(SAVE) == chunks(len(stage.winners())) + lost
    assert stage.k3.call_count("ValidateUser") == 4  # two logins, each tried twice
    if engine == "sync":  # the second save found the session gone, and only it was resent
        assert lost == 1
        assert _second_attempts(stage) == set(stage.k3.sent_numbers()[1])
    assert_store_complete(stage)
