"""``huke-k3 demo``: the whole job on simulators, through the real clients and real sockets.

This module imports the clients' ``testing`` simulators, so runtime code never imports it
(the CLI loads it only for the ``demo`` command).
"""

from __future__ import annotations

import collections
import time
from typing import Any, TextIO

import anyio
from typing_extensions import TypedDict

from _huke_k3_core import plural
from huke_client import AsyncHukeClient, HukeClient
from huke_client.testing import FakeHuke, fake_trade, generate_trades
from k3cloud_client import AsyncK3CloudClient, Customer, K3CloudClient
from k3cloud_client.testing import FakeK3Cloud

from ._engine import async_sync_customers, sync_customers
from ._options import SyncOptions
from ._progress import ProgressArg
from ._report import SyncReport
from ._transform import CustomerTransform

# Demo credentials: the Huke values are made up; the K/3 Cloud ones are the public demo values
# of Kingdee's own SDK documentation. Neither opens anything real.
_HUKE_KEY = "demo-app-key-0001"
_HUKE_SECRET = "demo-app-secret-0001"


class _K3Login(TypedDict):
    acct_id: str
    user_name: str
    app_id: str
    app_secret: str


_K3_CREDENTIALS: _K3Login = {
    "acct_id": "5db25ac8d2b819",
    "user_name": "webapi",
    "app_id": "204399_72epSbtEQMC92Vwt2d3LRa9LRqSc1tqJ",
    "app_secret": "fb7d46647ac346dbb5fcd45b65512a45",
}
_HOUR_MS = 3_600_000


def demo_trades(*, trades: int, buyers: int, seed: int, now_ms: int) -> list[dict[str, Any]]:
    """Realistic trades of the last 19 hours, plus the awkward ones the demo is about: a repeat
    buyer who changed their nickname and a trade without ``buyerCid``."""
    start, end = now_ms - 19 * _HOUR_MS, now_ms - 2 * _HOUR_MS
    items = list(generate_trades(trades, start=start, end=end, buyers=buyers, seed=seed))
    items.sort(key=lambda t: t["createTime"])
    existing = _most_frequent_buyer(items)
    renamed = next((t for t in items if t.get("buyerCid") != existing), items[0])
    items.append(
        fake_trade(
            create_time=now_ms - _HOUR_MS,
            tid="DEMO-RENAMED",
            buyer_nick=renamed["buyerNick"] + "（新昵称）",
            buyer_cid=renamed["buyerCid"],
            payment="128.00",
        )
    )
    items.append(
        fake_trade(
            create_time=now_ms - _HOUR_MS + 1,
            tid="DEMO-NO-CID",
            buyer_nick="游客",
            buyer_cid=None,
            payment="9.90",
        )
    )
    return items


def _most_frequent_buyer(items: list[dict[str, Any]]) -> str:
    counts = collections.Counter(str(t["buyerCid"]) for t in items if "buyerCid" in t)
    return counts.most_common(1)[0][0]


def unique_id_collection(items: list[dict[str, Any]]) -> dict[str, str]:
    """The demo's stand-in for the scheme's user-owned collection (唯一ID by cid). One buyer
    is deliberately missing from it, so that customer gets no description."""
    cids = sorted({str(t["buyerCid"]) for t in items if t.get("buyerCid")})
    return {cid: f"UID-{index:05d}" for index, cid in enumerate(cids) if index != 1}


def _existing_customer(items: list[dict[str, Any]]) -> Customer:
    """A customer that is already in K/3 Cloud before the first run: the most frequent buyer."""
    cid = _most_frequent_buyer(items)
    nick = next(t["buyerNick"] for t in items if t.get("buyerCid") == cid)
    return Customer(cid, nick, description="entered by hand in K/3 Cloud")


def _run_sync(
    huke_url: str,
    k3_url: str,
    *,
    transform: CustomerTransform,
    use_async: bool,
    progress: ProgressArg,
) -> SyncReport:
    options = SyncOptions(transform=transform, progress=progress)
    if use_async:

        async def run() -> SyncReport:
            async with (
                AsyncHukeClient(_HUKE_KEY, _HUKE_SECRET, base_url=huke_url) as huke,
                AsyncK3CloudClient(k3_url, **_K3_CREDENTIALS) as k3,
            ):
                return await async_sync_customers(huke, k3, options=options)

        return anyio.run(run)
    with (
        HukeClient(_HUKE_KEY, _HUKE_SECRET, base_url=huke_url) as huke,
        K3CloudClient(k3_url, **_K3_CREDENTIALS) as k3,
    ):
        return sync_customers(huke, k3, options=options)


def _run_doctor(huke_url: str, k3_url: str, transform: CustomerTransform, out: TextIO) -> int:
    from ._doctor import doctor

    with (
        HukeClient(_HUKE_KEY, _HUKE_SECRET, base_url=huke_url) as huke,
        K3CloudClient(k3_url, **_K3_CREDENTIALS) as k3,
    ):
        report = doctor(huke, k3, transform=transform)
    print(report, file=out)
    return report.exit_code


def run_demo(
    *,
    trades: int = 60,
    buyers: int = 20,
    seed: int = 7,
    use_async: bool = False,
    progress: ProgressArg = None,
    doctor: bool = False,
    out: TextIO,
) -> int:
    """Run the demo, printing to ``out``; 0 when the second run created nothing and no
    customer number exists twice. With ``doctor``, run ``huke-k3 doctor``'s checks against the
    demo's simulators instead of the syncs; its exit status."""
    now_ms = int(time.time() * 1000)
    items = demo_trades(trades=trades, buyers=buyers, seed=seed, now_ms=now_ms)
    existing = _existing_customer(items)
    # The scheme's FDescription: "find 唯一ID in collection dd359ae0-… where cid = buyerCid".
    transform = CustomerTransform(description=unique_id_collection(items))
    fake_huke = FakeHuke(_HUKE_KEY, _HUKE_SECRET, trades=items)
    fake_k3 = FakeK3Cloud(**_K3_CREDENTIALS)
    fake_k3.seed("BD_Customer", [existing.to_wire()])
    distinct = len({t["buyerCid"] for t in items if "buyerCid" in t})
    engine = (
        "huke-k3 doctor" if doctor else "async_sync_customers" if use_async else "sync_customers"
    )
    print(
        f"Demo: {plural(len(items), 'Huke trade')} from {plural(distinct, 'buyer')} in the last "
        "20 hours "
        "(repeat buyers, one renamed, one trade without buyerCid);\n"
        f"K/3 Cloud already holds customer {existing.number} ({existing.name}).\n"
        f"Both services are simulators on 127.0.0.1; {engine} talks to them through the real "
        f"clients (signed requests){': it saves nothing' if doctor else ''}.\n",
        file=out,
    )
    with fake_huke.serve() as huke_server, fake_k3.serve() as k3_server:
        huke_url = huke_server.url + "/openapi"
        k3_url = k3_server.url + "/k3cloud/"
        if doctor:
            return _run_doctor(huke_url, k3_url, transform, out)
        options: dict[str, Any] = {"transform": transform, "use_async": use_async}
        first = _run_sync(huke_url, k3_url, progress=progress, **options)
        print("First run:", file=out)
        print(first, file=out)
        second = _run_sync(huke_url, k3_url, progress=progress, **options)
        print("\nSecond run (same window, same trades):", file=out)
        print(second, file=out)
    records = fake_k3.records("BD_Customer")
    print(
        "\nA few of the customers now in K/3 Cloud (FNumber, FName, FDescription, status):",
        file=out,
    )
    for record in sorted(records, key=lambda r: str(r.get("FNumber")))[:4]:
        print(
            f"  {record.get('FNumber')}  {record.get('FName')}  "
            f"{record.get('FDescription') or '-'}  {record.get('FDocumentStatus')}",
            file=out,
        )
    numbers = [str(r.get("FNumber")) for r in records]
    twice = sorted(n for n, c in collections.Counter(numbers).items() if c > 1)
    created = second.counts["created"]
    print(
        f"\nK/3 Cloud now holds {plural(len(numbers), 'customer')} "
        f"({first.counts['created']} created by the first run, 1 entered before); "
        f"{'no number twice' if not twice else 'DUPLICATE numbers: ' + ', '.join(twice)}. "
        f"The second run created {created}.",
        file=out,
    )
    good = first.ok and second.ok and created == 0 and not twice
    return 0 if good else 1
