"""What ``huke-k3 doctor`` found: settings with their sources, and checks, in text, JSON and HTML.

A check is *required* when the sync cannot work without it passing (authentication, the reply
shape, permissions, the organisation); the others inform. The report is ``ok`` when no required
check failed and none was left unrun because an earlier one failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

import attrs

from _huke_k3_core import FrozenDict, one_line

CheckStatus = Literal["pass", "fail", "warn", "info", "skip"]
#: How each status is marked in text and HTML.
MARKS: Mapping[str, str] = FrozenDict(
    {"pass": "✓", "fail": "✗", "warn": "!", "info": "·", "skip": "–"}
)
#: The sections of a report, in order.
SECTIONS = ("settings", "network", "huke", "k3")
_SECTION_TITLES = {
    "settings": "Settings",
    "network": "Network",
    "huke": "Huke",
    "k3": "K/3 Cloud",
}
_LINE = 200


@attrs.frozen
class SettingSource:
    """One setting as the doctor shows it: its value (masked when it is a secret) and where it
    came from (``"environment HUKE_APP_KEY"``, ``"conf.ini 'conf.ini' [config] x-kdapi-acctid"``,
    ``"tenants file 'shops.toml' [tenants.north]"``, ``"argument"``, ``"default"``)."""

    #: Which service or part the setting belongs to: ``"huke"``, ``"k3"`` or ``"bridge"``.
    scope: str
    #: The setting's name, as the client's constructor or the option calls it.
    name: str
    #: The value as shown: a secret is masked (only whether it is set shows).
    value: str
    #: Where the value came from.
    source: str
    #: Whether the value is a secret (masked in ``value``).
    secret: bool = False


@attrs.frozen
class Check:
    """One thing the doctor checked, and what it found."""

    #: A stable identifier (``"huke.auth"``, ``"k3.org"``, ``"network.huke.clock"``): what
    #: ``--json`` consumers and tests key on.
    id: str
    #: ``"network"``, ``"huke"`` or ``"k3"``.
    section: str
    #: What was checked, in a few words (``"Huke authentication"``).
    title: str
    #: ``pass``, ``fail``, ``warn`` (works, but look), ``info`` (found, nothing to judge) or
    #: ``skip`` (not run: ``summary`` says why).
    status: CheckStatus
    #: What was found, in one line.
    summary: str
    #: The fix, in one line, when the check failed or warns.
    fix: str | None = None
    #: Whether the sync cannot work unless this check passes.
    required: bool = True
    #: What was measured or found, for ``--json`` and the notebook (timings, field tables, a
    #: masked sample trade). Plain JSON values only; never a secret.
    details: Mapping[str, Any] = attrs.field(factory=dict, converter=FrozenDict)

    @property
    def mark(self) -> str:
        return MARKS[self.status]

    @property
    def blocking(self) -> bool:
        """Whether this check keeps the report from being ``ok``."""
        return self.required and self.status in ("fail", "skip")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "section": self.section,
            "title": self.title,
            "status": self.status,
            "required": self.required,
            "summary": self.summary,
            "fix": self.fix,
            "details": _plain(self.details),
        }


#: Each check of a section, in order: id -> (title, whether the sync needs it to pass).
CheckTable = Mapping[str, tuple[str, bool]]


def check_of(
    table: CheckTable,
    check_id: str,
    status: CheckStatus,
    summary: str,
    fix: str | None = None,
    details: Mapping[str, Any] | None = None,
    *,
    required: bool | None = None,
) -> Check:
    """The check ``check_id`` of ``table``: its title and (unless ``required`` says) whether it
    is required from the table, its section the id's first part."""
    title, needed = table[check_id]
    return Check(
        id=check_id,
        section=check_id.partition(".")[0],
        title=title,
        status=status,
        summary=summary,
        fix=fix,
        required=needed if required is None else required,
        details=details or {},
    )


def skipped(
    table: CheckTable, check_ids: Iterable[str], why: str, *, required: bool | None = None
) -> list[Check]:
    """Each of ``check_ids`` (or of a table's) reported as not run, and why."""
    return [check_of(table, i, "skip", f"not run: {why}", required=required) for i in check_ids]


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data (mappings and sequences copied, other values as text)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@attrs.frozen
class DoctorReport:
    """Everything ``huke_k3_bridge.doctor()`` found. ``print(report)`` for the text,
    ``report.to_json()`` for machines; a notebook renders it as HTML."""

    #: Each setting, where it came from (secrets masked).
    settings: tuple[SettingSource, ...]
    #: Each check, in the order run.
    checks: tuple[Check, ...]
    #: When the doctor started (aware, local time).
    started_at: datetime
    #: How long it took, in seconds.
    duration: float

    @property
    def ok(self) -> bool:
        """Whether every required check passed."""
        return not any(check.blocking for check in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        """The required checks that failed (not those skipped because of them)."""
        return tuple(c for c in self.checks if c.required and c.status == "fail")

    @property
    def exit_code(self) -> int:
        """``huke-k3 doctor``'s exit status: 0 when ``ok``, 1 otherwise."""
        return 0 if self.ok else 1

    def __getitem__(self, check_id: str) -> Check:
        for check in self.checks:
            if check.id == check_id:
                return check
        known = ", ".join(c.id for c in self.checks)
        raise KeyError(f"no check {check_id!r} in this report (its checks: {known})")

    def section(self, name: str) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.section == name)

    def headline(self) -> str:
        if self.ok:
            return f"huke-k3 doctor: all {len(self.checks)} checks done, every required one passed"
        names = ", ".join(c.title for c in self.failed) or "a required check could not run"
        return f"huke-k3 doctor: FAILED: {names}"

    # -- text ------------------------------------------------------------------------------

    def __str__(self) -> str:
        lines = [self.headline(), ""]
        for section in SECTIONS:
            checks = self.section(section)
            settings = self.settings if section == "settings" else ()
            if not checks and not settings:
                continue
            lines.append(_SECTION_TITLES[section])
            if settings:
                width = max(len(f"{s.scope}.{s.name}") for s in settings)
                for s in settings:
                    label = f"{s.scope}.{s.name}".ljust(width)
                    lines.append(f"    {label}  {one_line(s.value, 80)}  ({s.source})")
            for check in checks:
                optional = "" if check.required or check.status == "pass" else " (optional)"
                lines.append(
                    f"  {check.mark} {check.title}{optional}: {one_line(check.summary, _LINE)}"
                )
                if check.fix and check.status in ("fail", "warn", "skip"):
                    lines.append(f"      fix: {one_line(check.fix, _LINE)}")
                lines.extend(f"      {line}" for line in _detail_lines(check))
            lines.append("")
        lines.append(f"took {self.duration:.2f}s; exit status {self.exit_code}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{status}={n}"
            for status in MARKS
            if (n := sum(1 for c in self.checks if c.status == status))
        )
        return f"DoctorReport(ok={self.ok}, {counts})"

    # -- JSON ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "started_at": self.started_at.isoformat(),
            "duration": round(self.duration, 3),
            "failed": [c.id for c in self.failed],
            "settings": [attrs.asdict(s) for s in self.settings],
            "checks": [c.to_dict() for c in self.checks],
        }

    def to_json(self, **dumps: Any) -> str:
        dumps.setdefault("ensure_ascii", False)
        return json.dumps(self.to_dict(), **dumps)

    # -- HTML ------------------------------------------------------------------------------

    def _repr_html_(self) -> str:
        from ._doctor_html import report_html

        return report_html(self)


def _detail_lines(check: Check) -> Iterable[str]:
    """The lines a check's details add under it in text: its ``lines`` detail, if any."""
    lines = check.details.get("lines")
    if isinstance(lines, list | tuple):
        for line in lines:
            yield one_line(str(line), _LINE)
