"""Both simulators wired to the real clients through ``httpx.MockTransport`` (instant retries)."""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import pytest

from huke_client import AsyncHukeClient, HukeClient, RetryPolicy
from huke_client.testing import FakeHuke, generate_trades
from huke_k3_bridge import SyncReport, async_sync_customers, sync_customers
from k3cloud_client import AsyncK3CloudClient, K3CloudClient
from k3cloud_client.testing import (
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
)

HUKE_KEY = "bridge-test-key"
HUKE_SECRET = "bridge-test-secret"
HOUR_MS = 3_600_000
FAST = RetryPolicy(initial_delay=0, max_delay=0, max_retry_after=0)
#: How long an uncertain save is looked for before it counts as not saved (the default, the
#: client's 30 s read timeout, is for real servers; the simulators commit at once or never).
CONFIRM_TIMEOUT = 0.05
K3_CREDENTIALS: dict[str, str] = {
    "acct_id": TEST_ACCT_ID,
    "user_name": TEST_USER_NAME,
    "app_id": TEST_APP_ID,
    "app_secret": TEST_APP_SECRET,
}


class Stage:
    """A FakeHuke holding ``trades`` and an empty FakeK3Cloud; runs syncs against them."""

    def __init__(self, trades: Iterable[dict[str, Any]] = ()) -> None:
        self.now_ms = int(time.time() * 1000)
        self.start = self.now_ms - 20 * HOUR_MS
        self.end = self.now_ms
        self.fake_huke = FakeHuke(HUKE_KEY, HUKE_SECRET, trades=trades)
        self.fake_k3 = FakeK3Cloud(**K3_CREDENTIALS)

    def generate(
        self, n: int, *, buyers: int, seed: int = 1, **options: Any
    ) -> list[dict[str, Any]]:
        trades = list(
            generate_trades(
                n, start=self.start + 1000, end=self.end - 1000, buyers=buyers, seed=seed, **options
            )
        )
        self.fake_huke.add_trades(trades)
        return trades

    @contextmanager
    def clients(self) -> Iterator[tuple[HukeClient, K3CloudClient]]:
        with ExitStack() as stack:
            http = stack.enter_context(httpx.Client(transport=self.fake_k3.transport()))
            huke = stack.enter_context(self.fake_huke.client())
            k3 = stack.enter_context(
                K3CloudClient(
                    "http://k3.test/k3cloud/", **K3_CREDENTIALS, http_client=http, retry=FAST
                )
            )
            yield huke, k3

    def sync(self, **options: Any) -> SyncReport:
        options.setdefault("start", self.start)
        options.setdefault("end", self.end)
        options.setdefault("progress", False)
        options.setdefault("confirm_timeout", CONFIRM_TIMEOUT)
        with self.clients() as (huke, k3):
            return sync_customers(huke, k3, **options)

    async def async_sync(self, **options: Any) -> SyncReport:
        options.setdefault("start", self.start)
        options.setdefault("end", self.end)
        options.setdefault("progress", False)
        options.setdefault("confirm_timeout", CONFIRM_TIMEOUT)
        async with httpx.AsyncClient(transport=self.fake_k3.transport()) as http:
            huke: AsyncHukeClient = self.fake_huke.async_client()
            k3 = AsyncK3CloudClient(
                "http://k3.test/k3cloud/", **K3_CREDENTIALS, http_client=http, retry=FAST
            )
            async with huke, k3:
                return await async_sync_customers(huke, k3, **options)

    def customers(self) -> dict[str, dict[str, Any]]:
        """The stored customers by number; fails the test if a number is stored twice."""
        records = self.fake_k3.records("BD_Customer")
        counts = collections.Counter(str(r["FNumber"]) for r in records)
        twice = [n for n, c in counts.items() if c > 1]
        assert not twice, f"duplicate customer numbers in K/3: {twice}"
        return {str(r["FNumber"]): r for r in records}

    def sent(self, operation: str) -> list[dict[str, Any]]:
        """Bodies of the requests received for ``operation`` (e.g. ``"BatchSave"``)."""
        return [
            json.loads(r.content)
            for r in self.fake_k3.received
            if r.url.path.endswith(f".{operation}.common.kdsvc")
        ]


@pytest.fixture
def stage() -> Stage:
    return Stage()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``HUKE_*`` or ``K3CLOUD_*`` variable of the machine running the tests."""
    for name in list(os.environ):
        if name.startswith(("HUKE_", "K3CLOUD_")):
            monkeypatch.delenv(name)
    return monkeypatch
