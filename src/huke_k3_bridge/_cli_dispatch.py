"""``huke-k3 dispatch``: send the fleet's (tenant x window) tasks to the workers.

Celery is loaded only when the command runs (``huke-k3 sync`` and ``import huke_k3_bridge``
never load it); without the ``[celery]`` extra the command says how to install it.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime, timezone
from typing import Any, TextIO

from huke_k3_bridge._errors import BridgeError, error_text

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def add_dispatch_command(commands: Any) -> None:
    """Add ``dispatch`` to ``huke-k3``'s sub-commands (``commands``: the subparsers action)."""
    from huke_k3_bridge._cli import parse_duration, parse_time

    dispatch = commands.add_parser(
        "dispatch",
        help="send (tenant x window) tasks to the Celery workers of a fleet",
        description="Plan each tenant's windows (its window size) for a range, or since its last "
        "completed window, and send one huke_k3_bridge.sync_window task per window to the broker "
        "(HUKE_K3_BROKER_URL). Workers: celery -A huke_k3_bridge.celery worker, with "
        "HUKE_K3_TENANTS naming the same tenants file. Exit status: 0 when sent (with --wait: "
        "when every window ended well), 1 otherwise, 2 for usage or configuration errors.",
    )
    dispatch.add_argument(
        "--tenants",
        metavar="FILE",
        default=os.environ.get("HUKE_K3_TENANTS") or None,
        help="the tenants file (default: $HUKE_K3_TENANTS)",
    )
    dispatch.add_argument(
        "--tenant",
        action="append",
        metavar="NAME",
        help="only this tenant (repeat for several; default: every tenant of the file)",
    )
    when = dispatch.add_mutually_exclusive_group()
    when.add_argument(
        "--since", type=parse_duration, metavar="DURATION", help="from this long ago (20h, 2d)"
    )
    when.add_argument("--start", type=parse_time, metavar="TIME", help="range start, ISO 8601")
    dispatch.add_argument("--end", type=parse_time, metavar="TIME", help="range end (default: now)")
    dispatch.add_argument(
        "--wait",
        nargs="?",
        const=3600.0,
        default=None,
        type=float,
        metavar="SECONDS",
        help="wait for the results and print each window's summary (at most SECONDS, 3600)",
    )


def _label(window: Any) -> str:
    return f"{window.tenant} {window.start.isoformat()} .. {window.end.isoformat()}"


def _results(sent: list[Any], wait: float, out: TextIO) -> int:
    """Print each window's outcome as it is known; 0 when all ended well."""
    deadline = time.monotonic() + wait
    status = EXIT_OK
    for window in sent:
        label = _label(window)
        remaining = max(0.0, deadline - time.monotonic())
        try:
            summary = window.result.get(timeout=remaining, propagate=False)
        except Exception as exc:  # celery's TimeoutError, a lost backend: told, not raised
            print(f"{label}: no result ({error_text(exc)})", file=out)
            status = EXIT_FAILED
            continue
        if isinstance(summary, dict):
            counts = ", ".join(f"{n} {s}" for s, n in summary.get("counts", {}).items() if n)
            verdict = "ok" if summary.get("ok") else "NOT OK"
            print(f"{label}: {verdict} ({counts or 'no trades'})", file=out)
            for error in summary.get("errors", []):
                print(f"  error: {error}", file=out)
            if not summary.get("ok"):
                status = EXIT_FAILED
        else:
            print(f"{label}: FAILED: {error_text(summary)}", file=out)
            status = EXIT_FAILED
    return status


def run_dispatch(args: argparse.Namespace, out: TextIO, err: TextIO, *, app: Any = None) -> int:
    """The ``dispatch`` command; its exit status. ``app``: the Celery app to send with
    (default ``huke_k3_bridge.celery.app``, configured by the ``HUKE_K3_*`` variables)."""
    if not args.tenants:
        print("huke-k3: dispatch needs --tenants FILE (or HUKE_K3_TENANTS)", file=err)
        return EXIT_USAGE
    try:
        import huke_k3_bridge.celery as fleet
    except ImportError as exc:
        print(
            f"huke-k3: dispatch needs Celery ({exc}): pip install 'huke-k3-bridge[celery]'",
            file=err,
        )
        return EXIT_USAGE
    from huke_k3_bridge.tenants import load_tenants

    try:
        tenants = load_tenants(args.tenants)
        names = args.tenant or list(tenants)
        unknown = [name for name in names if name not in tenants]
        if unknown:
            known = ", ".join(tenants)
            print(
                f"huke-k3: {args.tenants}: no tenant {', '.join(unknown)} (tenants: {known})",
                file=err,
            )
            return EXIT_USAGE
        start, end = args.start, args.end
        if args.since is not None:
            end = end or datetime.now(timezone.utc).astimezone()
            start = end - args.since
        sent = fleet.dispatch([tenants[name] for name in names], start=start, end=end, app=app)
    except (BridgeError, ValueError) as exc:
        print(f"huke-k3: {exc}", file=err)
        return EXIT_USAGE
    except Exception as exc:  # the broker or Redis unreachable: kombu's and redis' own errors
        print(f"huke-k3: could not dispatch: {error_text(exc)}", file=err)
        return EXIT_FAILED
    for window in sent:
        print(f"{_label(window)} {window.task_id}", file=out)
    if args.wait is None:
        return EXIT_OK
    return _results(sent, args.wait, out)
