"""The doctor's K/3 Cloud checks: authentication, permission to query customers, the
organisations the transform names, a dry run over the sampled trades, the description lookup.

Nothing is saved: the dry run is the sync engine's own (``dry_run=True``) over the trades the Huke
checks sampled, so it decides exactly as a real run would (existence queries, dedupe, the use
organisation's copy), and only the saves are left out.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from huke_client import HukeClient, Trade, TradePage
from k3cloud_client import (
    Customer,
    K3CloudAPIError,
    K3CloudAuthenticationError,
    K3CloudClient,
    K3CloudConnectionError,
    K3CloudError,
    K3CloudHTTPError,
    LoginError,
    PermissionDeniedError,
    SessionLostError,
    filters,
)

from ._doctor_report import Check, CheckStatus, check_of, skipped
from ._doctor_sample import WIDER_FIX, mask_value
from ._errors import error_text
from ._report import SyncReport
from ._transform import CustomerTransform, Transform, prepare_trade, trade_to_customer

#: The organisation form K/3 Cloud keeps its organisations in.
ORG_FORM = "ORG_Organizations"
#: The K/3 Cloud checks: id -> (title, required).
K3_CHECKS: Mapping[str, tuple[str, bool]] = {
    "k3.auth": ("K/3 Cloud authentication", True),
    "k3.permission": ("Permission to query BD_Customer", True),
    "k3.org": ("Organisations of the transform", True),
    "k3.dry_run": ("Dry run of the transform over the sample", True),
    "k3.description": ("Description lookup", False),
    "k3.save": ("Permission to save, submit and audit customers", False),
}
#: The checks not run when authentication fails.
_AFTER_AUTH = ("k3.permission", "k3.org", "k3.dry_run")
_SETTINGS_FIX = (
    "check K3CLOUD_SERVER_URL (it ends in /k3cloud/), K3CLOUD_ACCT_ID, K3CLOUD_USER_NAME and "
    "K3CLOUD_APP_ID + K3CLOUD_APP_SECRET (or the conf.ini / tenants file they came from), and "
    "that the third-party app is enabled for this data centre"
)


def _check(
    id_: str, status: CheckStatus, summary: str, fix: str | None = None, **more: Any
) -> Check:
    """The check ``k3.<id_>`` (its title and whether it is required from ``K3_CHECKS``)."""
    return check_of(K3_CHECKS, f"k3.{id_}", status, summary, fix, **more)


def _auth_failure(exc: Exception) -> tuple[str, str]:
    """What a refused first call says, and its fix."""
    text = error_text(exc)
    if isinstance(exc, K3CloudAuthenticationError | LoginError):
        return f"K/3 Cloud refused the credentials: {text}", _SETTINGS_FIX
    if isinstance(exc, K3CloudHTTPError) and exc.status_code == 404:
        return (
            f"no Web API at this address: {text}",
            "K3CLOUD_SERVER_URL is the site's root, e.g. http://host/k3cloud/ (with the path)",
        )
    if isinstance(exc, K3CloudConnectionError):
        return f"could not reach K/3 Cloud: {text}", "see the network checks above"
    return f"the first call failed: {text}", _SETTINGS_FIX


def _configurable(transform: Transform) -> CustomerTransform | None:
    """The ``CustomerTransform`` behind ``transform`` (the scheme's default mapping is one with
    every setting at its default), or ``None`` for a transform of the caller's own."""
    if transform is trade_to_customer:
        return CustomerTransform()
    return transform if isinstance(transform, CustomerTransform) else None


def number_from_buyer_cid(transform: Transform) -> bool:
    """Whether ``transform`` makes ``FNumber`` of ``buyerCid`` (the scheme's mapping, not
    changed); ``False`` for a transform of the caller's own, which may take it from anywhere."""
    configured = _configurable(transform)
    if configured is None:
        return False
    return configured.fields.get("FNumber", "{{buyerCid}}") == "{{buyerCid}}"


def _orgs_of(customers: Sequence[Any], transform: Transform) -> list[str]:
    """The organisation numbers the transform puts on customers: those of the sample, or the
    transform's own settings when the sample made none."""
    orgs: dict[str, None] = {}
    for customer in customers:
        orgs.setdefault(customer.create_org, None)
        orgs.setdefault(customer.use_org, None)
    configured = _configurable(transform)
    if not orgs and configured is not None:
        orgs = dict.fromkeys((configured.create_org, configured.use_org))
    return [org for org in orgs if org]


class _SampleSource:
    """Stands in for the Huke client in the dry run: serves the sampled trades as the one page
    of the one window, so the engine fetches nothing again."""

    def __init__(self, trades: Sequence[Trade]) -> None:
        self._trades = list(trades)

    def iter_trade_pages(self, **_: Any) -> Iterator[TradePage]:
        yield TradePage(
            trades=self._trades,
            page=1,
            page_size=max(1, len(self._trades)),
            total=len(self._trades),
            has_next=False,
            raw=None,
        )


def _dry_run(
    k3: K3CloudClient, transform: Transform, trades: Sequence[Trade], start: datetime, end: datetime
) -> SyncReport:
    from ._engine import sync_customers

    return sync_customers(
        cast(HukeClient, _SampleSource(trades)),
        k3,
        start=start,
        end=end,
        window=None,
        transform=transform,
        dry_run=True,
        progress=False,
    )


def _masking(trades: Sequence[Trade], customers: Sequence[Customer]) -> Callable[[str], str]:
    """A function hiding in a text the buyers' ids, names and customer numbers of the sample
    (the reasons of the dry run quote them: ``could not check whether customer 138… exists``),
    masked as the sample trade shows them."""
    values = {c.number for c in customers} | {c.name for c in customers}
    for trade in trades:
        for key in ("buyerCid", "buyerNick"):
            value = trade.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                values.add(str(value))
    # Longest first: a number inside a longer one must not leave the rest of it showing.
    shown = sorted((v for v in values if len(v) > 1), key=len, reverse=True)

    def mask(text: str) -> str:
        for value in shown:
            if value in text:
                text = text.replace(value, str(mask_value(value)))
        return text

    return mask


def _dry_run_check(report: SyncReport, mask: Callable[[str], str]) -> Check:
    counts = report.counts
    would = [
        f"{counts['created']} would be created",
        f"{counts['existed']} exist already",
        f"{counts['skipped']} skipped",
    ]
    if counts["merged"]:
        would.append(f"{counts['merged']} merged (same buyer)")
    if counts["failed"] or counts["uncertain"]:
        would.append(f"{counts['failed'] + counts['uncertain']} failed")
    reasons = collections.Counter(
        (o.status, mask(o.reason or ""))
        for o in report.outcomes
        if o.status in ("skipped", "failed", "uncertain")
    )
    errors = [mask(error) for error in report.errors]
    lines = [f"{status}: {reason} (x{n})" for (status, reason), n in reasons.most_common(10)]
    lines.extend(f"error: {error}" for error in errors[:5])
    details = {
        "counts": dict(counts),
        "reasons": [
            {"status": status, "reason": reason, "trades": n}
            for (status, reason), n in reasons.most_common()
        ],
        "errors": errors,
        "lines": lines,
    }
    summary = f"{report.total} sampled trades: " + ", ".join(would)
    if report.errors or counts["failed"] or counts["uncertain"]:
        return _check(
            "dry_run",
            "fail",
            summary,
            fix="read the reasons below; a transform error is fixed in the transform, a K/3 "
            "error in the account's settings",
            details=details,
        )
    if report.total and not (counts["created"] or counts["existed"] or counts["updated"]):
        # Nothing would become a customer: the sync would run, say OK, and do nothing.
        return _check(
            "dry_run",
            "fail",
            summary,
            fix="no sampled trade would become a customer: check the reasons below and the "
            "transform (the field its FNumber comes from)",
            details=details,
        )
    return _check("dry_run", "pass", summary, details=details)


def _description_check(transform: Transform, customers: Sequence[Any]) -> Check:
    filled = sum(1 for c in customers if c.description)
    seen = (
        f"FDescription filled for {filled} of the {len(customers)} customers made from the sample"
    )
    scheme = _configurable(transform)
    if scheme is not None:
        configured = scheme.description is not None or "FDescription" in scheme.fields
        if not configured:
            return _check(
                "description",
                "warn",
                "not configured: every customer is saved without FDescription",
                fix="give the transform a description source: CustomerTransform(description="
                "your_data_set) (a tenants file names it: transform = 'module:attribute')",
                required=False,
            )
        status: CheckStatus = "pass" if filled or not customers else "warn"
        return _check(
            "description",
            status,
            f"configured; {seen}",
            fix=None if status == "pass" else "the lookup found none of the sampled buyers",
            required=False,
        )
    return _check(
        "description",
        "info",
        f"a custom transform: {seen}",
        required=False,
    )


def _closing_checks(transform: Transform, customers: Sequence[Customer]) -> list[Check]:
    """What the doctor can say without saving: the description lookup, and that the rights to
    save are not tried."""
    return [
        _description_check(transform, customers),
        _check(
            "save",
            "info",
            "not tried: the doctor saves nothing. The sync saves, submits and audits customers "
            "(IsAutoSubmitAndAudit): the user's role needs 新增/保存, 提交 and 审核 on 客户 "
            "(BD_Customer); a refusal shows in the first sync's report as MsgCode 2",
            required=False,
        ),
    ]


def k3_checks(
    k3: K3CloudClient,
    *,
    transform: Transform,
    trades: Sequence[Trade] | None,
    start: datetime,
    end: datetime,
    form_id: str = "BD_Customer",
) -> list[Check]:
    """The K/3 Cloud checks, in order; ``trades`` are the Huke checks' sample (``None`` when
    there is none because the Huke checks failed)."""
    checks: list[Check] = []
    prepared = [prepare_trade(trade, transform, None) for trade in trades or ()]
    customers = [p.customer for p in prepared if p.customer is not None]
    orgs = _orgs_of(customers, transform)

    # Authentication and permission come from the same first call: a K/3 refusal of the login
    # is an HTTP error or a login error; a business error (MsgCode) means the login worked.
    permission: Check
    try:
        k3.execute_bill_query(form_id, ["FNumber"], top_row_count=1, limit=1)
    except SessionLostError as exc:
        # MsgCode 1 on the very first call: the login did not give a session that holds.
        checks.append(
            _check(
                "auth",
                "fail",
                f"K/3 Cloud answered the first call with a lost session: {error_text(exc)}",
                fix="check the account id and user (the data centre), and that no other client "
                "logs in as this user at the same time (each login ends the last session)",
            )
        )
        checks.extend(skipped(K3_CHECKS, _AFTER_AUTH, "K/3 Cloud authentication failed"))
        checks.extend(_closing_checks(transform, customers))
        return checks
    except PermissionDeniedError as exc:
        checks.append(_check("auth", "pass", "logged in"))
        permission = _check(
            "permission",
            "fail",
            f"K/3 Cloud refused the query: {error_text(exc)}",
            fix=f"give the user {k3.user_name!r} the view permission on {form_id} (customer) "
            "in K/3 Cloud's role settings",
        )
    except K3CloudAPIError as exc:
        checks.append(_check("auth", "pass", "logged in"))
        permission = _check(
            "permission",
            "fail",
            f"the query failed: {error_text(exc)}",
            fix="read the message: a K/3 Cloud business error on a one-row query",
        )
    except K3CloudError as exc:
        summary, fix = _auth_failure(exc)
        checks.append(_check("auth", "fail", summary, fix=fix))
        checks.extend(skipped(K3_CHECKS, _AFTER_AUTH, "K/3 Cloud authentication failed"))
        checks.extend(_closing_checks(transform, customers))
        return checks
    else:
        checks.append(_check("auth", "pass", "logged in"))
        permission = _check(
            "permission",
            "pass",
            f"{form_id} can be queried",
        )
    checks.append(permission)
    checks.append(_org_check(k3, orgs))
    if permission.status != "pass":
        checks.extend(skipped(K3_CHECKS, ["k3.dry_run"], f"{form_id} cannot be queried"))
    elif trades is None:
        why = "no sample: the Huke checks failed"
        checks.extend(skipped(K3_CHECKS, ["k3.dry_run"], why, required=False))
    elif not trades:
        checks.append(
            _check(
                "dry_run",
                "warn",
                "no trades were sampled: nothing to try the transform on",
                fix=WIDER_FIX,
                required=False,
            )
        )
    else:
        try:
            report = _dry_run(k3, transform, trades, start, end)
            checks.append(_dry_run_check(report, _masking(trades, customers)))
        except Exception as exc:  # the engine refused the transform or its options
            checks.append(
                _check(
                    "dry_run",
                    "fail",
                    f"the dry run could not start: {error_text(exc)}",
                    fix="fix the transform or the options named above",
                )
            )
    checks.extend(_closing_checks(transform, customers))
    return checks


def _org_check(k3: K3CloudClient, orgs: Sequence[str]) -> Check:
    if not orgs:
        return _check("org", "info", "the transform named no organisation", required=False)
    wanted = ", ".join(orgs)
    try:
        rows = k3.execute_bill_query(
            ORG_FORM,
            ["FOrgID", "FNumber", "FName"],
            filter_string=filters.in_("FNumber", orgs),
        )
    except K3CloudError as exc:
        return _check(
            "org",
            "warn",
            f"could not read {ORG_FORM} to confirm {wanted}: {error_text(exc)}",
            fix=f"give the user the view permission on {ORG_FORM}, or check the numbers by hand",
            required=False,
        )
    found: Mapping[str, Any] = {str(row[1]): row for row in rows if len(row) >= 3}
    missing = [org for org in orgs if org not in found]
    shown = ", ".join(f"{number} ({found[number][2]})" for number in orgs if number in found)
    details = {"wanted": list(orgs), "found": [list(found[n]) for n in orgs if n in found]}
    if missing:
        return _check(
            "org",
            "fail",
            f"no organisation numbered {', '.join(missing)} in this account"
            + (f" (found: {shown})" if shown else "")
            + _account_orgs(k3),
            fix="set the transform's organisation to one of the account's: "
            "CustomerTransform(create_org=..., use_org=...) (a tenants file names it: "
            "transform = 'module:attribute')",
            details=details,
        )
    return _check("org", "pass", f"found {shown}", details=details)


def _account_orgs(k3: K3CloudClient, most: int = 20) -> str:
    """The account's organisations as a clause (``"; its organisations: 200 (…)"``), to pick
    from; empty when they cannot be read."""
    try:
        rows = k3.execute_bill_query(ORG_FORM, ["FNumber", "FName"], top_row_count=most, limit=most)
    except K3CloudError:
        return ""
    listed = ", ".join(f"{row[0]} ({row[1]})" for row in rows if len(row) >= 2)
    return f"; its organisations: {listed}" if listed else ""
