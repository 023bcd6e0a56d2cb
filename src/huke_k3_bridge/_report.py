"""What a sync did: one outcome per trade, counts, run-level errors, in text, HTML and JSON."""

from __future__ import annotations

import collections
import itertools
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Literal

import attrs

from _huke_k3_core import one_line, plural
from _huke_k3_core._html import block, pairs, paragraph, table

from ._errors import AccountingError

OutcomeStatus = Literal["created", "updated", "existed", "skipped", "uncertain", "failed", "merged"]
#: Every status, in the order reports show them.
STATUSES: tuple[OutcomeStatus, ...] = (
    "created",
    "updated",
    "existed",
    "skipped",
    "uncertain",
    "failed",
    "merged",
)

_LISTED = 20  # outcomes listed by name in str(); the rest are counted
#: Outcomes, and errors or notes, a notebook shows; the rest are counted (a report of 50,000
#: trades must not become megabytes of HTML in the notebook file).
_HTML_ROWS = 20
_HTML_NOTES = 5


#: How much of a reason or a note one line of ``str(report)`` shows.
_LINE = 160


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(sep=" ", timespec="seconds")


@attrs.frozen
class TradeOutcome:
    """What happened to one trade.

    ``status`` is one of:

    - ``created``: its customer was created in K/3 Cloud;
    - ``updated``: its customer existed and was updated (``on_existing="update"``);
    - ``existed``: its customer existed and was left as it was (``on_existing="skip"``);
    - ``skipped``: it cannot become a customer (``reason`` says why, e.g. no buyerCid);
    - ``uncertain``: its customer was sent, and whether K/3 Cloud saved it could not be settled
      within the run (the reply was lost and lookups did not find it in time, or failed). It was
      not sent again; the watermark stays before it, so the next run looks it up before saving;
    - ``failed``: it should have been saved and was not (``reason`` quotes the error);
    - ``merged``: another trade of the same buyer won (``merged_into`` is that trade's position).
    """

    #: 0-based position of the trade in the run's stream of fetched trades.
    position: int
    status: OutcomeStatus
    #: The trade's own id, when it has one.
    trade_id: str | None = None
    #: The trade's ``buyerCid`` as received (text), when it is text.
    buyer_cid: str | None = None
    #: The customer number (``FNumber``) the trade mapped to.
    number: str | None = None
    #: The customer name (``FName``) the trade mapped to.
    name: str | None = None
    #: Why (skipped, failed, merged) or a note (e.g. "confirmed after an uncertain reply").
    reason: str | None = None
    #: For ``merged``: the position of the trade whose customer was saved instead.
    merged_into: int | None = None
    #: The customer's internal id in K/3 Cloud (``FCUSTID``), when known.
    customer_id: str | None = None

    @property
    def ok(self) -> bool:
        """Everything but ``failed`` and ``uncertain``."""
        return self.status != "failed" and self.status != "uncertain"

    @property
    def identity(self) -> str:
        """How the trade is named in messages: id, buyerCid and position."""
        parts = []
        if self.trade_id is not None:
            parts.append(f"trade {one_line(self.trade_id, 40)}")
        else:
            parts.append("trade")
        if self.buyer_cid is not None:
            parts.append(f"buyerCid {one_line(self.buyer_cid, 40)!r}")
        parts.append(f"#{self.position}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The outcome as a flat dict of plain values."""
        return attrs.asdict(self)


@attrs.frozen
class SyncReport:
    """The result of one sync run: an outcome for every fetched trade, plus run-level errors.

    ``ok`` is true when no trade failed and the run itself had no error (such as Huke failing
    to deliver a page after its retries). ``str(report)`` is a readable summary,
    ``report.to_dicts()`` feeds ``pandas.DataFrame``, ``report.to_json()`` is for machines, and
    notebooks show an HTML table.
    """

    #: The time range that was synced.
    start: datetime
    end: datetime
    #: One outcome per fetched trade, in stream order.
    outcomes: tuple[TradeOutcome, ...] = ()
    #: Run-level errors (a window that could not be fetched, a lookup that failed ...).
    errors: tuple[str, ...] = ()
    #: Observations that are not errors (e.g. one buyer with different names in one run).
    notes: tuple[str, ...] = ()
    #: True when nothing was saved: the statuses say what a real run would have done.
    dry_run: bool = False
    on_existing: str = "skip"
    #: The state's watermark after the run, if it was advanced.
    watermark: datetime | None = None
    #: Where the run started from a stored watermark (minus the overlap), if it did.
    resumed_from: datetime | None = None
    #: Wall time of the run, seconds.
    elapsed: float = 0.0

    # -- figures ----------------------------------------------------------------------------

    @property
    def counts(self) -> dict[str, int]:
        """Trades per status, every status present (zeros included)."""
        tally = collections.Counter(outcome.status for outcome in self.outcomes)
        return {status: tally.get(status, 0) for status in STATUSES}

    @property
    def total(self) -> int:
        """Trades fetched (each has exactly one outcome)."""
        return len(self.outcomes)

    @property
    def failures(self) -> tuple[TradeOutcome, ...]:
        """The failed outcomes."""
        return self.by_status("failed")

    def by_status(self, *statuses: OutcomeStatus) -> tuple[TradeOutcome, ...]:
        """The outcomes with any of the given statuses, in stream order."""
        return tuple(o for o in self.outcomes if o.status in statuses)

    @property
    def uncertain(self) -> tuple[TradeOutcome, ...]:
        """The outcomes left uncertain (the next run settles them)."""
        return self.by_status("uncertain")

    @property
    def ok(self) -> bool:
        """No trade failed or was left uncertain, and the run had no error."""
        return not self.errors and all(o.ok for o in self.outcomes)

    def check(self, fetched: int | None = None) -> None:
        """Raise :class:`AccountingError` unless every trade has exactly one sound outcome."""
        expected = self.total if fetched is None else fetched
        problems: list[str] = []
        if self.total != expected:
            problems.append(
                f"{plural(expected, 'trade')} fetched but {plural(self.total, 'outcome')}"
            )
        positions = [o.position for o in self.outcomes]
        if positions != list(range(len(positions))):
            problems.append("outcome positions are not 0..n-1 in order")
        if sum(self.counts.values()) != self.total:
            problems.append("an outcome has an unknown status")
        for outcome in self.outcomes:
            if (
                outcome.status in ("skipped", "uncertain", "failed", "merged")
                and not outcome.reason
            ):
                problems.append(f"{outcome.identity} is {outcome.status} without a reason")
            if outcome.status == "merged":
                target = outcome.merged_into
                if target is None or not 0 <= target < self.total:
                    problems.append(f"{outcome.identity} is merged into nothing")
                elif self.outcomes[target].status == "merged":
                    problems.append(f"{outcome.identity} is merged into a merged trade")
            elif outcome.status in ("created", "updated", "existed") and not outcome.number:
                problems.append(f"{outcome.identity} is {outcome.status} without a number")
        if problems:
            raise AccountingError("sync report does not add up: " + "; ".join(problems[:5]))

    # -- renderings -------------------------------------------------------------------------

    def to_dicts(self) -> list[dict[str, Any]]:
        """One flat dict per trade (``pandas.DataFrame(report.to_dicts())``)."""
        return [outcome.to_dict() for outcome in self.outcomes]

    def summary(self) -> dict[str, Any]:
        """The run without its outcomes: window, counts, errors, notes."""
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "on_existing": self.on_existing,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "resumed_from": None if self.resumed_from is None else self.resumed_from.isoformat(),
            "watermark": None if self.watermark is None else self.watermark.isoformat(),
            "elapsed_seconds": round(self.elapsed, 3),
            "total": self.total,
            "counts": self.counts,
            "errors": list(self.errors),
            "notes": list(self.notes),
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """The summary and every outcome as JSON text."""
        return json.dumps(
            {**self.summary(), "outcomes": self.to_dicts()}, ensure_ascii=False, indent=indent
        )

    def _headline(self) -> str:
        verdict = "OK" if self.ok else "NOT OK"
        dry = " (dry run: nothing was saved)" if self.dry_run else ""
        return f"Customer sync {_when(self.start)} .. {_when(self.end)}: {verdict}{dry}"

    def _count_line(self) -> str:
        counts = self.counts
        parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES)
        return f"{plural(self.total, 'trade')}: {parts}"

    def _listed(self) -> Iterable[TradeOutcome]:
        return (*self.by_status("failed"), *self.by_status("uncertain"), *self.by_status("skipped"))

    def __str__(self) -> str:
        lines = [self._headline(), "  " + self._count_line()]
        if self.resumed_from is not None:
            lines.append(f"  resumed from the stored watermark: {_when(self.resumed_from)}")
        listed = list(self._listed())
        for outcome in listed[:_LISTED]:
            lines.append(
                f"  {outcome.status:<8} {outcome.identity}: {one_line(outcome.reason, _LINE)}"
            )
        if len(listed) > _LISTED:
            lines.append(f"  … and {len(listed) - _LISTED} more failed, uncertain or skipped")
        for note in self.notes[:_LISTED]:
            lines.append(f"  note: {one_line(note, _LINE)}")
        if len(self.notes) > _LISTED:
            lines.append(f"  … and {len(self.notes) - _LISTED} more notes")
        for error in self.errors:
            lines.append(f"  error: {one_line(error, 400)}")
        if self.watermark is not None:
            lines.append(f"  watermark advanced to {_when(self.watermark)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}={n}" for s, n in self.counts.items())
        return f"SyncReport(ok={self.ok}, total={self.total}, {counts}, errors={len(self.errors)})"

    def _repr_html_(self) -> str:
        """A notebook's view: the headline, counts, window, duration and errors, then the first
        outcomes (failed, uncertain and skipped first), however many the report holds."""
        counts = self.counts
        figures: list[tuple[str, object]] = [
            ("window", f"{_when(self.start)} .. {_when(self.end)}"),
            ("duration", f"{self.elapsed:.2f} s"),
        ]
        if self.resumed_from is not None:
            figures.append(("resumed from the stored watermark", _when(self.resumed_from)))
        if self.watermark is not None:
            figures.append(("watermark advanced to", _when(self.watermark)))
        figures.append(("errors", len(self.errors)))
        parts = [
            paragraph(f"({plural(self.total, 'trade')})", bold=self._headline()),
            table((*STATUSES, "total"), [(*(counts[s] for s in STATUSES), self.total)]),
            pairs(figures),
        ]
        for kind, items in (("error", self.errors), ("note", self.notes)):
            if items:
                shown = [(item,) for item in items[:_HTML_NOTES]]
                more = len(items) - len(shown)
                hint = f"see report.{kind}s"
                parts.append(table((kind,), shown, more=more, more_hint=hint, limit=_LINE * 2))
        if self.outcomes:
            first = itertools.islice(self._first_shown(), _HTML_ROWS)
            rows = [
                (o.position, o.status, o.trade_id, o.buyer_cid, o.number, o.reason) for o in first
            ]
            headers = ("#", "status", "trade", "buyerCid", "number", "reason")
            more = self.total - len(rows)
            parts.append(table(headers, rows, more=more, more_hint="see report.outcomes"))
        return block(*parts)

    def _first_shown(self) -> Iterator[TradeOutcome]:
        """The outcomes in the order a reader wants them: failed, uncertain, skipped (the ones
        to act on), then the others in stream order."""
        listed = ("failed", "uncertain", "skipped")
        rest = (o for o in self.outcomes if o.status not in listed)
        return itertools.chain(self._listed(), rest)
