"""A fleet of shops on the simulators, behind loopback sockets: for trying the fleet on one
machine (``huke-k3 simulate-fleet``), for the fleet tests and for benchmark 8.

Four tenants, two K/3 Cloud accounts: ``shop-a`` and ``shop-b`` share account A (one ERP
database), ``shop-c`` has account B, and ``shop-bad`` is on account B with a wrong app secret
(leave it out with ``bad_tenant=False``). Each shop has its own Huke account and trades over
eight hours from ``t0``. ``start_simulators`` writes the tenants file; the secrets it names are in
``Simulators.secrets`` (the workers' environment).

Each K/3 account's handler is wrapped in an :class:`InFlight` meter, which records the most
requests worked on at once (the one-window-per-account limit is read there), and can hold one
request back until released (to kill a worker in the middle of a save).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx

from huke_client.testing import FakeHuke, generate_trades, serve
from k3cloud_client.testing import TEST_APP_ID, TEST_APP_SECRET, TEST_USER_NAME, FakeK3Cloud

HOUR_MS = 3_600_000
#: Trades per shop over the eight hours, and the buyers they come from (so most buyers buy in
#: several windows: a later window finds the customer an earlier one created).
TRADES, BUYERS = 64, 30
#: Added to every K/3 request: long enough for two requests to overlap when two windows of one
#: account run at once.
K3_LATENCY = 0.02


class InFlight:
    """A handler counting the requests it works on at once (``peak``), and holding back the
    first request to an operation when armed."""

    def __init__(self, handler: Any, latency: float = K3_LATENCY) -> None:
        self._handler = handler
        self.latency = latency
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self._held_operation: str | None = None
        #: Set when the held request arrived; ``held_body`` is its body.
        self.arrived = threading.Event()
        self.held_body: bytes = b""
        self._release = threading.Event()

    def _enter(self) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def _leave(self) -> None:
        with self._lock:
            self.now -= 1

    def hold(self, operation: str) -> None:
        """Hold the next request to ``operation`` (e.g. ``"BatchSave"``) until ``release()``;
        then work on it (the save lands, its reply goes to whoever still listens)."""
        self.arrived.clear()
        self._release.clear()
        self._held_operation = operation

    def release(self) -> None:
        self._release.set()

    def _take_hold(self, request: httpx.Request) -> bool:
        with self._lock:
            operation = self._held_operation
            if operation is None or f".{operation}." not in request.url.path:
                return False
            self._held_operation = None
        return True

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self._enter()
        try:
            if self._take_hold(request):
                self.held_body = request.content
                self.arrived.set()
                self._release.wait(timeout=60)
            time.sleep(self.latency)
            return self._handler(request)  # type: ignore[no-any-return]
        finally:
            self._leave()


@attrs.define
class K3Account:
    fake: FakeK3Cloud
    meter: InFlight
    url: str

    def numbers(self) -> list[str]:
        """The customer numbers in this account, one per record (a duplicate shows twice)."""
        return [str(record["FNumber"]) for record in self.fake.records("BD_Customer")]


@attrs.define
class Shop:
    name: str
    huke: FakeHuke
    account: K3Account
    trades: list[dict[str, Any]]
    huke_url: str = ""

    def buyers(self, start_ms: int, end_ms: int) -> set[str]:
        """The buyers of the shop's trades in ``[start_ms, end_ms]``."""
        return {
            str(trade["buyerCid"])
            for trade in self.trades
            if start_ms <= trade["createTime"] <= end_ms and trade.get("buyerCid")
        }


@attrs.define
class Simulators:
    shops: dict[str, Shop]
    accounts: dict[str, K3Account]
    tenants_path: Path
    secrets: dict[str, str]
    #: The first hour of the shops' trades (epoch ms); they cover eight hours from it.
    t0: int


_ACCOUNTS = {"A": "5db25ac8d2b819", "B": "6a0fb1c2d3e4f5"}
#: shop -> (its K/3 account, its seed, whether its K/3 app secret is right)
_SHOPS = {
    "shop-a": ("A", 11, True),
    "shop-b": ("A", 22, True),
    "shop-c": ("B", 33, True),
    "shop-bad": ("B", 44, False),
}


def _tenant_table(shop: Shop, variable: str, account: str) -> str:
    return f"""
[tenants.{shop.name}.huke]
app_key_env = "{variable}_HUKE_KEY"
app_secret_env = "{variable}_HUKE_SECRET"
base_url = "{shop.huke_url}"

[tenants.{shop.name}.k3]
server_url = "{shop.account.url}"
acct_id = "{_ACCOUNTS[account]}"
user_name = "{TEST_USER_NAME}"
app_id_env = "{variable}_K3_APP_ID"
app_secret_env = "{variable}_K3_APP_SECRET"
"""


@contextlib.contextmanager
def start_simulators(
    directory: Path,
    *,
    bad_tenant: bool = True,
    latency: float | None = None,
    trades: int = TRADES,
    buyers: int = BUYERS,
) -> Iterator[Simulators]:
    t0 = (int(time.time() * 1000) // HOUR_MS - 12) * HOUR_MS
    with contextlib.ExitStack() as stack:
        accounts: dict[str, K3Account] = {}
        for name, acct_id in _ACCOUNTS.items():
            fake = FakeK3Cloud(
                acct_id=acct_id,
                user_name=TEST_USER_NAME,
                app_id=TEST_APP_ID,
                app_secret=TEST_APP_SECRET,
            )
            meter = InFlight(fake, K3_LATENCY if latency is None else latency)
            server = stack.enter_context(serve(meter))
            accounts[name] = K3Account(fake, meter, server.url + "/k3cloud/")
        shops: dict[str, Shop] = {}
        secrets: dict[str, str] = {}
        tables = ['[defaults]\nwindow = "1h"\noverlap = "10m"\n']
        for name, (account, seed, right) in _SHOPS.items():
            if not right and not bad_tenant:
                continue
            variable = name.upper().replace("-", "_")
            key, secret = f"{name}-key", f"{name}-secret-{seed}"
            listing = sorted(
                generate_trades(
                    trades, start=t0, end=t0 + 8 * HOUR_MS - 1, buyers=buyers, seed=seed
                ),
                key=lambda trade: trade["createTime"],
            )
            huke = FakeHuke(key, secret, trades=listing)
            server = stack.enter_context(serve(huke))
            shop = Shop(name, huke, accounts[account], listing, server.url + "/openapi")
            shops[name] = shop
            secrets.update(
                {
                    f"{variable}_HUKE_KEY": key,
                    f"{variable}_HUKE_SECRET": secret,
                    f"{variable}_K3_APP_ID": TEST_APP_ID,
                    f"{variable}_K3_APP_SECRET": TEST_APP_SECRET if right else "0" * 32,
                }
            )
            tables.append(f"[tenants.{name}]\n" + _tenant_table(shop, variable, account))
        path = directory / "tenants.toml"
        path.write_text("\n".join(tables), encoding="utf-8")
        yield Simulators(shops, accounts, path, secrets, t0)


def main(argv: list[str] | None = None) -> int:
    """``python -m huke_k3_bridge.celery.testing DIR``: serve the simulated fleet until Ctrl-C,
    with its tenants file at ``DIR/tenants.toml`` and the variables it names in ``DIR/fleet.env``
    (``set -a; . DIR/fleet.env; set +a`` before starting a worker)."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m huke_k3_bridge.celery.testing")
    parser.add_argument("directory", type=Path, help="where to write tenants.toml and fleet.env")
    parser.add_argument(
        "--bad-tenant", action="store_true", help="add shop-bad, whose K/3 secret is wrong"
    )
    args = parser.parse_args(argv)
    args.directory.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with start_simulators(args.directory, bad_tenant=args.bad_tenant) as simulated:
        env = args.directory / "fleet.env"
        env.write_text(
            "".join(f"{name}={value}\n" for name, value in simulated.secrets.items())
            + f"HUKE_K3_TENANTS={simulated.tenants_path.resolve()}\n",
            encoding="utf-8",
        )
        first = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(simulated.t0 / 1000))
        print(f"simulated fleet: {', '.join(simulated.shops)}; trades from {first} for 8 hours")
        print(f"tenants: {simulated.tenants_path}\nvariables: {env}\nCtrl-C to stop", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
