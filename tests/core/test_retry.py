from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _huke_k3_core import RetryPolicy, parse_retry_after


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=3.0, jitter=0.0)
    assert [policy.delay(i) for i in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_only_shortens_the_delay() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=8.0, jitter=0.25)
    assert policy.delay(0, rand=lambda: 0.0) == 1.0
    assert policy.delay(0, rand=lambda: 1.0) == 0.75


def test_retry_after_replaces_backoff_and_is_capped() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_retry_after=10.0)
    assert policy.delay(0, retry_after=4.0) == 4.0
    assert policy.delay(3, retry_after=3600.0) == 10.0
    assert policy.delay(0, retry_after=-5.0) == 0.0


@pytest.mark.parametrize("bad", [{"max_retries": -1}, {"jitter": 1.5}, {"initial_delay": -1.0}])
def test_invalid_policy_is_rejected(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("2.5", 2.5), (" 7 ", 7.0), ("-4", 0.0), (None, None), ("soon", None), ("", None)],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(header, now=lambda: now) == pytest.approx(30.0)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after(past, now=lambda: now) == 0.0


@given(st.integers(min_value=0, max_value=60), st.floats(min_value=0, max_value=1))
def test_delay_always_within_bounds(index: int, rand: float) -> None:
    policy = RetryPolicy(initial_delay=0.1, max_delay=5.0, jitter=0.5)
    delay = policy.delay(index, rand=lambda: rand)
    assert 0.0 <= delay <= 5.0
