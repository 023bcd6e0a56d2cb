"""``huke-k3``: run the sync (``sync``) or see it work on simulators (``demo``).

``-v``/``-vv`` go before or after the sub-command (``huke-k3 -v sync -v`` is ``-vv``);
``huke-k3 --version`` prints the version.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

import anyio

from _huke_k3_core._version import __version__
from huke_client import AsyncHukeClient, HukeClient, HukeConfigError, HukeError, SearchOptions
from k3cloud_client import AsyncK3CloudClient, K3CloudClient, K3CloudConfigError, K3CloudError

from . import _durations
from ._engine import async_sync_customers, sync_customers
from ._errors import StateError, TenantsError
from ._report import SyncReport
from ._state import DEFAULT_OVERLAP, FileState
from ._windows import DEFAULT_WINDOW
from .tenants import Tenant, load_tenants

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_LOGGERS = ("huke_client", "k3cloud_client", "huke_k3_bridge")
_VERBOSE_HELP = "log more (-v info, -vv debug)"
#: Where a sub-command counts its own ``-v``: argparse would let a sub-command's count replace
#: the one given before it, so the two are kept apart and added up.
_SUB_VERBOSE = "verbose_after_command"


def parse_duration(text: str) -> timedelta:
    """``"20h"``, ``"90m"``, ``"1d12h"``, ``"30s"``, ``"2w"`` as a ``timedelta`` (the parser
    the tenants file uses too), its complaint in argparse's type so that argparse shows it."""
    try:
        return _durations.parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or time (``2024-11-28``, ``2024-11-28T08:00``, ``...Z``, ``...+08:00``);
    without an offset it is local time."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2024-11-28T08:00:00+08:00)"
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _wait_seconds(text: str) -> float:
    """``--wait`` values: seconds (``30``, ``2.5``) or a duration (``10m``)."""
    try:
        seconds = float(text)
    except ValueError:
        return parse_duration(text).total_seconds()
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the wait must be seconds >= 0 (or 10m, 1h)")
    return seconds


class _Parser(argparse.ArgumentParser):
    """The top-level parser: its ``verbose`` counts every ``-v``, before and after the
    sub-command."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        parsed.verbose += getattr(parsed, _SUB_VERBOSE, 0)
        if hasattr(parsed, _SUB_VERBOSE):
            delattr(parsed, _SUB_VERBOSE)
        return parsed, extras


def _add_verbosity(commands: Any) -> None:
    """Let every sub-command (``commands``: the subparsers action) take ``-v`` after its name."""
    for command in commands.choices.values():
        command.add_argument(
            "-v", "--verbose", action="count", default=0, dest=_SUB_VERBOSE, help=_VERBOSE_HELP
        )


def add_settings_arguments(command: argparse.ArgumentParser, *, tenants: str) -> None:
    """The flags saying where a command's settings come from (``sync`` and ``doctor``): the
    conf.ini, the tenants file (``tenants``: its help) and tenant, Huke's items key; and
    ``--json``."""
    command.add_argument("--json", action="store_true", help="print the report as JSON")
    command.add_argument("--k3-ini", metavar="PATH", help="K/3 Cloud settings from a conf.ini")
    command.add_argument("--k3-section", metavar="NAME", help="section of the conf.ini")
    command.add_argument("--tenants", metavar="FILE", help=tenants)
    command.add_argument("--tenant", metavar="NAME", help="the tenant of --tenants")
    command.add_argument(
        "--items-key",
        metavar="KEY",
        help="the key of Huke's reply data holding the trades, when it is not detected (huke-k3 "
        "doctor tells)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``huke-k3`` argument parser."""
    parser = _Parser(
        prog="huke-k3",
        description="Create Kingdee K/3 Cloud customers from NetEase Huke trades.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help=_VERBOSE_HELP)
    parser.add_argument(
        "--version", action="version", version=f"huke-k3 {__version__}", help="print the version"
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=argparse.ArgumentParser
    )
    commands.required = True

    demo = commands.add_parser(
        "demo",
        help="run the sync twice against built-in simulators (no credentials needed)",
        description="Start FakeHuke and FakeK3Cloud on 127.0.0.1, seed realistic trades, run "
        "the real sync through the real clients, then run it again: the second run creates 0.",
    )
    demo.add_argument("--trades", type=_positive_int, default=60, help="trades to seed (60)")
    demo.add_argument("--buyers", type=_positive_int, default=20, help="distinct buyers (20)")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the trades (7)")
    demo.add_argument("--async", dest="use_async", action="store_true", help="use the async engine")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.add_argument(
        "--doctor",
        action="store_true",
        help="run huke-k3 doctor's checks against the demo's simulators instead of the syncs",
    )

    sync = commands.add_parser(
        "sync",
        help="sync a time range of trades with real credentials",
        description="Credentials come from the environment (HUKE_APP_KEY, HUKE_APP_SECRET, "
        "optional HUKE_BASE_URL, HUKE_EID; K3CLOUD_SERVER_URL, K3CLOUD_ACCT_ID, "
        "K3CLOUD_USER_NAME, K3CLOUD_APP_ID + K3CLOUD_APP_SECRET or K3CLOUD_PASSWORD, ...) or, for "
        "K/3 Cloud, from the official SDK's conf.ini (--k3-ini). Exit status: 0 when every trade "
        "ended well, 1 when some failed or stayed uncertain, 2 for usage or configuration errors and when another "
        "run holds the --state file.",
    )
    when = sync.add_mutually_exclusive_group()
    when.add_argument(
        "--since", type=parse_duration, metavar="DURATION", help="from this long ago (20h, 2d)"
    )
    when.add_argument("--start", type=parse_time, metavar="TIME", help="range start, ISO 8601")
    sync.add_argument("--end", type=parse_time, metavar="TIME", help="range end (default: now)")
    sync.add_argument("--dry-run", action="store_true", help="look, but save nothing")
    sync.add_argument(
        "--on-existing",
        choices=("skip", "update"),
        default="skip",
        help="what to do with customers that already exist (skip)",
    )
    sync.add_argument(
        "--state", metavar="FILE", help="watermark file: resume where the last good run ended"
    )
    sync.add_argument(
        "--wait",
        nargs="?",
        const=True,
        default=False,
        type=_wait_seconds,
        metavar="SECONDS",
        help="when another run holds --state, wait for it to end (as long as it takes, or at "
        "most SECONDS: 30, 10m) instead of exiting 2 at once",
    )
    add_settings_arguments(
        sync,
        tenants="a tenants file (TOML, see docs/tenants.md): run its tenant --tenant with that "
        "tenant's clients, transform, window and state (--state and --window win)",
    )
    sync.add_argument(
        "--window",
        type=parse_duration,
        default=DEFAULT_WINDOW,
        metavar="DURATION",
        help="longest range fetched in one go (1d)",
    )
    sync.add_argument(
        "--batch-size", type=_positive_int, default=400, help="customers per BatchSave (400)"
    )
    sync.add_argument("--no-progress", action="store_true", help="no progress bar")
    sync.add_argument(
        "--async",
        dest="use_async",
        action="store_true",
        help="use the async engine: fetches, looks up and saves concurrently",
    )
    from ._cli_dispatch import add_dispatch_command  # loads no Celery until it runs
    from ._cli_doctor import add_doctor_command

    add_doctor_command(commands)
    add_dispatch_command(commands)
    # Last, so that it reaches every sub-command added above.
    _add_verbosity(commands)
    return parser


class _LogSetup:
    """Send the SDK's loggers to stderr for the duration of one command."""

    def __init__(self, verbosity: int, stream: TextIO) -> None:
        level = (
            logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
        )
        self.handler = logging.StreamHandler(stream)
        self.handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.saved: list[tuple[logging.Logger, int]] = []
        for name in _LOGGERS:
            log = logging.getLogger(name)
            self.saved.append((log, log.level))
            log.setLevel(level)
            log.addHandler(self.handler)

    def close(self) -> None:
        for log, level in self.saved:
            log.removeHandler(self.handler)
            log.setLevel(level)


_Clients = tuple[
    HukeClient | AsyncHukeClient | None,
    K3CloudClient | AsyncK3CloudClient | None,
    dict[str, Exception],
]
_SERVICE_NAMES = {"huke": "Huke", "k3": "K/3 Cloud"}


def chosen_tenant(args: argparse.Namespace) -> tuple[Tenant, dict[str, Any]] | str:
    """The tenant ``--tenants FILE --tenant NAME`` names and the run options it sets (its
    transform, and its window unless ``--window`` is given), or the usage error."""
    if args.tenants is None:
        return f"--tenant needs --tenants FILE, the tenants file defining {args.tenant!r}"
    if args.k3_ini:
        return "--k3-ini does not go with --tenants: the tenant's k3 table sets K/3 Cloud"
    try:
        tenants = load_tenants(args.tenants)
    except TenantsError as exc:
        return str(exc)
    names = ", ".join(tenants)
    if args.tenant is None:
        return f"--tenants needs --tenant NAME, one of the tenants of {tenants.path}: {names}"
    if args.tenant not in tenants:
        return (
            f"{tenants.path}: tenant {args.tenant!r}: no [tenants.{args.tenant}] table (the "
            f"file's tenants: {names})"
        )
    tenant = tenants[args.tenant]
    try:
        options: dict[str, Any] = {"transform": tenant.transform()}
    except TenantsError as exc:
        return str(exc)
    # argparse hands its default object through untouched: identity tells "not given".
    if getattr(args, "window", DEFAULT_WINDOW) is DEFAULT_WINDOW:
        options["window"] = tenant.window
    return tenant, options


def make_clients(args: argparse.Namespace, tenant: Tenant | None) -> _Clients:
    """The clients of ``args`` (``--async``, ``--k3-ini``) or of ``tenant``, and the
    configuration error each could not be made for (``{"huke": ..., "k3": ...}``)."""
    huke_cls = AsyncHukeClient if args.use_async else HukeClient
    k3_cls = AsyncK3CloudClient if args.use_async else K3CloudClient
    errors: dict[str, Exception] = {}
    huke: HukeClient | AsyncHukeClient | None = None
    k3: K3CloudClient | AsyncK3CloudClient | None = None
    # A tenant's clients raise TenantsError (a ValueError) for a variable that is not set.
    try:
        if tenant is not None:
            huke = tenant.async_huke_client() if args.use_async else tenant.huke_client()
        else:
            huke = huke_cls.from_env()
    except (HukeConfigError, ValueError) as exc:
        errors["huke"] = exc
    try:
        if tenant is not None:
            k3 = tenant.async_k3_client() if args.use_async else tenant.k3_client()
        elif args.k3_ini:
            k3 = k3_cls.from_ini(args.k3_ini, section=args.k3_section)
        else:
            k3 = k3_cls.from_env()
    except (K3CloudConfigError, ValueError, OSError) as exc:
        errors["k3"] = exc
    return huke, k3, errors


async def _close_async(*clients: Any) -> None:
    for client in clients:
        if client is not None:
            await client.aclose()


def _run(huke: Any, k3: Any, use_async: bool, options: dict[str, Any]) -> SyncReport:
    """The sync with clients of the engine's kind; closes them."""
    if not use_async:
        with huke, k3:
            return sync_customers(huke, k3, **options)

    async def run() -> SyncReport:
        async with huke, k3:
            return await async_sync_customers(huke, k3, **options)

    return anyio.run(run)


def _sync(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    tenant: Tenant | None = None
    tenant_options: dict[str, Any] = {}
    if args.tenants is not None or args.tenant is not None:
        chosen = chosen_tenant(args)
        if isinstance(chosen, str):
            print(f"huke-k3: {chosen}", file=err)
            return EXIT_USAGE
        tenant, tenant_options = chosen
    state = args.state or (tenant.state_path if tenant is not None else None)
    if args.wait is not False and not state:
        print("huke-k3: --wait needs --state (it waits for the run holding that file)", file=err)
        return EXIT_USAGE
    huke, k3, errors = make_clients(args, tenant)
    if errors or huke is None or k3 is None:
        for service, error in errors.items():
            print(f"huke-k3: configuration error: {_SERVICE_NAMES[service]}: {error}", file=err)
        if args.use_async:
            anyio.run(_close_async, huke, k3)
        else:
            for client in (huke, k3):
                if client is not None:
                    client.close()  # type: ignore[union-attr]
        return EXIT_USAGE
    overlap = tenant.overlap if tenant is not None else DEFAULT_OVERLAP
    start: datetime | None = args.start
    if args.since is not None:
        end = args.end or datetime.now(timezone.utc).astimezone()
        start = end - args.since
    options: dict[str, Any] = {
        "start": start,
        "end": args.end,
        "on_existing": args.on_existing,
        "batch_size": args.batch_size,
        "dry_run": args.dry_run,
        "state": FileState(state, overlap=overlap, wait=args.wait) if state else None,
        "progress": False if args.no_progress or args.json else None,
        "window": args.window,
        "search": SearchOptions(items_key=args.items_key) if args.items_key else None,
        **tenant_options,
    }
    try:
        report = _run(huke, k3, args.use_async, options)
    except (StateError, ValueError) as exc:
        print(f"huke-k3: {exc}", file=err)
        return EXIT_USAGE
    except (HukeError, K3CloudError) as exc:  # pragma: no cover - the engine reports these
        print(f"huke-k3: {exc}", file=err)
        return EXIT_FAILED
    print(report.to_json(indent=2) if args.json else report, file=out)
    return EXIT_OK if report.ok else EXIT_FAILED


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run ``huke-k3`` with ``argv`` (default: the command line); returns the exit status."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser = build_parser()
    try:
        # argparse writes help, --version and usage errors to sys.stdout / sys.stderr itself.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage message, help or version
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    logs = _LogSetup(args.verbose, err)
    started = time.perf_counter()
    try:
        if args.command == "demo":
            from ._demo import run_demo

            return run_demo(
                trades=args.trades,
                buyers=args.buyers,
                seed=args.seed,
                use_async=args.use_async,
                progress=False if args.no_progress else None,
                doctor=args.doctor,
                out=out,
            )
        if args.command == "doctor":
            from ._cli_doctor import run_doctor_command

            return run_doctor_command(args, out, err)
        if args.command == "dispatch":
            from ._cli_dispatch import run_dispatch

            return run_dispatch(args, out, err)
        return _sync(args, out, err)
    except KeyboardInterrupt:
        print("huke-k3: interrupted; re-run to finish (nothing is saved twice)", file=err)
        return 130
    finally:
        logging.getLogger("huke_k3_bridge").debug(
            "command took %.2fs", time.perf_counter() - started
        )
        logs.close()
