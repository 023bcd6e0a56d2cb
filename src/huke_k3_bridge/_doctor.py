"""``doctor()``: what a first run against real accounts would meet, found without saving anything.

It runs the checks in order (settings, network, Huke, K/3 Cloud) and returns a
:class:`DoctorReport`; a check that needs an earlier one that failed is reported as skipped, not
run. ``huke-k3 doctor`` prints the same report.
"""

from __future__ import annotations

import contextlib
import math
import ssl
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

import attrs
import httpx

from _huke_k3_core import plural
from _huke_k3_core._settings import ARGUMENT, DEFAULT
from huke_client import HukeClient, HukeConfigError, RetryPolicy, SearchOptions
from k3cloud_client import K3CloudClient, K3CloudConfigError

from ._deadline import within as _within
from ._doctor_report import Check, CheckTable, DoctorReport, SettingSource, check_of, skipped
from ._transform import CustomerTransform, Transform, trade_to_customer

C = TypeVar("C", HukeClient, K3CloudClient)

#: How far back the doctor samples trades by default.
DEFAULT_SAMPLE_SPAN = timedelta(hours=24)
#: The longest span the doctor samples from (Huke keeps no trade that old, and the arithmetic of
#: times stays in range).
MAX_SAMPLE_SPAN = timedelta(days=3660)
#: How many trades the doctor samples by default (one page).
DEFAULT_SAMPLE_SIZE = 20


def _settings_check(service: str, label: str, error: Exception | None, fix: str) -> Check:
    return Check(
        id=f"settings.{service}",
        section="settings",
        title=f"{label} settings",
        status="pass" if error is None else "fail",
        summary="complete" if error is None else str(error),
        fix=None if error is None else fix,
    )


def _transform_text(transform: Transform) -> str:
    if transform is trade_to_customer:
        return "trade_to_customer (the integration scheme)"
    if isinstance(transform, CustomerTransform):
        parts = [f"use_org={transform.use_org!r}", f"create_org={transform.create_org!r}"]
        if transform.fields:
            parts.append(f"fields {', '.join(transform.fields)}")
        if transform.steps:
            parts.append(plural(len(transform.steps), "step"))
        return f"CustomerTransform({', '.join(parts)})"
    return getattr(transform, "__qualname__", type(transform).__name__)


def _bridge_settings(options: DoctorOptions, sources: Mapping[str, str]) -> list[SettingSource]:
    def setting(name: str, value: str, given: bool) -> SettingSource:
        source = sources.get(name, ARGUMENT if given else DEFAULT)
        return SettingSource(scope="bridge", name=name, value=value, source=source)

    transform, search = options.transform, options.search
    hours = options.span.total_seconds() / 3600
    return [
        setting("transform", _transform_text(transform), transform is not trade_to_customer),
        setting(
            "items_key",
            repr(search.items_key) if search and search.items_key else "detected",
            bool(search and search.items_key),
        ),
        setting("sample", f"{options.sample_size} trades of the last {hours:g} h", False),
    ]


def _client_settings(scope: str, client: Any) -> list[SettingSource]:
    describe = getattr(client, "describe_settings", None)
    if describe is None:
        return []
    return [SettingSource(scope=scope, **attrs.asdict(s)) for s in describe()]


def _bounded(client: C | None, options: DoctorOptions) -> C | None:
    """A copy of ``client`` (sharing its connections) whose calls end within about the doctor's
    ``timeout``: that timeout per request, one retry, short waits. The sync's own settings are
    for long runs; a check that hangs for minutes helps nobody."""
    if client is None:
        return None
    retry = RetryPolicy(
        max_retries=1,
        initial_delay=0.2,
        max_delay=1.0,
        max_retry_after=min(1.0, options.timeout),
    )
    return client.with_options(timeout=httpx.Timeout(options.timeout), retry=retry)


@contextlib.contextmanager
def _owned(client: Any, owned: bool) -> Iterator[None]:
    try:
        yield
    finally:
        if owned and client is not None:
            client.close()


@attrs.frozen(kw_only=True)
class DoctorOptions:
    """What :func:`doctor` checks with: its keyword arguments (the CLI builds one from its flags)."""

    transform: Transform = trade_to_customer
    span: timedelta = DEFAULT_SAMPLE_SPAN
    sample_size: int = DEFAULT_SAMPLE_SIZE
    search: SearchOptions | None = None
    network: bool = True
    verify: bool | str | ssl.SSLContext = True
    max_clock_skew: float = 60.0
    timeout: float = 10.0
    environ: Mapping[str, str] | None = None
    end: datetime | None = None

    def __attrs_post_init__(self) -> None:
        if self.sample_size < 1:
            raise ValueError(f"sample_size must be at least 1, got {self.sample_size!r}")
        if not timedelta(0) < self.span <= MAX_SAMPLE_SPAN:
            raise ValueError(
                f"span must be more than 0 and at most {MAX_SAMPLE_SPAN.days} days, got "
                f"{self.span!r}"
            )
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f"timeout must be seconds > 0, got {self.timeout!r}")


def doctor(
    huke: HukeClient | None = None,
    k3: K3CloudClient | None = None,
    *,
    transform: Transform = trade_to_customer,
    span: timedelta = DEFAULT_SAMPLE_SPAN,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    search: SearchOptions | None = None,
    network: bool = True,
    verify: bool | str | ssl.SSLContext = True,
    max_clock_skew: float = 60.0,
    timeout: float = 10.0,
    environ: Mapping[str, str] | None = None,
    end: datetime | None = None,
) -> DoctorReport:
    """Check everything a sync needs, saving nothing, and report what was found.

    ``huke`` / ``k3``: the clients to check (sync clients; not closed). When one is ``None`` it is
    made from the environment (``HukeClient.from_env`` / ``K3CloudClient.from_env``; ``environ``
    replaces ``os.environ``) and closed afterwards; a missing setting is a failed check, not an
    exception. ``transform``: the transform the sync will use (its organisations are looked up
    and it is tried on the sample). ``span`` / ``sample_size``: one page of this many trades from
    this far back until ``end`` (default now). ``search``: the Huke search options the sync will
    use (e.g. ``items_key=``). ``network=False`` leaves out the DNS/TCP/TLS/clock probes;
    ``verify`` is as httpx's, for the TLS probe; a clock more than ``max_clock_skew`` seconds
    off a server's fails.

    Example:
        ```python
        from huke_k3_bridge import doctor

        report = doctor()        # clients from the environment
        print(report)            # or display(report) in a notebook
        report.ok, report.failed
        ```
    """
    options = DoctorOptions(
        transform=transform,
        span=span,
        sample_size=sample_size,
        search=search,
        network=network,
        verify=verify,
        max_clock_skew=max_clock_skew,
        timeout=timeout,
        environ=environ,
        end=end,
    )
    return diagnose(huke, k3, options)


def diagnose(
    huke: HukeClient | None,
    k3: K3CloudClient | None,
    options: DoctorOptions,
    *,
    config_errors: Mapping[str, Exception] | None = None,
    config_fixes: Mapping[str, str] | None = None,
    sources: Mapping[str, str] | None = None,
) -> DoctorReport:
    """:func:`doctor` with what the CLI adds: the configuration errors it met making the clients
    (``{"huke": error, "k3": error}``) and the fix of each (when the settings came from a file,
    not the environment), and where the bridge's settings came from."""
    fixes = config_fixes or {}
    for name, client, kind in (("huke", huke, HukeClient), ("k3", k3, K3CloudClient)):
        if client is not None and not isinstance(client, kind):
            raise TypeError(
                f"doctor() takes a {kind.__name__} as {name}, not {type(client).__name__} "
                "(the doctor runs its checks one after the other)"
            )
    started_at = datetime.now().astimezone()
    started = time.perf_counter()
    errors: dict[str, Exception] = dict(config_errors or {})
    owns_huke = owns_k3 = False
    if huke is None and "huke" not in errors:
        try:
            huke = HukeClient.from_env(options.environ)
            owns_huke = True
        except HukeConfigError as exc:
            errors["huke"] = exc
    if k3 is None and "k3" not in errors:
        try:
            k3 = K3CloudClient.from_env(environ=options.environ)
            owns_k3 = True
        except K3CloudConfigError as exc:
            errors["k3"] = exc
    with _owned(huke, owns_huke), _owned(k3, owns_k3):
        settings = [
            *_client_settings("huke", huke),
            *_client_settings("k3", k3),
            *_bridge_settings(options, sources or {}),
        ]
        checks = [
            _settings_check(
                "huke",
                "Huke",
                errors.get("huke"),
                fixes.get(
                    "huke",
                    "set HUKE_APP_KEY and HUKE_APP_SECRET (and HUKE_BASE_URL if not the default)",
                ),
            ),
            _settings_check(
                "k3",
                "K/3 Cloud",
                errors.get("k3"),
                fixes.get(
                    "k3",
                    "set K3CLOUD_SERVER_URL, K3CLOUD_ACCT_ID, K3CLOUD_USER_NAME and "
                    "K3CLOUD_APP_ID + K3CLOUD_APP_SECRET, or pass --k3-ini conf.ini",
                ),
            ),
            *_checks(_bounded(huke, options), _bounded(k3, options), options),
        ]
    from ._doctor_redact import environment_secrets, scrub_checks

    urls = [c.base_url for c in (huke, k3) if c is not None]
    checks = list(scrub_checks(checks, environment_secrets(urls, options.environ)))
    return DoctorReport(
        settings=tuple(settings),
        checks=tuple(checks),
        started_at=started_at,
        duration=time.perf_counter() - started,
    )


def _checks(
    huke: HukeClient | None, k3: K3CloudClient | None, options: DoctorOptions
) -> list[Check]:
    from ._doctor_huke import huke_checks
    from ._doctor_k3 import K3_CHECKS, k3_checks
    from ._doctor_network import network_checks
    from ._doctor_sample import CHECKS as HUKE_CHECKS

    checks: list[Check] = []
    if options.network:
        for service, label, client in (("huke", "Huke", huke), ("k3", "K/3 Cloud", k3)):
            if client is None:
                continue
            checks.extend(
                network_checks(
                    service,
                    label,
                    client.base_url,
                    verify=options.verify,
                    timeout=options.timeout,
                    max_clock_skew=options.max_clock_skew,
                    environ=options.environ,
                )
            )
    until = options.end if options.end is not None else datetime.now().astimezone()
    since = until - options.span
    trades = None
    if huke is None:
        checks.extend(skipped(HUKE_CHECKS, HUKE_CHECKS, "the Huke settings are incomplete"))
    else:
        client = huke
        huke_found, sample = _within(
            2 * options.timeout + 2,
            lambda: huke_checks(
                client,
                start=since,
                end=until,
                page_size=options.sample_size,
                search=options.search,
            ),
            lambda seconds: (_late(HUKE_CHECKS, "Huke", seconds), []),
        )
        checks.extend(_judged_by_the_dry_run(huke_found, options.transform))
        if any(c.id == "huke.auth" and c.status == "pass" for c in huke_found):
            trades = sample
    if k3 is None:
        checks.extend(skipped(K3_CHECKS, K3_CHECKS, "the K/3 Cloud settings are incomplete"))
    else:
        k3_client = k3
        checks.extend(
            _within(
                6 * options.timeout + 3,
                lambda: k3_checks(
                    k3_client, transform=options.transform, trades=trades, start=since, end=until
                ),
                lambda seconds: _late(K3_CHECKS, "K/3 Cloud", seconds),
            )
        )
    return checks


def _late(checks: CheckTable, label: str, seconds: float) -> list[Check]:
    """The checks of a service whose calls did not end in time: the first failed, the rest not
    run."""
    first, *rest = checks
    late = check_of(
        checks,
        first,
        "fail",
        f"{label}'s checks did not end within {seconds:g} s: a reply came too slowly "
        "(a server or a proxy sending it a little at a time?)",
        "try again; if it lasts, test the same call with curl from this machine, and "
        "look at the proxy or the load balancer in between",
    )
    return [late, *skipped(checks, rest, f"{label}'s checks did not end in time")]


def _judged_by_the_dry_run(checks: list[Check], transform: Transform) -> list[Check]:
    """``checks`` with the buyer check made advisory when the transform takes its customer
    number from elsewhere than ``buyerCid``: then the dry run decides, with that transform."""
    from ._doctor_k3 import number_from_buyer_cid

    if number_from_buyer_cid(transform):
        return checks
    return [
        attrs.evolve(
            check,
            status="info",
            required=False,
            summary="the transform's FNumber does not come from buyerCid (the dry run tries it): "
            + check.summary,
            fix=None,
        )
        if check.id == "huke.buyer" and check.status in ("fail", "warn")
        else check
        for check in checks
    ]
