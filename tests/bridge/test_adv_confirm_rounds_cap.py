"""confirm_timeout is not honoured when it is longer than ~71 s: the confirmation loop stops
after _MAX_CONFIRM_ROUNDS=20 lookups (19 pauses, 0.1 s doubling to 5 s = 71.3 s) and the
create is sent again while the first save may still be committing -> possible duplicate.
(The default confirm_for is the K/3 read timeout, so a client made with timeout=120 hits it.)"""

from typing import Any

import huke_k3_bridge._engine as engine
from k3cloud_client.testing import FakeK3Cloud

from .conftest import Stage

CONFIRM = 120.0


def test_uncertain_save_is_confirmed_for_the_whole_confirm_timeout(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(engine.time, "sleep", lambda s: slept.append(s))
    stage = Stage()
    stage.generate(1, buyers=1)
    k3 = stage.fake_k3
    k3.inject_reply_lost(times=1, path="BatchSave")
    batch_sends: list[float] = []  # fake seconds waited when each BatchSave was sent
    original = FakeK3Cloud.__call__

    def spy(self: Any, request: Any) -> Any:
        if "BatchSave" in request.url.path:
            batch_sends.append(sum(slept))
        return original(self, request)

    monkeypatch.setattr(FakeK3Cloud, "__call__", spy)
    # The committed row stays invisible to queries for the first 100 s (a commit still running);
    # hide it by making the query see nothing until then.
    original_query = FakeK3Cloud._query

    def slow_commit(self: Any, data: dict, *, as_objects: bool) -> Any:
        if sum(slept) < 100.0:
            return []
        return original_query(self, data, as_objects=as_objects)

    monkeypatch.setattr(FakeK3Cloud, "_query", slow_commit)
    report = stage.sync(confirm_timeout=CONFIRM)
    # Looked up until the commit shows (after 100 s, within the 120 s), so never sent again.
    assert batch_sends == [0], (
        f"the create was re-sent after {batch_sends[1:]} s of confirmation "
        f"(confirm_timeout={CONFIRM}s); report: {report.counts}"
    )
    assert [(o.status, o.reason) for o in report.outcomes] == [
        ("created", "confirmed after an uncertain reply")
    ]
