"""Every numeric argument of a sync is checked at the call, before any request (issue 9.3).

Before, ``page_size=0`` only failed inside the fetch (reported as a fetch failure of the first
window, the run "succeeding" with nothing done), ``window="1h"`` and ``confirm_timeout="5"`` raised
bare ``TypeError``s from a comparison, and ``confirm_timeout=inf`` an ``OverflowError`` later.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
import pytest

from .conftest import Stage

BAD_ARGUMENTS: list[tuple[dict[str, Any], str]] = [
    ({"page_size": 0}, "page_size must be an int >= 1, got 0"),
    ({"page_size": "100"}, "page_size must be an int >= 1, got '100'"),
    ({"page_size": True}, "page_size must be an int >= 1, got True"),
    ({"batch_size": 0}, "batch_size must be an int >= 1, got 0"),
    ({"batch_size": 2.5}, "batch_size must be an int >= 1, got 2.5"),
    ({"window": timedelta(0)}, "window must be at least 1 ms"),
    ({"window": timedelta(hours=-1)}, "window must be at least 1 ms"),
    ({"window": "1h"}, "window must be a timedelta (or None), got '1h'"),
    ({"window": 3600}, "window must be a timedelta (or None), got 3600"),
    ({"confirm_timeout": -1}, "confirm_timeout must be finite seconds >= 0, got -1"),
    ({"confirm_timeout": "5"}, "confirm_timeout must be finite seconds >= 0, got '5'"),
    ({"confirm_timeout": True}, "confirm_timeout must be finite seconds >= 0, got True"),
    ({"confirm_timeout": float("nan")}, "confirm_timeout must be finite seconds >= 0, got nan"),
    ({"confirm_timeout": float("inf")}, "confirm_timeout must be finite seconds >= 0, got inf"),
]
ASYNC_ONLY: list[tuple[dict[str, Any], str]] = [
    ({"concurrency": 0}, "concurrency must be an int >= 1, got 0"),
    ({"concurrency": "8"}, "concurrency must be an int >= 1, got '8'"),
    ({"concurrency": True}, "concurrency must be an int >= 1, got True"),
    ({"fetch_concurrency": 0}, "fetch_concurrency must be an int >= 1, got 0"),
    ({"fetch_concurrency": 4.0}, "fetch_concurrency must be an int >= 1, got 4.0"),
]


def _ids(cases: list[tuple[dict[str, Any], str]]) -> list[str]:
    return [f"{k}={v!r}" for case, _ in cases for k, v in case.items()]


@pytest.mark.parametrize(("kwargs", "message"), BAD_ARGUMENTS, ids=_ids(BAD_ARGUMENTS))
def test_sync_refuses_a_bad_argument_before_any_request(
    stage: Stage, kwargs: dict[str, Any], message: str
) -> None:
    stage.generate(3, buyers=2)
    with pytest.raises(ValueError) as info:
        stage.sync(**kwargs)
    assert message in str(info.value)
    assert not stage.fake_huke.received
    assert not stage.fake_k3.received


@pytest.mark.parametrize(
    ("kwargs", "message"), BAD_ARGUMENTS + ASYNC_ONLY, ids=_ids(BAD_ARGUMENTS + ASYNC_ONLY)
)
def test_async_sync_refuses_a_bad_argument_before_any_request(
    stage: Stage, kwargs: dict[str, Any], message: str
) -> None:
    stage.generate(3, buyers=2)
    with pytest.raises(ValueError) as info:
        anyio.run(lambda: stage.async_sync(**kwargs))
    assert message in str(info.value)
    assert not stage.fake_huke.received
    assert not stage.fake_k3.received


def test_good_edge_values_still_run(stage: Stage) -> None:
    trades = stage.generate(6, buyers=3)
    report = stage.sync(page_size=1, batch_size=1, window=None, confirm_timeout=0)
    assert report.ok
    assert set(stage.customers()) == {t["buyerCid"] for t in trades}
