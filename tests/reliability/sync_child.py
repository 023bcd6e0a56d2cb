"""One customer sync in a process of its own, for the kill tests (``test_kill.py``).

The clients are configured from the environment as a deployment would be (``HUKE_APP_KEY``,
``HUKE_APP_SECRET``, ``HUKE_BASE_URL``; ``K3CLOUD_SERVER_URL``, ``K3CLOUD_ACCT_ID``,
``K3CLOUD_USER_NAME`` and ``K3CLOUD_APP_ID`` + ``K3CLOUD_APP_SECRET`` or ``K3CLOUD_PASSWORD``),
the watermark lives in the file given, and the report's summary is printed as one JSON line::

    python sync_child.py --state STATE.json [--engine async] [--page-size 10] [--batch-size 4]

Exit status: 0 when the report is ok, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from huke_client import AsyncHukeClient, HukeClient, RetryPolicy
from huke_k3_bridge import FileState, SyncReport, async_sync_customers, sync_customers
from k3cloud_client import AsyncK3CloudClient, K3CloudClient

RETRY = RetryPolicy(max_retries=3, initial_delay=0, max_delay=0)
TIMEOUT = 10.0


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "state": FileState(args.state),
        "page_size": args.page_size,
        "batch_size": args.batch_size,
        "progress": False,
    }


def _run_sync(args: argparse.Namespace) -> SyncReport:
    with (
        HukeClient.from_env(retry=RETRY, timeout=TIMEOUT) as huke,
        K3CloudClient.from_env(retry=RETRY, timeout=TIMEOUT) as k3,
    ):
        return sync_customers(huke, k3, **_options(args))


async def _run_async(args: argparse.Namespace) -> SyncReport:
    async with (
        AsyncHukeClient.from_env(retry=RETRY, timeout=TIMEOUT) as huke,
        AsyncK3CloudClient.from_env(retry=RETRY, timeout=TIMEOUT) as k3,
    ):
        return await async_sync_customers(huke, k3, **_options(args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", required=True, help="the watermark file")
    parser.add_argument("--engine", choices=("sync", "async"), default="sync")
    parser.add_argument("--page-size", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args(argv)
    report = _run_sync(args) if args.engine == "sync" else asyncio.run(_run_async(args))
    print(json.dumps(report.summary(), ensure_ascii=False), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
