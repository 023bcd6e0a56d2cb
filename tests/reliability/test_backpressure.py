"""A K/3 Cloud that takes only a few calls at a time, over loopback sockets: whatever the
configured concurrency, no row fails for the rate limit, and every buyer is stored exactly once.

The simulator works on at most ``CAPACITY`` requests at once (``SERVICE_TIME`` each) and turns
any other away at once with MsgCode 14, as a loaded K/3 Cloud does. The clients' retries are
instant (``conftest.RETRY``), so a call turned away spends them at once: what saves it is the
engine (its adaptive limit, and its own retry of calls still rate-limited).
"""

from __future__ import annotations

from .conftest import (
    BATCH_SIZE,
    RETRY,
    Engine,
    Stage,
    assert_accounted,
    assert_converges,
    assert_store_complete,
    expected_counts,
)

CAPACITY = 4
#: Long enough for one event loop to have many more calls than that in flight (at a few ms, the
#: client's own work per call spaces them out).
SERVICE_TIME = 0.02


def test_any_concurrency_against_a_server_taking_four_at_a_time(
    stage: Stage, engine: Engine
) -> None:
    stage.generate(160, buyers=80, missing_cid_every=None)
    stage.k3.limit_capacity(CAPACITY, service_time=SERVICE_TIME)
    # Async: one customer per BatchSave, 64 at a time, many more calls than the server takes
    # (before back-pressure, 5-20 % of the rows failed here). Sync: one call at a time, the
    # default batches (one customer per call would only make the test slow).
    options: dict[str, int] = {"batch_size": 1, "concurrency": 64} if engine == "async" else {}
    report = stage.run(engine, **options)
    assert_accounted(report, stage)
    assert report.counts["failed"] == 0, str(report)
    assert report.counts == expected_counts(stage.trades)
    assert report.ok, str(report)
    assert_store_complete(stage)  # every buyer, each exactly once
    assert stage.k3.peak_in_flight <= CAPACITY
    assert_converges(stage, engine, existed=len(stage.winners()), **options)


def test_the_engines_outlast_a_burst_of_rate_limits(stage: Stage, engine: Engine) -> None:
    """More MsgCode 14 answers in a row than the client retries: the engine sends the call again
    (it was not carried out), and nothing is saved twice."""
    stage.generate()
    attempts = RETRY.max_retries + 1  # per client call
    # Sync: the first save spends all its attempts. Async: the saves go side by side; with
    # one answer more than all their attempts, each of them spends all of its.
    saves = 1 if engine == "sync" else len(stage.winners()) // BATCH_SIZE
    stage.k3.inject_rate_limit(times=saves * attempts + 1, path="BatchSave")
    report = stage.run(engine)
    assert_accounted(report, stage)
    assert report.counts == expected_counts(stage.trades)
    assert_store_complete(stage)
    assert_converges(stage, engine, existed=len(stage.winners()))
