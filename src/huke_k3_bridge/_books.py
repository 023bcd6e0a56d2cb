"""The books of a sync: every fetched trade, what became of it, and every decision. No I/O.

``Run`` keeps the books and makes every decision. What it needs from K/3 Cloud it asks for
through ``Run.settle()``, a generator that yields batches of operations (``LookupOp``, ``SaveOp``)
and receives their results; the engine (``_engine``) carries them out. Kept apart from the engine
so that the sync and the async engine drive the same books, and so reach the same decisions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeAlias

import attrs

from k3cloud_client import BatchSaveResult, Customer, K3CloudAPIError, filters

from ._report import OutcomeStatus, TradeOutcome
from ._trade import TradeLike, as_text, clip, short, trade_id, wire_fields
from ._transform import SkipTrade, Transform
from ._windows import ms_to_datetime

#: Customer numbers per ExecuteBillQuery, and a cap on the quoted text of one filter.
LOOKUP_CHUNK = 200
LOOKUP_CHARS = 20_000
#: A lookup the server refuses is split in halves at most this many times to isolate the culprit.
_MAX_SPLITS = 8
#: The query that tells whether customers exist: internal id and number.
LOOKUP_FIELDS = "FCUSTID,FNumber"
#: Fields never sent in ``NeedUpDateFields``: the key, the number and the organisations, which
#: K/3 Cloud fixes when the customer is created.
_NOT_UPDATED = frozenset({"FCUSTID", "FNumber", "FCreateOrgId", "FUseOrgId"})

OnExisting = Literal["skip", "update"]
Id: TypeAlias = int | str


# -- operations the books ask for ------------------------------------------------------------


@attrs.frozen
class LookupOp:
    """Which of ``numbers`` exist (ExecuteBillQuery ``FCUSTID,FNumber``)."""

    numbers: tuple[str, ...]
    depth: int = 0


@attrs.frozen
class SaveOp:
    """One BatchSave call: ``positions`` are the winning trades whose customers are saved."""

    kind: Literal["create", "update"]
    positions: tuple[int, ...]
    customers: tuple[Customer, ...]
    attempt: int = 1


Op: TypeAlias = LookupOp | SaveOp
_Plan: TypeAlias = Generator[list[Op], list[Any], None]


# -- the books ---------------------------------------------------------------------------------


@attrs.define(slots=True)
class _Item:
    """One fetched trade and, once decided, its outcome."""

    position: int
    window: int
    trade_id: str | None
    buyer_cid: str | None
    customer: Customer | None = None
    number: str | None = None
    name: str | None = None
    order_key: Any = None
    status: OutcomeStatus | None = None
    reason: str | None = None
    merged_into: int | None = None
    customer_id: str | None = None
    # What happened to the save so far: "uncertain" / "refused" and the server's words.
    save_state: str | None = None
    save_message: str | None = None

    def identity(self) -> str:
        ident = f"trade {clip(self.trade_id, 40)}" if self.trade_id else "trade"
        return f"{ident} #{self.position}"

    def decide(self, status: OutcomeStatus, reason: str | None = None) -> None:
        self.status = status
        self.reason = reason


@attrs.define(slots=True)  # not frozen: made for every trade, and frozen init costs 3x
class Prepared:
    """What a trade gives on its own, whatever its place in the stream: its ids, and its
    customer or why it has none. Made as pages arrive; recorded in stream order by ``Run``."""

    trade_id: str | None
    buyer_cid: str | None
    customer: Customer | None
    #: Why there is no customer: ``("skipped" | "failed", reason)``.
    failure: tuple[OutcomeStatus, str] | None = None
    order_key: Any = None
    #: Why ``order_by`` failed for this trade.
    order_error: str | None = None


@attrs.define
class _Window:
    start_ms: int
    end_ms: int
    complete: bool = False


def _chunks(numbers: Sequence[str], size: int, chars: int) -> Iterator[tuple[str, ...]]:
    chunk: list[str] = []
    length = 0
    for number in numbers:
        cost = len(number) + 3
        if chunk and (len(chunk) >= size or length + cost > chars):
            yield tuple(chunk)
            chunk, length = [], 0
        chunk.append(number)
        length += cost
    if chunk:
        yield tuple(chunk)


def error_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 500:
        text = text[:499] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _encodable(model: Mapping[str, Any]) -> None:
    """Raise ValueError unless ``model`` can be sent (JSON, UTF-8: no lone surrogates, no NaN)."""
    if _surely_encodable(model):
        return
    try:
        json.dumps(model, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise ValueError(f"the customer cannot be sent as JSON: {exc}") from None


def _plain(value: Any) -> bool:
    """Whether ``value`` is a JSON scalar whose encoding cannot fail."""
    kind = type(value)
    if kind is str:
        # The only text that fails is text with a lone surrogate, which UTF-8 cannot encode.
        if value.isascii():
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if kind is float:
        return math.isfinite(value)
    return kind is int or kind is bool or value is None


def _surely_encodable(model: Mapping[str, Any]) -> bool:
    """Whether ``model`` is a dict of plain scalars and dicts of them (a customer's
    ``{"FNumber": org}`` references): the shape of nearly every customer, checked without
    encoding it. False means "encode it to find out", not "cannot be sent"."""
    if type(model) is not dict:
        return False
    for key, value in model.items():
        if not _plain(key):
            return False
        if type(value) is dict:
            for inner_key, inner_value in value.items():
                if not (_plain(inner_key) and _plain(inner_value)):
                    return False
        elif not _plain(value):
            return False
    return True


def _may_have_reached(exc: BaseException) -> bool:
    """Whether a call that raised may still have been carried out by the server."""
    reached = getattr(exc, "reached_server", None)
    return bool(reached)


class Run:
    """The books of one run: every fetched trade and what became of it, and every decision."""

    def __init__(
        self,
        *,
        transform: Transform,
        on_existing: OnExisting,
        dry_run: bool,
        form_id: str,
        batch_size: int,
        order_by: Callable[[Any], Any] | None,
        windows: list[tuple[int, int]],
        save_flags: Mapping[str, bool],
    ) -> None:
        self.transform = transform
        self.on_existing = on_existing
        self.dry_run = dry_run
        self.form_id = form_id
        self.batch_size = batch_size
        self.order_by = order_by
        self.save_flags = dict(save_flags)
        self.windows = [_Window(a, b) for a, b in windows]
        self.items: list[_Item] = []
        #: customer number -> positions of the trades that map to it, in stream order.
        self.groups: dict[str, list[int]] = {}
        self.first_seen: dict[str, int] = {}
        #: numbers seen but not yet handed to a lookup, and every number ever queued
        self.unchecked: list[str] = []
        self.queued: set[str] = set()
        #: lookups to retry in smaller pieces after the server refused a whole query
        self.split_queue: list[LookupOp] = []
        self.found: dict[str, Id] = {}
        self.lookup_failed: dict[str, str] = {}
        self.errors: list[str] = []
        self.notes: list[str] = []
        self.order_failed = False

    # -- fetching ---------------------------------------------------------------------------

    def add(self, trade: TradeLike, window: int) -> None:
        """Record a fetched trade and transform it; never raises for bad data."""
        prepared = self.prepare(trade)
        self.queue_lookups((prepared,))
        self.record(prepared, window)

    def prepare(self, trade: TradeLike) -> Prepared:
        """The per-trade work that depends on no other trade (transform, checks, ids).

        It reads the configuration only, never the books, so the async engine runs it for each
        page as soon as the page arrives, in whatever order the sub-windows deliver them.
        """
        try:
            fields = wire_fields(trade)
            cid = as_text(fields.get("buyerCid"))
        except Exception:
            cid = None
        tid = trade_id(trade)
        buyer_cid = None if cid is None else cid[:200]
        try:
            customer = self.transform(trade)
            if not isinstance(customer, Customer):
                raise TypeError(
                    f"the transform returned {type(customer).__name__}, not a k3cloud_client.Customer"
                )
            _encodable(customer.to_model())
        except SkipTrade as skip:
            return Prepared(
                tid, buyer_cid, None, ("skipped", skip.reason or "skipped by the transform")
            )
        except Exception as exc:  # a transform's bug or bad data: this trade fails, the run goes on
            return Prepared(
                tid, buyer_cid, None, ("failed", f"transform failed: {error_text(exc)}")
            )
        order_key = order_error = None
        if self.order_by is not None:
            try:
                order_key = self.order_by(trade)
            except Exception as exc:
                order_error = error_text(exc)
        return Prepared(tid, buyer_cid, customer, None, order_key, order_error)

    def queue_lookups(self, page: Iterable[Prepared]) -> None:
        """Queue the customer numbers of ``page`` not queued before for a lookup.

        Which numbers need a lookup does not depend on order either, so the async engine
        queues them as pages arrive (and looks them up while fetching goes on).
        """
        for prepared in page:
            customer = prepared.customer
            if customer is not None and customer.number not in self.queued:
                self.queued.add(customer.number)
                self.unchecked.append(customer.number)

    def record(self, prepared: Prepared, window: int) -> None:
        """Enter a prepared trade in the books, at the next position of the stream."""
        position = len(self.items)
        item = _Item(position, window, prepared.trade_id, prepared.buyer_cid)
        self.items.append(item)
        if item.trade_id is not None:
            first = self.first_seen.setdefault(item.trade_id, position)
            if first != position:
                item.merged_into = first
                item.decide(
                    "merged",
                    f"trade {clip(item.trade_id, 40)} was fetched twice; counted once (as #{first})",
                )
                return
        if prepared.failure is not None:
            item.decide(*prepared.failure)
            return
        customer = prepared.customer
        assert customer is not None
        item.customer = customer
        item.number = customer.number
        item.name = customer.name
        item.order_key = prepared.order_key
        if prepared.order_error is not None:
            self._order_failure(f"order_by failed for {item.identity()}: {prepared.order_error}")
        group = self.groups.get(customer.number)
        if group is None:
            self.groups[customer.number] = [position]
        else:
            group.append(position)

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

    def take_lookups(self, *, full_only: bool) -> list[LookupOp]:
        """Lookups for the numbers seen so far (only full chunks when ``full_only``)."""
        ready = self.unchecked
        ops = [LookupOp(c) for c in _chunks(ready, LOOKUP_CHUNK, LOOKUP_CHARS)]
        if full_only and ops and len(ops[-1].numbers) < LOOKUP_CHUNK:
            last = ops.pop()
            self.unchecked = list(last.numbers)
        else:
            self.unchecked = []
        return ops

    # -- K/3 Cloud answers --------------------------------------------------------------------

    def apply_lookup(self, op: LookupOp, result: Any) -> None:
        if isinstance(result, BaseException):
            if (
                isinstance(result, K3CloudAPIError)
                and len(op.numbers) > 1
                and op.depth < _MAX_SPLITS
            ):
                # The server refused the query as a whole: find the number it chokes on.
                half = len(op.numbers) // 2
                self.split_queue.append(LookupOp(op.numbers[:half], op.depth + 1))
                self.split_queue.append(LookupOp(op.numbers[half:], op.depth + 1))
                return
            for number in op.numbers:
                self.lookup_failed[number] = error_text(result)
            return
        rows: dict[str, Id] = result
        folded = {number.casefold(): cid for number, cid in rows.items()}
        for number in op.numbers:
            if number in rows:
                self.found[number] = rows[number]
            elif number.casefold() in folded:
                # K/3 Cloud's database compares numbers without regard to case.
                self.found[number] = folded[number.casefold()]
            else:
                self.found.pop(number, None)
            self.lookup_failed.pop(number, None)

    # -- deciding --------------------------------------------------------------------------

    def dedupe(self) -> list[int]:
        """Pick each customer's winning trade; the others are merged into it. Returns winners."""
        winners = []
        for number, positions in self.groups.items():
            winner = self._winner(positions)
            winners.append(winner)
            if len(positions) == 1:
                continue
            kept = self.items[winner]
            names = list(dict.fromkeys(self.items[p].name for p in positions))
            if len(names) > 1:
                shown = ", ".join(short(n, 40) for n in names[:5])
                more = f" and {len(names) - 5} more" if len(names) > 5 else ""
                self.notes.append(
                    f"customer {clip(number, 60)}: {len(positions)} trades with different names "
                    f"({shown}{more}); kept {short(kept.name, 40)} from {kept.identity()}"
                )
            into = f"merged into {kept.identity()}: "  # the same for every trade of the buyer
            for position in positions:
                if position == winner:
                    continue
                item = self.items[position]
                which = "a later" if winner > position else "an earlier"
                reason = f"{into}{which} trade of the same buyer"
                if item.name != kept.name:
                    reason += (
                        f" (name {short(item.name, 40)} was replaced by {short(kept.name, 40)})"
                    )
                item.merged_into = winner
                item.decide("merged", reason)
        winners.sort()
        return winners

    def _winner(self, positions: list[int]) -> int:
        if self.order_by is None or self.order_failed or len(positions) == 1:
            return positions[-1]
        try:
            return max(positions, key=lambda p: (self.items[p].order_key, p))
        except TypeError as exc:
            self._order_failure(f"order_by keys cannot be compared ({exc})")
            return positions[-1]

    def _save_ops(
        self, kind: Literal["create", "update"], positions: list[int], attempt: int
    ) -> list[Op]:
        ops: list[Op] = []
        for i in range(0, len(positions), self.batch_size):
            part = tuple(positions[i : i + self.batch_size])
            customers = tuple(self._model_for(kind, p) for p in part)
            ops.append(SaveOp(kind, part, customers, attempt))
        return ops

    def _model_for(self, kind: str, position: int) -> Customer:
        item = self.items[position]
        assert item.customer is not None
        assert item.number is not None
        if kind == "update":
            return attrs.evolve(item.customer, id=self.found[item.number])
        return item.customer

    def save_call(self, op: SaveOp) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Arguments of ``batch_save`` for ``op``."""
        kwargs: dict[str, Any] = {
            "chunk_size": max(len(op.customers), 1),
            "is_auto_submit_and_audit": self.save_flags["IsAutoSubmitAndAudit"],
            "is_verify_base_data_field": self.save_flags["IsVerifyBaseDataField"],
        }
        if op.kind == "update":
            keys: dict[str, None] = {}
            for customer in op.customers:
                keys.update(dict.fromkeys(k for k in customer.to_model() if k not in _NOT_UPDATED))
            kwargs["need_update_fields"] = list(keys)
        return (self.form_id, list(op.customers)), kwargs

    def lookup_call(self, op: LookupOp) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Arguments of ``execute_bill_query`` for ``op``."""
        return (self.form_id, LOOKUP_FIELDS), {
            "filter_string": filters.in_("FNumber", op.numbers),
            "limit": 2000,
        }

    def settle(self) -> _Plan:
        """Everything after fetching: lookups, dedupe, saves, and settling uncertain saves."""
        yield from self._lookups(self.take_lookups(full_only=False))
        winners = self.dedupe()
        creates: list[int] = []
        updates: list[int] = []
        for position in winners:
            item = self.items[position]
            number = item.number
            assert number is not None
            if number in self.lookup_failed:
                item.decide(
                    "failed",
                    f"could not check whether customer {clip(number, 60)} exists in K/3 Cloud, "
                    f"so it was not saved: {self.lookup_failed[number]}",
                )
            elif number in self.found:
                item.customer_id = str(self.found[number])
                if self.on_existing == "update":
                    updates.append(position)
                else:
                    item.decide("existed")
            else:
                creates.append(position)
        if self.dry_run:
            for position in creates:
                self.items[position].decide("created", "dry run: would be created")
            for position in updates:
                self.items[position].decide("updated", "dry run: would be updated")
            return
        ops = [*self._save_ops("create", creates, 1), *self._save_ops("update", updates, 1)]
        results = (yield ops) if ops else []
        unsure: list[int] = []
        retry_updates: list[int] = []
        for op, result in zip(ops, results, strict=True):
            unsure += self._apply_save(op, result, retry_updates)
        # A create that did not surely succeed may have been carried out anyway (a lost reply),
        # or by someone else meanwhile: look before deciding, never save blindly twice.
        retry_creates = yield from self._confirm(unsure, final=False)
        ops = [
            *self._save_ops("create", retry_creates, 2),
            *self._save_ops("update", retry_updates, 2),
        ]
        results = (yield ops) if ops else []
        unsure = []
        for op, result in zip(ops, results, strict=True):
            unsure += self._apply_save(op, result, [])
        yield from self._confirm(unsure, final=True)

    def _lookups(self, ops: list[LookupOp]) -> Generator[list[Op], list[Any], None]:
        pending: list[LookupOp] = [*ops, *self.split_queue]
        self.split_queue = []
        while pending:
            results = yield list(pending)
            for op, result in zip(pending, results, strict=True):
                self.apply_lookup(op, result)
            pending, self.split_queue = self.split_queue, []

    def _confirm(
        self, positions: list[int], *, final: bool
    ) -> Generator[list[Op], list[Any], list[int]]:
        """Re-query the numbers of creates that did not surely succeed; returns those to retry."""
        if not positions:
            return []
        numbers = [str(self.items[p].number) for p in positions]
        for number in numbers:
            self.found.pop(number, None)
            self.lookup_failed.pop(number, None)
        yield from self._lookups(
            [LookupOp(c) for c in _chunks(numbers, LOOKUP_CHUNK, LOOKUP_CHARS)]
        )
        retry: list[int] = []
        for position in positions:
            item = self.items[position]
            number = str(item.number)
            message = item.save_message or "no reason given"
            if number in self.found:
                item.customer_id = str(self.found[number])
                if item.save_state == "uncertain":
                    item.decide("created", "confirmed after an uncertain reply")
                else:
                    item.decide(
                        "existed",
                        f"the save was refused ({message}) but the customer exists: "
                        "created by another writer meanwhile",
                    )
            elif number in self.lookup_failed:
                item.decide(
                    "failed",
                    f"the save's outcome is unknown ({message}) and checking failed "
                    f"({self.lookup_failed[number]}); a re-run checks before saving",
                )
            elif item.save_state == "uncertain" and not final:
                retry.append(position)
            elif item.save_state == "uncertain":
                item.decide(
                    "failed",
                    f"the save's outcome stayed unknown after a retry ({message}); "
                    "not found in K/3 Cloud, a re-run will save it",
                )
            else:
                item.decide("failed", f"BatchSave refused the customer: {message}")
        return retry

    def _apply_save(self, op: Op, result: Any, retry_updates: list[int]) -> list[int]:
        """Record one BatchSave; returns the creates that must be confirmed by a lookup."""
        assert isinstance(op, SaveOp)
        unsure: list[int] = []
        if isinstance(result, BaseException):
            uncertain = _may_have_reached(result)
            failed = [
                (i, "uncertain" if uncertain else "refused", error_text(result))
                for i in range(len(op.positions))
            ]
            saved: list[tuple[int, Id | None]] = []
        else:
            outcome: BatchSaveResult = result
            saved = [(row.index, row.id) for row in outcome.saved]
            failed = [
                (row.index, "uncertain" if row.uncertain else "refused", _row_message(row))
                for row in outcome.failed
            ]
        seen: set[int] = set()
        for index, cid in saved:
            if not 0 <= index < len(op.positions) or index in seen:
                continue
            seen.add(index)
            item = self.items[op.positions[index]]
            if cid is not None:
                item.customer_id = str(cid)
            status: OutcomeStatus = "created" if op.kind == "create" else "updated"
            note = "saved on a second attempt after an uncertain reply" if op.attempt > 1 else None
            item.decide(status, note)
        for index, state, message in failed:
            if not 0 <= index < len(op.positions) or index in seen:
                continue
            seen.add(index)
            position = op.positions[index]
            item = self.items[position]
            item.save_state, item.save_message = state, message
            if op.kind == "create":
                unsure.append(position)
            elif state == "uncertain" and op.attempt == 1:
                # Saving the same fields again is harmless: retry once.
                retry_updates.append(position)
            elif state == "uncertain":
                item.decide(
                    "failed", f"the update's outcome stayed unknown after a retry: {message}"
                )
            else:
                item.decide("failed", f"BatchSave refused the update: {message}")
        for index, position in enumerate(op.positions):
            if index not in seen:
                # The reply said nothing about this row: treat it as unknown, then check.
                item = self.items[position]
                item.save_state, item.save_message = (
                    "uncertain",
                    "the reply did not mention the row",
                )
                if op.kind == "create":
                    unsure.append(position)
                elif op.attempt == 1:
                    retry_updates.append(position)
                else:
                    item.decide(
                        "failed",
                        "the update's outcome is unknown: the reply did not mention the row",
                    )
        return unsure

    # -- the end ----------------------------------------------------------------------------

    def outcomes(self) -> tuple[TradeOutcome, ...]:
        out = []
        for item in self.items:
            status = item.status
            reason = item.reason
            merged_into = item.merged_into
            if status is None:  # pragma: no cover - the self-check reports it
                status, reason = "failed", "the bridge lost track of this trade (a bug)"
            if status == "merged" and merged_into is not None:
                target = self.items[merged_into]
                # A trade fetched twice points at its first copy, which may itself be merged.
                if target.status == "merged" and target.merged_into is not None:
                    merged_into = target.merged_into
            out.append(
                TradeOutcome(
                    position=item.position,
                    status=status,
                    trade_id=item.trade_id,
                    buyer_cid=item.buyer_cid,
                    number=item.number,
                    name=item.name,
                    reason=reason,
                    merged_into=merged_into,
                    customer_id=item.customer_id,
                )
            )
        return tuple(out)

    def good_until(self, outcomes: Sequence[TradeOutcome]) -> int | None:
        """End of the last window that, like every window before it, fully succeeded."""
        bad = set()
        for item, outcome in zip(self.items, outcomes, strict=True):
            final = outcome
            if outcome.status == "merged" and outcome.merged_into is not None:
                final = outcomes[outcome.merged_into]
            if final.status == "failed":
                bad.add(item.window)
        end = None
        for index, window in enumerate(self.windows):
            if not window.complete or index in bad:
                break
            end = window.end_ms
        return end


def _row_message(row: Any) -> str:
    parts = [str(row.message or "no message")]
    if row.field_name:
        parts.append(f"field {row.field_name}")
    if row.msg_code is not None:
        parts.append(f"MsgCode {row.msg_code}")
    return parts[0] + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "")


def rows_to_found(rows: Iterable[Any]) -> dict[str, Id]:
    found: dict[str, Id] = {}
    for row in rows:
        if not isinstance(row, list | tuple) or len(row) < 2:
            continue
        cid, number = row[0], row[1]
        text = as_text(number)
        if text is None or isinstance(cid, bool) or not isinstance(cid, int | str):
            continue
        found.setdefault(text, cid)
    return found
