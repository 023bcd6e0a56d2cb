"""The session lost again and again while saves are in flight (issue 9, item 9).

K/3 Cloud ends the session on every second BatchSave it receives. The sync engine sends one save
at a time; the async one sends several side by side, so most of its saves meet a session that
another save's arrival has just ended. Both must end the same way: every customer saved exactly
once, no failed row, every refused save replayed, and one login per session loss, not one per
call that found it lost.
"""

from __future__ import annotations

import httpx

from .conftest import (
    Engine,
    Stage,
    assert_accounted,
    assert_converges,
    assert_store_complete,
    chunks,
    expected_counts,
)

SAVE = "BatchSave"
#: 45 customers in BatchSave calls of 3: fifteen calls, which the async engine sends side by side.
CUSTOMERS = 45
SMALL_BATCH = 3


def test_session_dropped_on_every_second_save(stage: Stage, engine: Engine) -> None:
    stage.generate(300, buyers=CUSTOMERS, missing_cid_every=None)
    assert len(stage.winners()) == CUSTOMERS
    saves: list[httpx.Request] = []

    def expire_on_every_second_save(operation: str, request: httpx.Request) -> None:
        if operation == SAVE:
            saves.append(request)
            if len(saves) % 2 == 0:
                stage.k3.expire_sessions()

    stage.on_k3(expire_on_every_second_save)
    report = stage.run(engine, auth="password", batch_size=SMALL_BATCH)
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades)  # no failed row, nothing uncertain
    assert_store_complete(stage)  # every customer, each exactly once
    lost = stage.k3.session_lost
    assert set(lost) == {SAVE}
    # A save refused for a lost session was not carried out; each was replayed, nothing more.
    assert stage.k3.call_count(SAVE) == len(saves) == chunks(CUSTOMERS, SMALL_BATCH) + lost[SAVE]
    # One login per session that ended (the first login, then at most one per expiry).
    assert 1 < stage.k3.login_count <= 1 + len(saves) // 2
    if engine == "sync":  # one save at a time: each second save found the session gone
        assert lost[SAVE] == chunks(CUSTOMERS, SMALL_BATCH) - 1
    stage.k3.hooks.clear()
    assert_converges(stage, engine, existed=CUSTOMERS, auth="password", batch_size=SMALL_BATCH)
