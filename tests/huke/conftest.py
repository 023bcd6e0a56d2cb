"""Fixtures for the Huke client tests: a strict fake, an advancing clock, instant retries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from huke_client import AsyncHukeClient, HukeClient, RetryPolicy
from huke_client.testing import FakeHuke

# The published test vector's credentials.
APP_KEY = "34ff472473d741b881a7b46a3cfb5b59"
APP_SECRET = "d83d0971ca5641a7a6b2b7c78dea7f49"
#: A range that holds every synthetic trade the tests create.
START_MS = 1_700_000_000_000
END_MS = START_MS + 86_400_000
INSTANT = RetryPolicy(initial_delay=0, max_delay=0, jitter=0, max_retry_after=0)


class Clock:
    """A clock that moves ``step`` seconds each time it is read, so consecutive requests are
    signed with different ``ur-curtime`` values."""

    def __init__(self, start: float = 1_700_000_000.0, step: float = 1.0) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> float:
        value = self.now
        self.now += self.step
        return value


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeHuke:
    return FakeHuke(APP_KEY, APP_SECRET, clock=clock)


@pytest.fixture
def client(fake: FakeHuke) -> Iterator[HukeClient]:
    with fake.client(retry=INSTANT) as client:
        yield client


@pytest.fixture
async def aclient(fake: FakeHuke) -> AsyncIterator[AsyncHukeClient]:
    async with fake.async_client(retry=INSTANT) as client:
        yield client
