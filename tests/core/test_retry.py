from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _huke_k3_core import RetryPolicy, parse_retry_after


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=3.0, jitter=0.0)
    assert [policy.delay(i) for i in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_default_is_full_jitter_over_the_whole_backoff() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=8.0)
    assert policy.jitter == 1.0
    assert policy.delay(0, rand=lambda: 0.0) == 0.0
    assert policy.delay(0, rand=lambda: 0.5) == 0.5
    assert policy.delay(2, rand=lambda: 0.5) == 2.0  # half of min(8, 1 * 2**2)
    assert policy.delay(10, rand=lambda: 0.999) == pytest.approx(8.0 * 0.999)


def test_partial_jitter_randomizes_that_fraction_of_the_backoff() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=8.0, jitter=0.25)
    assert policy.delay(0, rand=lambda: 0.0) == 0.75
    assert policy.delay(0, rand=lambda: 0.5) == 0.875


def test_retries_turned_away_together_do_not_come_back_together() -> None:
    draws = iter([0.1, 0.6, 0.3, 0.9])
    policy = RetryPolicy(initial_delay=0.5)
    delays = [policy.delay(0, rand=lambda: next(draws)) for _ in range(4)]
    assert delays == pytest.approx([0.05, 0.3, 0.15, 0.45])
    assert len(set(delays)) == 4


def test_retry_after_is_the_floor_and_jitter_is_added_on_top() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=8.0, max_retry_after=10.0)
    assert policy.delay(0, retry_after=4.0, rand=lambda: 0.0) == 4.0
    assert policy.delay(0, retry_after=4.0, rand=lambda: 0.5) == 4.25
    assert policy.delay(2, retry_after=4.0, rand=lambda: 0.5) == 5.0  # backoff 2 s
    # The server's value is capped, the spread is still added: no lockstep at the cap either.
    assert policy.delay(3, retry_after=3600.0, rand=lambda: 0.5) == 12.0
    assert policy.delay(0, retry_after=-5.0, rand=lambda: 0.0) == 0.0


def test_without_jitter_retry_after_is_exact() -> None:
    policy = RetryPolicy(initial_delay=0.5, jitter=0.0, max_retry_after=10.0)
    assert policy.delay(0, retry_after=4.0, rand=lambda: 0.9) == 4.0
    assert policy.delay(3, retry_after=3600.0, rand=lambda: 0.9) == 10.0


def test_backoff_of_a_huge_retry_index_is_the_cap() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=3.0)
    assert policy.backoff(5000) == 3.0
    assert policy.delay(5000, rand=lambda: 0.5) == 1.5


@pytest.mark.parametrize("bad", [{"max_retries": -1}, {"jitter": 1.5}, {"initial_delay": -1.0}])
def test_invalid_policy_is_rejected(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        ("2.5", 2.5),
        (" 7 ", 7.0),
        ("-4", None),
        (None, None),
        ("soon", None),
        ("", None),
    ],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(header, now=lambda: now) == pytest.approx(30.0)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after(past, now=lambda: now) == 0.0


@given(
    st.integers(min_value=0, max_value=2000),
    st.floats(min_value=0, max_value=1, exclude_max=True),
    st.floats(min_value=0, max_value=1),
    st.one_of(st.none(), st.floats(min_value=-10, max_value=1e6)),
)
def test_delay_always_within_bounds(
    index: int, rand: float, jitter: float, retry_after: float | None
) -> None:
    policy = RetryPolicy(initial_delay=0.1, max_delay=5.0, jitter=jitter, max_retry_after=30.0)
    delay = policy.delay(index, retry_after, rand=lambda: rand)
    floor = 0.0 if retry_after is None else min(max(retry_after, 0.0), 30.0)
    assert floor <= delay <= floor + 5.0
