"""Both simulators behind real sockets on 127.0.0.1 (or in-process for speed), the real clients
pointed at them, and the invariants every reliability test checks after a sync.

The invariants:

- every fetched trade has exactly one outcome in the report, and every input trade is fetched
  (``assert_accounted``);
- ``FakeK3Cloud`` never holds a customer number twice (``Stage.customers``);
- a re-run converges: it creates nothing and leaves the store as it was (``assert_converges``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import AsyncExitStack, ExitStack
from typing import Any, Literal

import httpx
import pytest

from huke_client import AsyncHukeClient, HukeClient, RetryPolicy
from huke_client.testing import FakeHuke, LoopbackServer, generate_trades
from huke_k3_bridge import SyncReport, async_sync_customers, sync_customers
from k3cloud_client import AsyncK3CloudClient, K3CloudClient
from k3cloud_client.testing import (
    TEST_ACCT_ID,
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_USER_NAME,
    FakeK3Cloud,
)

Engine = Literal["sync", "async"]
Auth = Literal["signed", "password"]
Transport = Literal["loopback", "inprocess"]
#: ``hook(operation, request)``, called by a simulator before it handles a request.
Hook = Callable[[str, httpx.Request], None]

ENGINES: tuple[Engine, ...] = ("sync", "async")
HUKE_KEY = "reliability-key"
HUKE_SECRET = "reliability-secret"
K3_PASSWORD = "reliability-password"
HOUR_MS = 3_600_000
#: The clients' timeout (seconds): generous, so that a busy CI machine causes no spurious one...
TIMEOUT = 5.0
#: ...except in tests that make a server hang, where the client gives up after this long...
HANG_TIMEOUT = 0.3
#: ...well before the simulated hang ends on the server's side.
SERVER_HANG = 1.0
#: Instant retries, but a ``Retry-After`` the server sends (kept small by the tests) is honoured.
RETRY = RetryPolicy(max_retries=3, initial_delay=0, max_delay=0, max_retry_after=1.0)
#: How long an uncertain save is looked for before it counts as not saved (the default, the
#: client's read timeout, is for real servers: these simulators commit at once or never, except
#: in the tests of slow commits, which set their own).
CONFIRM_TIMEOUT = 0.2
#: Scale of the standard data set: pages of 10 trades, BatchSave calls of 8 customers.
PAGE_SIZE = 10
BATCH_SIZE = 8
#: One TLS context for every pool the tests make (never used: the servers speak plain HTTP).
_TLS = ssl.create_default_context()
K3_CREDENTIALS: dict[str, str] = {
    "acct_id": TEST_ACCT_ID,
    "user_name": TEST_USER_NAME,
    "app_id": TEST_APP_ID,
    "app_secret": TEST_APP_SECRET,
}


def k3_operation(request: httpx.Request) -> str:
    """``/k3cloud/Kingdee...DynamicFormService.BatchSave.common.kdsvc`` -> ``BatchSave``."""
    name = request.url.path.rsplit("/", 1)[-1]
    return name.removesuffix(".common.kdsvc").rpartition(".")[2]


class _Counter:
    """Requests being handled right now (a context manager around each)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def __enter__(self) -> None:
        with self._lock:
            self.value += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.value -= 1


class HookedHuke(FakeHuke):
    """``FakeHuke`` that logs when each request arrives and runs test hooks before handling it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hooks: list[Hook] = []
        #: (``time.monotonic()``, operation) per request, in arrival order.
        self.arrivals: list[tuple[float, str]] = []
        self.handling = _Counter()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        operation = request.url.path.rsplit("/", 1)[-1]
        self.arrivals.append((time.monotonic(), operation))
        with self.handling:
            for hook in list(self.hooks):
                hook(operation, request)
            return super().__call__(request)


class HookedK3(FakeK3Cloud):
    """``FakeK3Cloud`` that logs when each request arrives and runs test hooks before handling it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hooks: list[Hook] = []
        #: (``time.monotonic()``, operation) per request, in arrival order.
        self.arrivals: list[tuple[float, str]] = []
        #: ``rewrite(operation, response) -> response``: a server that answers wrongly.
        self.rewrites: list[Callable[[str, httpx.Response], httpx.Response]] = []
        #: Per operation, the replies that said the session was lost (MsgCode 1).
        self.session_lost: collections.Counter[str] = collections.Counter()
        self.handling = _Counter()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        operation = k3_operation(request)
        self.arrivals.append((time.monotonic(), operation))
        with self.handling:
            for hook in list(self.hooks):
                hook(operation, request)
            response = super().__call__(request)
            for rewrite in list(self.rewrites):
                response = rewrite(operation, response)
        if _msg_code(response.content) == 1:
            self.session_lost[operation] += 1
        return response

    def sent_numbers(self, operation: str = "BatchSave") -> list[list[str]]:
        """The ``FNumber``s of every ``operation`` request received (faulted ones included)."""
        out = []
        for request in list(self.received):
            if k3_operation(request) == operation:
                models = json.loads(request.content)["data"]["Model"]
                out.append([str(m["FNumber"]) for m in models])
        return out


def _msg_code(content: bytes) -> int | None:
    """The MsgCode of a K/3 Cloud reply that reports a failure (queries nest it in rows)."""
    try:
        body: Any = json.loads(content)
    except ValueError:
        return None
    while isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict) or not isinstance(body.get("Result"), dict):
        return None
    status = body["Result"].get("ResponseStatus")
    if not isinstance(status, dict) or status.get("IsSuccess") is not False:
        return None
    code = status.get("MsgCode")
    return code if isinstance(code, int) else None


class Stage:
    """A ``HookedHuke`` and a ``HookedK3``, served on 127.0.0.1 (``transport="loopback"``) or
    in-process (``"inprocess"``), and syncs run against them through the real clients."""

    def __init__(self, *, transport: Transport = "loopback", latency: float = 0.0) -> None:
        self.now_ms = int(time.time() * 1000)
        self.start = self.now_ms - 20 * HOUR_MS
        self.end = self.now_ms
        self.transport = transport
        self.huke = HookedHuke(HUKE_KEY, HUKE_SECRET)
        self.k3 = HookedK3(**K3_CREDENTIALS, password=K3_PASSWORD)
        self.trades: list[dict[str, Any]] = []
        self._servers: list[LoopbackServer] = []
        # The real routes (the fakes 404 any other path, as the services do).
        self.huke_url = "http://huke.test/openapi"
        self.k3_url = "http://k3.test/k3cloud/"
        if transport == "loopback":
            try:
                huke_server = self.huke.serve(latency=latency, hang=SERVER_HANG)
                self._servers.append(huke_server)
                k3_server = self.k3.serve(latency=latency, hang=SERVER_HANG)
                self._servers.append(k3_server)
            except BaseException:
                self.close()
                raise
            self.huke_url = f"{huke_server.url}/openapi"
            self.k3_url = f"{k3_server.url}/k3cloud/"

    def close(self) -> None:
        """Stop the servers (idempotent). Side by side: each waits for its poll loop to end."""
        closing = [threading.Thread(target=server.close) for server in self._servers]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join(timeout=10)
        assert not any(thread.is_alive() for thread in closing), "a server did not stop"
        self._servers = []

    # -- data ------------------------------------------------------------------------------------

    def generate(
        self, n: int = 120, *, buyers: int = 40, seed: int = 1, missing_cid_every: int | None = 25
    ) -> list[dict[str, Any]]:
        """Add ``n`` realistic trades (repeat buyers, every 25th without ``buyerCid``).

        The defaults make 32 customers: four full BatchSave calls, so that a fault striking any
        one of them (the async engine sends them side by side) touches ``BATCH_SIZE`` rows.
        """
        trades = list(
            generate_trades(
                n,
                start=self.start + 1000,
                end=self.end - 1000,
                buyers=buyers,
                seed=seed,
                missing_cid_every=missing_cid_every,
            )
        )
        self.add(trades)
        return trades

    def add(self, trades: Sequence[Mapping[str, Any]]) -> None:
        self.huke.add_trades(trades)
        self.trades.extend(dict(t) for t in trades)

    def stream(self) -> list[dict[str, Any]]:
        """The trades in the order Huke serves them (by ``createTime``, stably)."""
        return sorted(self.trades, key=lambda t: t["createTime"])

    def winners(self) -> dict[str, dict[str, Any]]:
        """Customer number -> the trade that should win it (the latest of its buyer)."""
        return {t["buyerCid"]: t for t in self.stream() if "buyerCid" in t}

    # -- K/3 Cloud -----------------------------------------------------------------------------

    def customers(self, use_org: str | None = None) -> dict[str, dict[str, Any]]:
        """The stored customers of one use organisation by number; fails the test when a number
        is stored twice in one organisation (an allocated copy in another is no duplicate).
        Without ``use_org`` the store must hold one organisation's customers at most."""
        by_org = self.customers_by_org()
        if use_org is not None:
            return by_org.get(use_org, {})
        assert len(by_org) <= 1, f"customers of organisations {sorted(by_org)}: pass use_org="
        return next(iter(by_org.values()), {})

    def customers_by_org(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Use organisation number -> customer number -> record; fails the test when a number
        is stored twice in one organisation."""
        found: dict[str, dict[str, dict[str, Any]]] = {}
        twice: list[tuple[str, str]] = []
        for record in self.k3.records("BD_Customer"):
            org = str((record.get("FUseOrgId") or {}).get("FNumber"))
            numbers = found.setdefault(org, {})
            if str(record["FNumber"]) in numbers:
                twice.append((org, str(record["FNumber"])))
            numbers[str(record["FNumber"])] = record
        assert not twice, f"numbers stored twice in one organisation in FakeK3Cloud: {twice}"
        return found

    def wait_idle(self, *, quiet: float = 0.1, timeout: float = 10.0) -> None:
        """Wait until neither simulator is handling a request nor received one for ``quiet``
        seconds: what a killed client had sent is carried out or gone (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            busy = self.huke.handling.value or self.k3.handling.value
            last = max(
                (t for t, _ in [*self.huke.arrivals[-1:], *self.k3.arrivals[-1:]]), default=0
            )
            if not busy and time.monotonic() - last >= quiet:
                return
            assert time.monotonic() < deadline, "a simulator is still busy"
            time.sleep(0.005)

    def on_k3(self, hook: Hook) -> None:
        self.k3.hooks.append(hook)

    def on_huke(self, hook: Hook) -> None:
        self.huke.hooks.append(hook)

    # -- clients and runs ------------------------------------------------------------------------

    def _huke_options(
        self, options: Mapping[str, Any], timeout: float, retries: int
    ) -> dict[str, Any]:
        return {
            "base_url": self.huke_url,
            "timeout": timeout,
            "retry": RETRY,
            "max_retries": retries,
            **options,
        }

    def _k3_options(self, auth: Auth, timeout: float, retries: int) -> dict[str, Any]:
        credentials: dict[str, Any] = (
            dict(K3_CREDENTIALS)
            if auth == "signed"
            else {"acct_id": TEST_ACCT_ID, "user_name": TEST_USER_NAME, "password": K3_PASSWORD}
        )
        return {**credentials, "timeout": timeout, "retry": RETRY, "max_retries": retries}

    def run(
        self,
        engine: Engine,
        *,
        auth: Auth = "signed",
        huke_options: Mapping[str, Any] | None = None,
        default_pool: bool = False,
        timeout: float = TIMEOUT,
        retries: int = RETRY.max_retries,
        **options: Any,
    ) -> SyncReport:
        """One sync over fresh clients (a new process would start with fresh clients too).

        On loopback the clients get pools sharing one TLS context (building one costs more than
        a whole sync here); ``default_pool=True`` lets them build their own, as in production.
        ``retries``: the clients' ``max_retries``. A test that injects more faults than that on
        one path gives more when the async engine may send their targets side by side: which
        request each fault strikes is then up to the scheduler.
        """
        options.setdefault("start", self.start)
        options.setdefault("end", self.end)
        options.setdefault("progress", False)
        options.setdefault("page_size", PAGE_SIZE)
        options.setdefault("batch_size", BATCH_SIZE)
        options.setdefault("confirm_timeout", CONFIRM_TIMEOUT)
        if engine == "async":
            return asyncio.run(
                self._arun(auth, huke_options or {}, default_pool, timeout, retries, options)
            )
        with ExitStack() as stack:
            huke_http = k3_http = None
            if self.transport == "inprocess":
                huke_http = stack.enter_context(httpx.Client(transport=self.huke.transport()))
                k3_http = stack.enter_context(httpx.Client(transport=self.k3.transport()))
            elif not default_pool:
                huke_http = stack.enter_context(httpx.Client(verify=_TLS))
                k3_http = stack.enter_context(httpx.Client(verify=_TLS))
            huke = stack.enter_context(
                HukeClient(
                    HUKE_KEY,
                    HUKE_SECRET,
                    http_client=huke_http,
                    **self._huke_options(huke_options or {}, timeout, retries),
                )
            )
            k3 = stack.enter_context(
                K3CloudClient(
                    self.k3_url, http_client=k3_http, **self._k3_options(auth, timeout, retries)
                )
            )
            return sync_customers(huke, k3, **options)

    async def _arun(
        self,
        auth: Auth,
        huke_options: Mapping[str, Any],
        default_pool: bool,
        timeout: float,
        retries: int,
        options: dict[str, Any],
    ) -> SyncReport:
        async with AsyncExitStack() as stack:
            huke_http = k3_http = None
            if self.transport == "inprocess":
                huke_http = await stack.enter_async_context(
                    httpx.AsyncClient(transport=self.huke.transport())
                )
                k3_http = await stack.enter_async_context(
                    httpx.AsyncClient(transport=self.k3.transport())
                )
            elif not default_pool:
                huke_http = await stack.enter_async_context(httpx.AsyncClient(verify=_TLS))
                k3_http = await stack.enter_async_context(httpx.AsyncClient(verify=_TLS))
            huke = await stack.enter_async_context(
                AsyncHukeClient(
                    HUKE_KEY,
                    HUKE_SECRET,
                    http_client=huke_http,
                    **self._huke_options(huke_options, timeout, retries),
                )
            )
            k3 = await stack.enter_async_context(
                AsyncK3CloudClient(
                    self.k3_url, http_client=k3_http, **self._k3_options(auth, timeout, retries)
                )
            )
            return await async_sync_customers(huke, k3, **options)


# -- invariants ----------------------------------------------------------------------------------


def expected_counts(
    trades: Sequence[Mapping[str, Any]],
    *,
    existing: AbstractSet[str] = frozenset(),
    update: bool = False,
) -> dict[str, int]:
    """The report counts of a fault-free first run over ``trades`` (realistic data: text cids)."""
    numbers = {t["buyerCid"] for t in trades if "buyerCid" in t}
    skipped = sum(1 for t in trades if "buyerCid" not in t)
    old = len(numbers & existing)
    return {
        "created": len(numbers - existing),
        "updated": old if update else 0,
        "existed": 0 if update else old,
        "skipped": skipped,
        "uncertain": 0,
        "failed": 0,
        "merged": len(trades) - skipped - len(numbers),
    }


def chunks(count: int, size: int = BATCH_SIZE) -> int:
    """BatchSave calls needed for ``count`` customers."""
    return math.ceil(count / size)


def assert_accounted(report: SyncReport, stage: Stage) -> None:
    """Every input trade has exactly one outcome, in Huke's order, with its own buyer; every
    outcome that says a customer exists names one that is stored; the rest give a reason."""
    stream = stage.stream()
    report.check(len(stream))
    assert report.total == len(stream)
    assert [o.trade_id for o in report.outcomes] == [t["tid"] for t in stream]
    assert [o.buyer_cid for o in report.outcomes] == [t.get("buyerCid") for t in stream]
    stored = stage.customers()
    for outcome in report.outcomes:
        if outcome.status in ("created", "updated", "existed"):
            assert outcome.number in stored, outcome
            assert outcome.customer_id == str(stored[str(outcome.number)]["FCUSTID"]), outcome
        elif outcome.status == "merged":
            assert outcome.merged_into is not None
            assert report.outcomes[outcome.merged_into].number == outcome.number
        else:
            assert outcome.reason, outcome
        if "buyerCid" not in stream[outcome.position]:
            assert (outcome.status, outcome.reason) == ("skipped", "trade has no buyerCid")


def assert_store_complete(stage: Stage, *, existing: Mapping[str, str] | None = None) -> None:
    """K/3 holds exactly the buyers (plus ``existing`` number -> name, left as they were), each
    once, named after the buyer's latest trade, submitted and audited."""
    existing = existing or {}
    stored = stage.customers()
    winners = stage.winners()
    assert set(stored) == set(winners) | set(existing)
    for number, record in stored.items():
        if number in existing:
            assert record["FName"] == existing[number]
            continue
        assert record["FName"] == winners[number]["buyerNick"].strip()
        assert record["FDocumentStatus"] == "C"
        assert record["FCreateOrgId"] == {"FNumber": "100"}
        assert record["FUseOrgId"] == {"FNumber": "100"}


def assert_converges(stage: Stage, engine: Engine, *, existed: int, **options: Any) -> SyncReport:
    """A fault-free re-run creates nothing, finds ``existed`` customers and changes nothing.

    Every fault injected before must have struck by now: the scenario happened as written.
    """
    assert (stage.huke.faults.pending, stage.k3.faults.pending) == (0, 0)
    before = stage.k3.records("BD_Customer")
    saves = stage.k3.call_count("BatchSave")
    again = stage.run(engine, **options)
    assert_accounted(again, stage)
    assert again.counts["created"] == 0
    assert again.counts["existed"] == existed
    assert again.counts["failed"] == 0
    assert stage.k3.call_count("BatchSave") == saves  # nothing to save: nothing sent
    assert stage.k3.records("BD_Customer") == before
    return again


@pytest.fixture
def stage() -> Iterator[Stage]:
    """Both simulators on loopback sockets, closed after the test."""
    live = Stage()
    try:
        yield live
    finally:
        live.close()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    """The sync engine and the async one."""
    value: Engine = request.param
    return value
