"""The doctor's report as HTML, for notebooks: the verdict, the checks, the settings folded away."""

from __future__ import annotations

from typing import TYPE_CHECKING

from _huke_k3_core._html import Html, block, details, paragraph, table

if TYPE_CHECKING:
    from ._doctor_report import DoctorReport

#: Detail lines shown under a check (the text report shows them all; a table is enough here).
_DETAIL_LINES = 12


def report_html(report: DoctorReport) -> Html:
    rows = []
    for check in report.checks:
        note = check.fix if check.fix and check.status in ("fail", "warn", "skip") else ""
        rows.append((check.mark, check.section, check.title, check.summary, note))
    parts: list[object] = [
        paragraph(f"({report.duration:.2f}s)", bold=report.headline()),
        table(("", "section", "check", "found", "fix"), rows, limit=300),
    ]
    for check in report.checks:
        lines = check.details.get("lines")
        if isinstance(lines, list | tuple) and lines:
            shown = [(str(line),) for line in lines[:_DETAIL_LINES]]
            parts.append(
                details(
                    f"{check.mark} {check.title}: details",
                    table(("",), shown, more=len(lines) - len(shown)),
                )
            )
    if report.settings:
        parts.append(
            details(
                "Settings and where they came from",
                table(
                    ("setting", "value", "source"),
                    ((f"{s.scope}.{s.name}", s.value, s.source) for s in report.settings),
                ),
            )
        )
    return block(*parts)
