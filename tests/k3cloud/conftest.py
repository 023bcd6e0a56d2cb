"""Shared fixtures: a strict fake, clients wired to it, and a harness running sync and async alike."""

from __future__ import annotations

import functools
from typing import Any

import anyio
import httpx
import pytest

from _huke_k3_core import RetryPolicy
from k3cloud_client import AsyncK3CloudClient, K3CloudClient
from k3cloud_client.testing import (
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
)

SERVER_URL = "http://k3.test/k3cloud/"
PASSWORD = "Pa55word-for-tests"
#: Retries without waiting, so that tests stay fast.
FAST = RetryPolicy(initial_delay=0, max_delay=0, jitter=0)


def credentials(**overrides: Any) -> dict[str, Any]:
    """Constructor arguments for signed headers against the fake."""
    return {
        "acct_id": TEST_ACCT_ID,
        "user_name": TEST_USER_NAME,
        "app_id": TEST_APP_ID,
        "app_secret": TEST_APP_SECRET,
        **overrides,
    }


@pytest.fixture
def fake() -> FakeK3Cloud:
    return FakeK3Cloud(
        acct_id=TEST_ACCT_ID,
        user_name=TEST_USER_NAME,
        app_id=TEST_APP_ID,
        app_secret=TEST_APP_SECRET,
        password=PASSWORD,
    )


class Harness:
    """Builds the sync or the async client and calls it the same way from a sync test."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.is_async = kind == "async"

    def client(
        self, fake: FakeK3Cloud | None = None, *, transport: Any = None, **kwargs: Any
    ) -> K3CloudClient | AsyncK3CloudClient:
        transport = transport or (fake.transport() if fake is not None else None)
        settings = {**credentials(), "retry": FAST, **kwargs}
        if self.is_async:
            return AsyncK3CloudClient(
                SERVER_URL, http_client=httpx.AsyncClient(transport=transport), **settings
            )
        return K3CloudClient(SERVER_URL, http_client=httpx.Client(transport=transport), **settings)

    def call(self, client: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        function = getattr(client, method)
        if not self.is_async:
            return function(*args, **kwargs)
        return anyio.run(functools.partial(function, *args, **kwargs))

    def collect(self, client: Any, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        if not self.is_async:
            return list(getattr(client, method)(*args, **kwargs))

        async def gather() -> list[Any]:
            return [item async for item in getattr(client, method)(*args, **kwargs)]

        return anyio.run(gather)


@pytest.fixture(params=["sync", "async"])
def harness(request: pytest.FixtureRequest) -> Harness:
    return Harness(request.param)
