"""Every fault at once, in both simulators, over loopback sockets, with a session login: the sync
still accounts for each trade once, ends with every buyer in K/3 Cloud exactly once, and a re-run
changes nothing."""

from __future__ import annotations

import json

import httpx

from huke_client.testing import Fault, envelope_error
from k3cloud_client import Customer

from .conftest import (
    HANG_TIMEOUT,
    Engine,
    Stage,
    assert_accounted,
    assert_converges,
    assert_store_complete,
)

SEARCH = "trade/searchTrades"
QUERY = "ExecuteBillQuery"
SAVE = "BatchSave"


def test_everything_at_once(stage: Stage, engine: Engine) -> None:
    trades = stage.generate(200, buyers=60, missing_cid_every=20)
    # Huke: a reset, a 5xx burst, a 429 with Retry-After, truncated JSON, a rate-limit envelope,
    # a hang (faults on one path strike one after the other, each after its own count).
    stage.huke.inject(Fault.reset(), after=1, path=SEARCH)
    stage.huke.inject(Fault.http_status(503), after=1, times=2, path=SEARCH)
    stage.huke.inject(Fault.http_status(429, retry_after="0.02"), after=1, path=SEARCH)
    stage.huke.inject(Fault.malformed_json(), after=1, path=SEARCH)
    stage.huke.inject(envelope_error(40100, "rate limited"), after=1, path=SEARCH)
    stage.huke.inject(Fault.timeout(), after=1, path=SEARCH)
    # K/3 lookups: a 502, a MsgCode 14, truncated JSON.
    stage.k3.inject(Fault.http_status(502), path=QUERY)
    stage.k3.inject_rate_limit(path=QUERY)
    stage.k3.inject(Fault.malformed_json(), path=QUERY)
    # K/3 saves: a reply lost after the commit, a 429, a MsgCode 14, a 503 before the commit.
    stage.k3.inject_reply_lost(after=1, path=SAVE)
    stage.k3.inject(Fault.http_status(429, retry_after="0.02"), path=SAVE)
    stage.k3.inject_rate_limit(after=1, path=SAVE)
    stage.k3.inject(Fault.http_status(503), path=SAVE)
    # The session ends at the third save, and another writer creates a customer meanwhile.
    saves: list[httpx.Request] = []
    taken: list[str] = []

    def meddle(operation: str, request: httpx.Request) -> None:
        if operation != SAVE:
            return
        saves.append(request)
        if len(saves) == 1:
            number = str(json.loads(request.content)["data"]["Model"][-1]["FNumber"])
            taken.append(number)
            stage.k3.seed("BD_Customer", [Customer(number, "另一个系统").to_wire()])
        if len(saves) == 3:
            stage.k3.expire_sessions()

    stage.on_k3(meddle)
    # More retries than faults on any path: the scenario is about surviving them all.
    report = stage.run(
        engine,
        auth="password",
        huke_options={"retry_codes": [40100]},
        timeout=HANG_TIMEOUT,
        retries=8,
    )
    assert_accounted(report, stage)
    assert report.ok, str(report)
    assert stage.huke.faults.pending == 0
    assert stage.k3.faults.pending == 0
    numbers = len(stage.winners())
    counts = report.counts
    skipped = len(trades) // 20
    assert (counts["skipped"], counts["failed"], counts["updated"]) == (skipped, 0, 0)
    assert counts["merged"] == len(trades) - skipped - numbers
    # The customer the other writer made is "existed" or, when its row was in the save whose
    # reply was lost, "created" (confirmed): the bridge cannot tell who wrote it.
    assert counts["created"] + counts["existed"] == numbers
    assert counts["existed"] <= 1
    assert stage.k3.login_count == 2
    assert_store_complete(stage, existing=dict.fromkeys(taken, "另一个系统"))
    assert_converges(stage, engine, existed=numbers, auth="password")


def test_many_customers_with_faults_while_lookups_overlap_fetching(
    stage: Stage, engine: Engine
) -> None:
    """Over 200 customers: the async engine looks numbers up while pages still arrive. Lookups
    fail in every way (and the session ends during one), saves lose a reply; nothing changes."""
    stage.generate(600, buyers=2000, seed=3, missing_cid_every=None)
    numbers = len(stage.winners())
    assert numbers > 400  # at least three lookups of 200
    # Three faults in a row (the client's three retries absorb them), then, one lookup later,
    # a rate limit; the session ends at the sixth lookup request.
    stage.k3.inject(Fault.http_status(503), times=2, path=QUERY)
    stage.k3.inject(Fault.malformed_json(), path=QUERY)
    stage.k3.inject_rate_limit(after=1, path=QUERY)
    stage.k3.inject_reply_lost(after=1, path=SAVE)
    lookups: list[str] = []

    def expire_on_second_lookup(operation: str, request: httpx.Request) -> None:
        if operation == QUERY:
            lookups.append(operation)
            if len(lookups) == 6:
                stage.k3.expire_sessions()

    stage.on_k3(expire_on_second_lookup)
    report = stage.run(engine, auth="password", page_size=50, batch_size=100, retries=5)
    assert_accounted(report, stage)
    assert report.ok, str(report)
    assert report.counts["created"] == numbers
    assert report.counts["merged"] == 600 - numbers
    assert stage.k3.login_count == 2
    assert stage.k3.call_count(SAVE) == -(-numbers // 100)  # the lost reply was confirmed
    assert_store_complete(stage)
    assert_converges(stage, engine, existed=numbers, auth="password", page_size=50, batch_size=100)
