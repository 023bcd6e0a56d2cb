"""Retry policy: which failures are retried, and how long to wait before the next attempt."""

from __future__ import annotations

import datetime
import email.utils
import math
import random
import time
from collections.abc import Callable

import attrs

#: Statuses that mean "not processed, try again later" (429) or a transient server fault (5xx).
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@attrs.frozen
class RetryPolicy:
    """Capped exponential backoff with full jitter, ``Retry-After`` as a floor.

    The n-th retry (n from 0) has a backoff of ``b = min(max_delay, initial_delay * 2**n)`` and
    waits ``b * (1 - jitter) + uniform(0, jitter * b)``: with the default ``jitter=1`` that is
    "full jitter", ``uniform(0, b)``, so that clients turned away together (a 429, MsgCode 14)
    spread their retries over the whole backoff instead of coming back in lockstep; ``jitter=0``
    gives the plain, deterministic backoff.

    A ``Retry-After`` from the server is the least wait: the delay is ``min(retry_after,
    max_retry_after) + uniform(0, jitter * b)``. The server's value is capped, the jitter is
    still added on top: everyone told "come back in 2 s" would otherwise come back at the same
    instant (so a delay is at most ``max_retry_after + max_delay``).
    """

    max_retries: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    initial_delay: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=8.0, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(
        default=1.0, validator=[attrs.validators.ge(0), attrs.validators.le(1)]
    )
    max_retry_after: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))

    def backoff(self, retry_index: int) -> float:
        """The n-th retry's backoff before jitter: ``min(max_delay, initial_delay * 2**n)``."""
        if retry_index >= 64:  # 2.0**n overflows a float near 1024; the cap is long reached
            return self.max_delay
        return min(self.max_delay, self.initial_delay * 2.0 ** max(retry_index, 0))

    def delay(
        self,
        retry_index: int,
        retry_after: float | None = None,
        *,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before the ``retry_index``-th retry (from 0); ``rand`` draws from
        ``[0, 1)`` (injected by tests)."""
        backoff = self.backoff(retry_index)
        spread = self.jitter * backoff * rand()
        # A wait that is no number of seconds (NaN, infinite, negative) is no advice: sleeping on
        # it would raise or never end.
        if retry_after is not None and math.isfinite(retry_after) and retry_after >= 0:
            return min(retry_after, self.max_retry_after) + spread
        return backoff - self.jitter * backoff + spread


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None.

    None too for what is neither: ``nan``, ``inf``, a negative count, an overflowing number, a
    date that is no date. A misbehaving server's header must not reach a ``sleep``; the caller's
    backoff applies instead.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    when = http_date(value)
    return None if when is None else max(when - now(), 0.0)


def http_date(value: str) -> float | None:
    """The time (``time.time()`` seconds) an HTTP date says (``Date``, ``Retry-After``), or None
    for a text that is no date.

    A date in ``-0000`` or with no zone is UTC (RFC 5322, RFC 9110): ``parsedate_to_datetime``
    makes it a naive datetime, which ``timestamp()`` would read as this machine's local time.
    """
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None instead of raising
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    try:
        return when.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


class RetryableResponse(Exception):
    """Raised by a response parser: the reply is an error that may succeed if the call is repeated.

    The transport retries it like a 429 (whatever the call's idempotency, because the server said the
    call was not carried out) and raises ``error`` once retries are exhausted.
    """

    def __init__(self, error: Exception, *, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
