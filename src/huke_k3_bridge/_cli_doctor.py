"""``huke-k3 doctor``: check settings, network, Huke and K/3 Cloud before the first real run.

The clients come from the same places as ``huke-k3 sync``'s (the environment, ``--k3-ini``, a
tenants file); a setting that is missing is a failed check of the report, not a usage error, so
that the report shows everything at once.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from ._doctor import DEFAULT_SAMPLE_SIZE, DEFAULT_SAMPLE_SPAN, MAX_SAMPLE_SPAN

if TYPE_CHECKING:
    from .tenants import Tenant

EXIT_USAGE = 2


def _more_than_zero(unit: str, most: float) -> Callable[[str], float]:
    """An argparse type: a number of ``unit`` above 0 and at most ``most``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of {unit}") from None
        if not (math.isfinite(value) and 0 < value <= most):
            raise argparse.ArgumentTypeError(
                f"{text!r}: the {unit} must be more than 0, at most {most:g}"
            )
        return value

    return parse


def add_doctor_command(commands: Any) -> None:
    """Add ``doctor`` to ``huke-k3``'s sub-commands (``commands``: the subparsers action)."""
    from ._cli import _positive_int, add_settings_arguments

    doctor = commands.add_parser(
        "doctor",
        help="check settings, network, Huke and K/3 Cloud without saving anything",
        description="Show where each setting came from (secrets masked), probe both hosts (DNS, "
        "TCP, TLS, clock), fetch one small page of recent Huke trades and describe it, and check "
        "K/3 Cloud: login, permission to query BD_Customer, the transform's organisations, and "
        "a dry run of the transform over the sample. Exit status: 0 when every required check "
        "passed, 1 when one failed (the report names it), 2 for usage errors.",
    )
    add_settings_arguments(doctor, tenants="a tenants file (see docs/tenants.md): check its tenant")
    doctor.add_argument(
        "--hours",
        type=_more_than_zero("hours", MAX_SAMPLE_SPAN.total_seconds() / 3600),
        default=DEFAULT_SAMPLE_SPAN.total_seconds() / 3600,
        metavar="HOURS",
        help="sample trades from this many hours back (24)",
    )
    doctor.add_argument(
        "--sample",
        type=_positive_int,
        default=DEFAULT_SAMPLE_SIZE,
        metavar="N",
        help="trades to sample (20)",
    )
    doctor.add_argument(
        "--no-network", action="store_true", help="leave out the DNS/TCP/TLS/clock probes"
    )
    doctor.add_argument(
        "--max-clock-skew",
        type=_more_than_zero("seconds", 86400),
        default=60.0,
        metavar="SECONDS",
        help="fail when this machine's clock is further off a server's (60)",
    )
    doctor.set_defaults(use_async=False)


def _settings_fixes(args: argparse.Namespace, tenant: Tenant | None) -> dict[str, str]:
    """The fix of a settings failure, for settings that came from a tenants file or a conf.ini
    (the default fixes name the environment variables, which these do not read)."""
    fixes: dict[str, str] = {}
    if tenant is not None:
        where = f"{str(args.tenants)!r} [tenants.{tenant.name}"
        names = [tenant.huke.app_key_env, tenant.huke.app_secret_env]
        fixes["huke"] = f"set {', '.join(names)} (named by {where}.huke]), or correct that table"
        secrets = [tenant.k3.app_id_env, tenant.k3.app_secret_env, tenant.k3.password_env]
        named = ", ".join(name for name in secrets if name)
        fixes["k3"] = f"set {named} (named by {where}.k3]), or correct that table"
    elif args.k3_ini:
        section = args.k3_section or "config"
        fixes["k3"] = (
            f"correct {args.k3_ini!r}: the official SDK's x-kdapi-* keys in section [{section}] "
            "(--k3-section names another), saved as UTF-8 or GBK"
        )
    return fixes


def run_doctor_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """The ``doctor`` command; its exit status."""
    from datetime import timedelta

    import attrs

    from huke_client import AsyncHukeClient, SearchOptions
    from k3cloud_client import AsyncK3CloudClient

    from ._cli import chosen_tenant, make_clients
    from ._doctor import DoctorOptions, diagnose

    options = DoctorOptions(
        span=timedelta(hours=args.hours),
        sample_size=args.sample,
        search=SearchOptions(items_key=args.items_key) if args.items_key else None,
        network=not args.no_network,
        max_clock_skew=args.max_clock_skew,
    )
    sources = {"items_key": "flag --items-key"} if args.items_key else {}
    if options.span != DEFAULT_SAMPLE_SPAN or options.sample_size != DEFAULT_SAMPLE_SIZE:
        sources["sample"] = "flags --hours / --sample"
    tenant = None
    if args.tenants is not None or args.tenant is not None:
        chosen = chosen_tenant(args)
        if isinstance(chosen, str):
            print(f"huke-k3: {chosen}", file=err)
            return EXIT_USAGE
        tenant, tenant_options = chosen
        options = attrs.evolve(options, transform=tenant_options["transform"])
        sources["transform"] = f"tenants file {str(args.tenants)!r} [tenants.{tenant.name}]"
    huke, k3, errors = make_clients(args, tenant)
    fixes = _settings_fixes(args, tenant)
    # The parser sets use_async=False for doctor: the clients are the sync ones.
    assert not isinstance(huke, AsyncHukeClient)
    assert not isinstance(k3, AsyncK3CloudClient)
    try:
        report = diagnose(
            huke, k3, options, config_errors=errors, config_fixes=fixes, sources=sources
        )
    finally:
        for client in (huke, k3):
            if client is not None:
                client.close()
    print(report.to_json(indent=2) if args.json else report, file=out)
    return report.exit_code
