"""The ledger of a sync: every fetched trade, what became of it, and every decision. No I/O.

``Ledger`` keeps the account of every trade and decides. What it needs from K/3 Cloud it asks
for through ``Ledger.settle()``, a plan (``_operations.Plan``) that yields batches of operations
(``ExistenceQuery``, ``SaveBatch``, ``Pause``) and receives their results; the engine
(``_engine``) carries them out. Kept apart from the engine so that the sync and the async engine
drive the same ledger, and so reach the same decisions. Saving and confirming what was saved is
``_settling``'s part of the plan; this module records trades, checks which customers exist,
picks each customer's winning trade and gives the outcomes.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from typing import Any, TypeAlias

import attrs

from _huke_k3_core import Id, one_line, plural, short_repr
from k3cloud_client import Customer

from ._errors import error_text
from ._operations import (
    EXISTENCE_CHUNK,
    ExistenceQuery,
    Found,
    Operation,
    Plan,
    existence_queries,
)
from ._options import SyncOptions
from ._replies import failure_kind, is_whole_call, whole_call_hint
from ._report import OutcomeStatus, TradeOutcome
from ._settling import Settlement
from ._trade import TradeLike
from ._transform import PreparedTrade, prepare_trade
from ._windows import ms_to_datetime

#: An existence query the server refuses is split in halves at most this many times to isolate
#: the culprit.
_MAX_SPLITS = 8

#: A customer as K/3 Cloud keys it: ``(use organisation, number)``. A customer allocated to other
#: organisations exists once per organisation, with the same number and its own ``FCUSTID``.
Key: TypeAlias = tuple[str, str]


@attrs.define(slots=True)
class Entry:
    """One fetched trade in the ledger and, once decided, its outcome."""

    position: int
    window: int
    trade_id: str | None
    buyer_cid: str | None
    customer: Customer | None = None
    number: str | None = None
    name: str | None = None
    #: The customer's use organisation (number): where it is looked up and saved.
    org: str = ""
    order_key: Any = None
    #: The customer as K/3 Cloud keys it (see ``Ledger.key``), once it has one.
    key: Key = ("", "")
    status: OutcomeStatus | None = None
    reason: str | None = None
    merged_into: int | None = None
    customer_id: str | None = None
    #: Whether any save of this customer had an unknown outcome (it may have landed).
    ever_uncertain: bool = False
    # What happened to the save so far: "uncertain" / "refused" and the server's words.
    save_state: str | None = None
    save_message: str | None = None
    #: Whether the last save was refused because the number is already used.
    number_taken: bool = False

    def identity(self) -> str:
        ident = f"trade {one_line(self.trade_id, 40, none='-')}" if self.trade_id else "trade"
        return f"{ident} #{self.position}"

    def decide(self, status: OutcomeStatus, reason: str | None = None) -> None:
        self.status = status
        self.reason = reason


@attrs.define
class Window:
    start_ms: int
    end_ms: int
    complete: bool = False


class Ledger:
    """The account of one run: every fetched trade and what became of it, and every decision."""

    def __init__(
        self, options: SyncOptions, windows: list[tuple[int, int]], *, confirm_for: float
    ) -> None:
        self.options = options
        # Read for every trade: kept as attributes of their own, not looked up in the options.
        self.transform = options.transform
        self.order_by = options.order_by
        #: Whether "ABC" and "abc" are two customers. K/3 Cloud's database usually compares
        #: without regard to case (SQL Server's default collation): then they are one.
        self.case_sensitive_numbers = options.case_sensitive_numbers
        self.dry_run = options.dry_run
        self.on_existing = options.on_existing
        #: Seconds an uncertain save is looked for before it is sent again.
        self.confirm_for = confirm_for
        self.windows = [Window(a, b) for a, b in windows]
        self.entries: list[Entry] = []
        #: customer -> positions of the trades that map to it, in stream order.
        self.groups: dict[Key, list[int]] = {}
        self.first_seen: dict[str, int] = {}
        #: numbers seen but not yet handed to an existence query, and every number ever queued
        self.unchecked: list[tuple[str, str]] = []
        self.queued: set[tuple[str, str]] = set()
        #: queries to send again in smaller pieces after the server refused a whole query
        self.split_queue: list[ExistenceQuery] = []
        self._splits = 0
        #: Calls that failed as a whole: ``(operation, error) -> rows struck``.
        self.whole_call_failures: dict[tuple[str, str], int] = {}
        #: Customers that exist, and those whose existence could not be told (and why).
        self.found: dict[Key, Id] = {}
        self.check_failed: dict[Key, str] = {}
        self.errors: list[str] = []
        self.notes: list[str] = []
        self.order_failed = False

    # -- fetching ---------------------------------------------------------------------------

    def add(self, trade: TradeLike, window: int) -> None:
        """Record a fetched trade and transform it; never raises for bad data."""
        prepared = prepare_trade(trade, self.transform, self.order_by)
        self.queue_existence((prepared,))
        self.record(prepared, window)

    def queue_existence(self, page: Iterable[PreparedTrade]) -> None:
        """Queue the customer numbers of ``page`` not queued before for an existence query.

        Which numbers need a query does not depend on order, so the async engine queues them
        as pages arrive (and queries them while fetching goes on).
        """
        for prepared in page:
            customer = prepared.customer
            if customer is not None:
                # Every spelling is queried: on a database that does compare case, "ABC" may
                # exist where "abc" does not; on one that does not, either finds it.
                spelled = (customer.use_org, customer.number)
                if spelled not in self.queued:
                    self.queued.add(spelled)
                    self.unchecked.append(spelled)

    def record(self, prepared: PreparedTrade, window: int) -> None:
        """Enter a prepared trade in the ledger, at the next position of the stream."""
        position = len(self.entries)
        entry = Entry(position, window, prepared.trade_id, prepared.buyer_cid)
        self.entries.append(entry)
        if entry.trade_id is not None:
            first = self.first_seen.setdefault(entry.trade_id, position)
            if first != position:
                if self._same_trade(self.entries[first], prepared):
                    entry.merged_into = first
                    entry.decide(
                        "merged",
                        f"trade {one_line(entry.trade_id, 40, none='-')} was fetched twice; "
                        f"counted once (as #{first})",
                    )
                    return
                # The same id for another buyer is another trade (ids unique per shop only, or
                # a server's mistake): dropping it as a repeat would lose its buyer.
                self.notes.append(
                    f"trade id {one_line(entry.trade_id, 40, none='-')} came for two different "
                    f"buyers (#{first} and #{position}); both are kept as separate trades"
                )
        if prepared.failure is not None:
            entry.decide(*prepared.failure)
            return
        customer = prepared.customer
        assert customer is not None
        entry.customer = customer
        entry.number = customer.number
        entry.org = customer.use_org
        entry.key = self.key(customer.use_org, customer.number)
        entry.name = customer.name
        entry.order_key = prepared.order_key
        if prepared.order_error is not None:
            self._order_failure(f"order_by failed for {entry.identity()}: {prepared.order_error}")
        group = self.groups.get(entry.key)
        if group is None:
            self.groups[entry.key] = [position]
        else:
            group.append(position)

    def _same_trade(self, first: Entry, prepared: PreparedTrade) -> bool:
        """Whether a trade whose id was seen before is that trade again: same buyer, same
        customer (or both without one)."""
        customer = prepared.customer
        key = None if customer is None else self.key(customer.use_org, customer.number)
        first_key = None if first.number is None else first.key
        return first.buyer_cid == prepared.buyer_cid and first_key == key

    def key(self, org: str, number: str) -> Key:
        """How a customer is keyed in this run: its use organisation and its number, without
        regard to case unless ``case_sensitive_numbers``."""
        return (org, number if self.case_sensitive_numbers else number.casefold())

    def _order_failure(self, message: str) -> None:
        if not self.order_failed:
            self.order_failed = True
            self.notes.append(f"{message}; the latest trade in the stream wins instead")

    def fetch_failed(self, window: int, exc: BaseException) -> None:
        w = self.windows[window]
        self.errors.append(
            f"fetching trades {ms_to_datetime(w.start_ms).isoformat(timespec='seconds')} .. "
            f"{ms_to_datetime(w.end_ms).isoformat(timespec='seconds')} failed, so the "
            f"rest of the range was not fetched: {error_text(exc)}"
        )

    def take_existence_queries(self, *, full_only: bool) -> list[ExistenceQuery]:
        """Existence queries for the numbers seen so far (only full chunks when ``full_only``)."""
        queries = existence_queries(self.unchecked)
        self.unchecked = []
        if full_only:
            # Per organisation, the last, partial chunk waits for more numbers.
            ready = []
            for query in queries:
                if len(query.numbers) < EXISTENCE_CHUNK:
                    self.unchecked.extend((query.org, number) for number in query.numbers)
                else:
                    ready.append(query)
            queries = ready
        return queries

    # -- which customers exist ----------------------------------------------------------------

    def apply_existence(self, query: ExistenceQuery, result: Any, *, split: bool = True) -> None:
        """Take the result of an existence query: what it found, or why it failed."""
        if isinstance(result, BaseException):
            whole = is_whole_call(result)
            if split and not whole and len(query.numbers) > 1 and query.depth < _MAX_SPLITS:
                # The server refused the query for what it holds: find the number it chokes on.
                half = len(query.numbers) // 2
                self._splits += 1
                for part in (query.numbers[:half], query.numbers[half:]):
                    self.split_queue.append(
                        ExistenceQuery(part, query.org, query.depth + 1, self._splits)
                    )
                return
            reason = error_text(result)
            if whole or not split:
                self.whole_call_failure("ExecuteBillQuery", result, len(query.numbers))
                # Said once, in full, as a run-level error; each trade's line stays short.
                reason = (
                    f"the lookup failed as a whole ({type(result).__name__}; see the run's errors)"
                )
            for number in query.numbers:
                self.check_failed[self.key(query.org, number)] = reason
            return
        found: Found = result
        folded: dict[str, list[Id]] = {}
        for number, ids in found.items():
            folded.setdefault(number.casefold(), []).extend(ids)
        for number in query.numbers:
            key = self.key(query.org, number)
            ids = found.get(number, [])
            if not ids and not self.case_sensitive_numbers:
                # K/3 Cloud's database compares numbers without regard to case (by default).
                ids = folded.get(number.casefold(), [])
            # Several spellings of one customer may be queried: a result adds to what the
            # others found (confirming a save clears a key before querying it again).
            known = self.found.get(key)
            distinct = list(dict.fromkeys([*([] if known is None else [known]), *ids]))
            if len(distinct) > 1:
                self.check_failed[key] = (
                    f"K/3 Cloud holds {len(distinct)} customers numbered {one_line(number, 60)} "
                    f"(or spelled so, in another case) in organisation {one_line(query.org, 20)} "
                    f"(FCUSTID {', '.join(map(str, distinct[:5]))}): which one is this buyer's "
                    "cannot be told"
                )
            elif distinct:
                self.found[key] = distinct[0]

    def check_existence(
        self, queries: list[ExistenceQuery]
    ) -> Generator[list[Operation], list[Any], None]:
        """The plan of ``queries`` and of the halves of those the server refuses."""
        pending: list[ExistenceQuery] = [*queries, *self.split_queue]
        self.split_queue = []
        while pending:
            results = yield list(pending)
            # Both halves of a split refused alike: the query was never the problem, one of its
            # numbers was not either; splitting further would only multiply the calls.
            failures: dict[int, list[Any]] = {}
            for query, result in zip(pending, results, strict=True):
                if query.split is not None and isinstance(result, BaseException):
                    failures.setdefault(query.split, []).append(failure_kind(result))
            alike = {
                split
                for split, kinds in failures.items()
                if len(kinds) == 2 and kinds[0] == kinds[1]
            }
            for query, result in zip(pending, results, strict=True):
                self.apply_existence(query, result, split=query.split not in alike)
            pending, self.split_queue = self.split_queue, []

    def whole_call_failure(self, operation: str, exc: BaseException | str, rows: int) -> None:
        """Count a call that failed as a whole (after the client's retries): said once per run,
        as a run-level error, however many calls and rows it struck."""
        text = exc if isinstance(exc, str) else error_text(exc)
        hint = "" if isinstance(exc, str) else whole_call_hint(exc)
        if hint and "check" not in text:
            text = f"{text}. What to check: {hint}"
        key = (operation, text)
        self.whole_call_failures[key] = self.whole_call_failures.get(key, 0) + rows

    def whole_call_errors(self) -> list[str]:
        """The run-level errors of the calls that failed as a whole, one per kind of failure."""
        return [
            f"{operation} failed as a whole, after the client's retries, for "
            f"{plural(rows, 'customer')}: {text} (see docs/errors.md for what to check)"
            for (operation, text), rows in self.whole_call_failures.items()
        ]

    # -- deciding --------------------------------------------------------------------------

    def settle(self) -> Plan:
        """Everything after fetching: existence queries, dedupe, saves, and settling uncertain
        saves (see ``_settling``)."""
        return Settlement(self).plan()

    def dedupe(self) -> list[int]:
        """Pick each customer's winning trade; the others are merged into it. Returns winners."""
        entries = self.entries
        winners = []
        for positions in self.groups.values():
            winner = self._winner(positions)
            number = str(entries[winner].number)
            winners.append(winner)
            if len(positions) == 1:
                continue
            kept = entries[winner]
            names = list(dict.fromkeys(entries[p].name for p in positions))
            if len(names) > 1:
                shown = ", ".join(short_repr(n, 40) for n in names[:5])
                more = f" and {len(names) - 5} more" if len(names) > 5 else ""
                self.notes.append(
                    f"customer {one_line(number, 60)}: {len(positions)} trades with different "
                    f"names ({shown}{more}); kept {short_repr(kept.name, 40)} from "
                    f"{kept.identity()}"
                )
            into = f"merged into {kept.identity()}: "  # the same for every trade of the buyer
            for position in positions:
                if position == winner:
                    continue
                entry = entries[position]
                which = "a later" if winner > position else "an earlier"
                reason = f"{into}{which} trade of the same buyer"
                if entry.name != kept.name:
                    reason += (
                        f" (name {short_repr(entry.name, 40)} was replaced by "
                        f"{short_repr(kept.name, 40)})"
                    )
                entry.merged_into = winner
                entry.decide("merged", reason)
        winners.sort()
        return winners

    def _winner(self, positions: list[int]) -> int:
        if self.order_by is None or self.order_failed or len(positions) == 1:
            return positions[-1]
        try:
            return max(positions, key=lambda p: (self.entries[p].order_key, p))
        except TypeError as exc:
            self._order_failure(f"order_by keys cannot be compared ({exc})")
            return positions[-1]

    # -- the end ----------------------------------------------------------------------------

    def outcomes(self) -> tuple[TradeOutcome, ...]:
        out = []
        for entry in self.entries:
            status = entry.status
            reason = entry.reason
            merged_into = entry.merged_into
            if status is None:  # pragma: no cover - the self-check reports it
                status, reason = "failed", "the bridge lost track of this trade (a bug)"
            if status == "merged" and merged_into is not None:
                target = self.entries[merged_into]
                # A trade fetched twice points at its first copy, which may itself be merged.
                if target.status == "merged" and target.merged_into is not None:
                    merged_into = target.merged_into
            out.append(
                TradeOutcome(
                    position=entry.position,
                    status=status,
                    trade_id=entry.trade_id,
                    buyer_cid=entry.buyer_cid,
                    number=entry.number,
                    name=entry.name,
                    reason=reason,
                    merged_into=merged_into,
                    customer_id=entry.customer_id,
                )
            )
        return tuple(out)

    def good_until(self, outcomes: Sequence[TradeOutcome]) -> int | None:
        """End of the last window that, like every window before it, fully succeeded."""
        bad = set()
        for entry, outcome in zip(self.entries, outcomes, strict=True):
            final = outcome
            if outcome.status == "merged" and outcome.merged_into is not None:
                final = outcomes[outcome.merged_into]
            if final.status in ("failed", "uncertain"):
                bad.add(entry.window)
        end = None
        for index, window in enumerate(self.windows):
            if not window.complete or index in bad:
                break
            end = window.end_ms
        return end
