"""The sync: Huke trades in, K/3 Cloud customers out, every trade accounted for.

``_Run`` keeps the books and makes every decision; it does no I/O. What it needs from K/3 Cloud
it asks for through ``_Run.settle()``, a generator that yields batches of operations (``_Lookup``,
``_Save``) and receives their results. ``sync_customers`` runs those one after the other;
``async_sync_customers`` runs each batch concurrently and, while trades are still being fetched,
already looks up the customer numbers it has seen. Both drive the same books, so they reach the
same decisions.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, TypeAlias

import anyio
import attrs
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from huke_client import AsyncHukeClient, HukeClient, to_epoch_ms
from k3cloud_client import (
    AsyncK3CloudClient,
    BatchSaveResult,
    Customer,
    K3CloudAPIError,
    K3CloudClient,
    filters,
)

from ._progress import Progress, ProgressArg, make_sink
from ._report import OutcomeStatus, SyncReport, TradeOutcome
from ._state import State
from ._trade import TradeLike, as_text, clip, short, trade_id, wire_fields
from ._transform import SCHEME_SAVE_FLAGS, SkipTrade, Transform, trade_to_customer

logger = logging.getLogger("huke_k3_bridge")

#: The scheme's window: trades of the last 72,000 seconds (20 hours).
DEFAULT_SPAN = timedelta(seconds=72_000)
#: Longer ranges are fetched as consecutive windows of at most this length.
DEFAULT_WINDOW = timedelta(days=1)
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
_ONE_MS = timedelta(milliseconds=1)

OnExisting = Literal["skip", "update"]
Id: TypeAlias = int | str


# -- operations the books ask for ------------------------------------------------------------


@attrs.frozen
class _Lookup:
    """Which of ``numbers`` exist (ExecuteBillQuery ``FCUSTID,FNumber``)."""

    numbers: tuple[str, ...]
    depth: int = 0


@attrs.frozen
class _Save:
    """One BatchSave call: ``positions`` are the winning trades whose customers are saved."""

    kind: Literal["create", "update"]
    positions: tuple[int, ...]
    customers: tuple[Customer, ...]
    attempt: int = 1


_Op: TypeAlias = _Lookup | _Save
_Plan: TypeAlias = Generator[list[_Op], list[Any], None]


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
class _Prepared:
    """What a trade gives on its own, whatever its place in the stream: its ids, and its
    customer or why it has none. Made as pages arrive; recorded in stream order by ``_Run``."""

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


def _ms_to_datetime(ms: int) -> datetime:
    """Epoch milliseconds as an aware local datetime, exactly (no float rounding)."""
    utc = datetime.fromtimestamp(ms // 1000, tz=timezone.utc) + timedelta(milliseconds=ms % 1000)
    return utc.astimezone()


def split_windows(start_ms: int, end_ms: int, window: timedelta | None) -> list[tuple[int, int]]:
    """Consecutive inclusive ``[a, b]`` ranges covering ``[start_ms, end_ms]``, each at most
    ``window`` long (the same split as ``huke_client``'s ``window=``)."""
    if window is None:
        return [(start_ms, end_ms)]
    width = window // _ONE_MS
    if width < 1:
        raise ValueError(f"window must be at least 1 ms, got {window!r}")
    out = []
    low = start_ms
    while low <= end_ms:
        high = min(low + width - 1, end_ms)
        out.append((low, high))
        low = high + 1
    return out


def subdivide(start_ms: int, end_ms: int, parts: int) -> list[tuple[int, int]]:
    """``[start_ms, end_ms]`` cut into at most ``parts`` consecutive inclusive ranges of (nearly)
    equal length, for fetching them side by side."""
    width = end_ms - start_ms + 1
    parts = max(1, min(parts, width))
    bounds = [start_ms + width * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(parts)]


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


def _error_text(exc: BaseException) -> str:
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


class _Run:
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
        self.split_queue: list[_Lookup] = []
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

    def prepare(self, trade: TradeLike) -> _Prepared:
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
            return _Prepared(
                tid, buyer_cid, None, ("skipped", skip.reason or "skipped by the transform")
            )
        except Exception as exc:  # a transform's bug or bad data: this trade fails, the run goes on
            return _Prepared(
                tid, buyer_cid, None, ("failed", f"transform failed: {_error_text(exc)}")
            )
        order_key = order_error = None
        if self.order_by is not None:
            try:
                order_key = self.order_by(trade)
            except Exception as exc:
                order_error = _error_text(exc)
        return _Prepared(tid, buyer_cid, customer, None, order_key, order_error)

    def queue_lookups(self, page: Iterable[_Prepared]) -> None:
        """Queue the customer numbers of ``page`` not queued before for a lookup.

        Which numbers need a lookup does not depend on order either, so the async engine
        queues them as pages arrive (and looks them up while fetching goes on).
        """
        for prepared in page:
            customer = prepared.customer
            if customer is not None and customer.number not in self.queued:
                self.queued.add(customer.number)
                self.unchecked.append(customer.number)

    def record(self, prepared: _Prepared, window: int) -> None:
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
            f"fetching trades {_ms_to_datetime(w.start_ms).isoformat(timespec='seconds')} .. "
            f"{_ms_to_datetime(w.end_ms).isoformat(timespec='seconds')} failed, so the "
            f"rest of the range was not fetched: {_error_text(exc)}"
        )

    def take_lookups(self, *, full_only: bool) -> list[_Lookup]:
        """Lookups for the numbers seen so far (only full chunks when ``full_only``)."""
        ready = self.unchecked
        ops = [_Lookup(c) for c in _chunks(ready, LOOKUP_CHUNK, LOOKUP_CHARS)]
        if full_only and ops and len(ops[-1].numbers) < LOOKUP_CHUNK:
            last = ops.pop()
            self.unchecked = list(last.numbers)
        else:
            self.unchecked = []
        return ops

    # -- K/3 Cloud answers --------------------------------------------------------------------

    def apply_lookup(self, op: _Lookup, result: Any) -> None:
        if isinstance(result, BaseException):
            if (
                isinstance(result, K3CloudAPIError)
                and len(op.numbers) > 1
                and op.depth < _MAX_SPLITS
            ):
                # The server refused the query as a whole: find the number it chokes on.
                half = len(op.numbers) // 2
                self.split_queue.append(_Lookup(op.numbers[:half], op.depth + 1))
                self.split_queue.append(_Lookup(op.numbers[half:], op.depth + 1))
                return
            for number in op.numbers:
                self.lookup_failed[number] = _error_text(result)
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
    ) -> list[_Op]:
        ops: list[_Op] = []
        for i in range(0, len(positions), self.batch_size):
            part = tuple(positions[i : i + self.batch_size])
            customers = tuple(self._model_for(kind, p) for p in part)
            ops.append(_Save(kind, part, customers, attempt))
        return ops

    def _model_for(self, kind: str, position: int) -> Customer:
        item = self.items[position]
        assert item.customer is not None
        assert item.number is not None
        if kind == "update":
            return attrs.evolve(item.customer, id=self.found[item.number])
        return item.customer

    def save_call(self, op: _Save) -> tuple[tuple[Any, ...], dict[str, Any]]:
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

    def lookup_call(self, op: _Lookup) -> tuple[tuple[Any, ...], dict[str, Any]]:
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

    def _lookups(self, ops: list[_Lookup]) -> Generator[list[_Op], list[Any], None]:
        pending: list[_Lookup] = [*ops, *self.split_queue]
        self.split_queue = []
        while pending:
            results = yield list(pending)
            for op, result in zip(pending, results, strict=True):
                self.apply_lookup(op, result)
            pending, self.split_queue = self.split_queue, []

    def _confirm(
        self, positions: list[int], *, final: bool
    ) -> Generator[list[_Op], list[Any], list[int]]:
        """Re-query the numbers of creates that did not surely succeed; returns those to retry."""
        if not positions:
            return []
        numbers = [str(self.items[p].number) for p in positions]
        for number in numbers:
            self.found.pop(number, None)
            self.lookup_failed.pop(number, None)
        yield from self._lookups([_Lookup(c) for c in _chunks(numbers, LOOKUP_CHUNK, LOOKUP_CHARS)])
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

    def _apply_save(self, op: _Op, result: Any, retry_updates: list[int]) -> list[int]:
        """Record one BatchSave; returns the creates that must be confirmed by a lookup."""
        assert isinstance(op, _Save)
        unsure: list[int] = []
        if isinstance(result, BaseException):
            uncertain = _may_have_reached(result)
            failed = [
                (i, "uncertain" if uncertain else "refused", _error_text(result))
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


def _rows_to_found(rows: Iterable[Any]) -> dict[str, Id]:
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


# -- running it ----------------------------------------------------------------------------------


@attrs.frozen
class _Setup:
    start_ms: int
    end_ms: int
    resumed_from: datetime | None
    stored_ms: int | None
    started: float


def _prepare(
    *,
    start: datetime | int | None,
    end: datetime | int | None,
    transform: Transform,
    on_existing: str,
    batch_size: int,
    dry_run: bool,
    state: State | None,
    window: timedelta | None,
    form_id: str,
    order_by: Callable[[Any], Any] | None,
    clock: Callable[[], float],
    split: int = 1,
) -> tuple[_Run, _Setup]:
    started = time.perf_counter()
    if on_existing not in ("skip", "update"):
        raise ValueError(f"on_existing must be 'skip' or 'update', not {on_existing!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if not callable(transform):
        raise TypeError(f"transform must be callable, not {type(transform).__name__}")
    if window is not None and window < _ONE_MS:
        raise ValueError(f"window must be at least 1 ms, got {window!r}")
    flags = dict(SCHEME_SAVE_FLAGS)
    flags.update(getattr(transform, "save_flags", {}))
    now_ms = int(clock() * 1000)
    end_ms = to_epoch_ms(end, "end") if end is not None else now_ms
    stored = state.load() if state is not None else None
    stored_ms = None if stored is None else to_epoch_ms(stored, "watermark")
    resumed_from = None
    if start is not None:
        start_ms = to_epoch_ms(start, "start")
        if start_ms > end_ms:
            raise ValueError(
                f"start {_ms_to_datetime(start_ms).isoformat()} is after end "
                f"{_ms_to_datetime(end_ms).isoformat()}"
            )
    elif stored_ms is not None and state is not None:
        start_ms = max(stored_ms - state.overlap // _ONE_MS, 0)
        resumed_from = _ms_to_datetime(start_ms)
    else:
        start_ms = max(end_ms - DEFAULT_SPAN // _ONE_MS, 0)
    # A watermark beyond ``end`` (clock skew, an explicit early end) leaves nothing to fetch.
    ranges = split_windows(start_ms, end_ms, window) if start_ms <= end_ms else []
    if split > 1:
        ranges = [part for a, b in ranges for part in subdivide(a, b, split)]
    run = _Run(
        transform=transform,
        on_existing=on_existing,  # type: ignore[arg-type]
        dry_run=dry_run,
        form_id=form_id,
        batch_size=batch_size,
        order_by=order_by,
        windows=ranges,
        save_flags=flags,
    )
    setup = _Setup(start_ms, end_ms, resumed_from, stored_ms, started)
    logger.info(
        "sync %s .. %s in %d window(s)%s%s",
        _ms_to_datetime(start_ms).isoformat(timespec="seconds"),
        _ms_to_datetime(end_ms).isoformat(timespec="seconds"),
        len(ranges),
        " (resumed from the stored watermark)" if resumed_from is not None else "",
        " (dry run)" if dry_run else "",
    )
    return run, setup


def _finish(run: _Run, setup: _Setup, state: State | None, progress: Progress) -> SyncReport:
    outcomes = run.outcomes()
    watermark = None
    good_until = run.good_until(outcomes)
    errors = list(run.errors)
    if (
        state is not None
        and not run.dry_run
        and good_until is not None
        and (setup.stored_ms is None or good_until > setup.stored_ms)
    ):
        moment = _ms_to_datetime(good_until)
        try:
            state.save(moment)
            watermark = moment
        except Exception as exc:
            errors.append(f"could not store the watermark: {_error_text(exc)}")
    report = SyncReport(
        start=_ms_to_datetime(setup.start_ms),
        end=_ms_to_datetime(setup.end_ms),
        outcomes=outcomes,
        errors=tuple(errors),
        notes=tuple(run.notes),
        dry_run=run.dry_run,
        on_existing=run.on_existing,
        watermark=watermark,
        resumed_from=setup.resumed_from,
        elapsed=time.perf_counter() - setup.started,
    )
    report.check(len(run.items))
    progress.finish(report.total)
    counts = ", ".join(f"{n} {s}" for s, n in report.counts.items() if n)
    logger.info(
        "sync done in %.2fs: %d trades (%s)%s",
        report.elapsed,
        report.total,
        counts or "none",
        "" if report.ok else f"; {len(report.failures)} failed, {len(report.errors)} run error(s)",
    )
    for error in report.errors:
        logger.error("%s", error)
    return report


def _announce(ops: Sequence[_Op], progress: Progress) -> None:
    """Open a progress phase for a batch of operations."""
    if not ops:
        return
    if isinstance(ops[0], _Lookup):
        progress.start("check", sum(len(op.numbers) for op in ops if isinstance(op, _Lookup)))
    else:
        progress.start("save", sum(len(op.positions) for op in ops if isinstance(op, _Save)))


def _op_size(op: _Op) -> int:
    return len(op.numbers) if isinstance(op, _Lookup) else len(op.positions)


def _execute(k3: K3CloudClient, run: _Run, op: _Op) -> Any:
    try:
        if isinstance(op, _Lookup):
            args, kwargs = run.lookup_call(op)
            return _rows_to_found(k3.execute_bill_query(*args, **kwargs))
        args, kwargs = run.save_call(op)
        return k3.batch_save(*args, **kwargs)
    except Exception as exc:  # recorded against the rows; the run goes on
        logger.warning("%s of %d failed: %s", type(op).__name__[1:], _op_size(op), exc)
        return exc


async def _aexecute(k3: AsyncK3CloudClient, run: _Run, op: _Op) -> Any:
    try:
        if isinstance(op, _Lookup):
            args, kwargs = run.lookup_call(op)
            return _rows_to_found(await k3.execute_bill_query(*args, **kwargs))
        args, kwargs = run.save_call(op)
        return await k3.batch_save(*args, **kwargs)
    except Exception as exc:  # recorded against the rows; the run goes on
        logger.warning("%s of %d failed: %s", type(op).__name__[1:], _op_size(op), exc)
        return exc


def sync_customers(
    huke: HukeClient,
    k3: K3CloudClient,
    *,
    start: datetime | int | None = None,
    end: datetime | int | None = None,
    transform: Transform = trade_to_customer,
    on_existing: OnExisting = "skip",
    batch_size: int = 400,
    dry_run: bool = False,
    state: State | None = None,
    progress: ProgressArg = None,
    window: timedelta | None = DEFAULT_WINDOW,
    form_id: str = "BD_Customer",
    page_size: int = 100,
    order_by: Callable[[Any], Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> SyncReport:
    """Create a K/3 Cloud customer for every buyer of the Huke trades in ``[start, end]``.

    The run fetches the trades (window by window, page by page), turns each into a customer with
    ``transform``, keeps one customer per number (the latest trade wins; differing names are
    noted), looks up which numbers already exist (``ExecuteBillQuery`` in quoted chunks), creates
    the new ones with ``BatchSave`` (submitted and audited, as the scheme says) and skips or
    updates the existing ones (``on_existing``). A save whose reply is lost is settled by looking
    the numbers up again before anything is re-sent, so re-running a window never creates a
    duplicate. Every trade ends with exactly one outcome in the returned :class:`SyncReport`.

    Args:
        huke: the Huke client to read trades with.
        k3: the K/3 Cloud client to save customers with.
        start: range start (``datetime``, naive = local time, or epoch milliseconds). Default:
            the stored watermark minus its overlap when ``state`` has one, else ``end`` − 20 h.
        end: range end, inclusive. Default: now.
        transform: ``trade -> Customer``; raise ``SkipTrade`` for trades that cannot become one.
        on_existing: ``"skip"`` reports existing customers as ``existed``; ``"update"`` saves
            them again (with ``FCUSTID`` and ``NeedUpDateFields``: the model's fields except the
            number and the organisations). Whether K/3 Cloud lets an audited customer be changed
            depends on its configuration; a refusal is reported per trade.
        batch_size: customers per ``BatchSave`` call.
        dry_run: fetch, transform and look up, but save nothing (and store no watermark).
        state: where the watermark lives (e.g. ``FileState("sync.json")``); advanced only over
            windows that fully succeeded.
        progress: a callback receiving ``ProgressEvent``, ``True``/``False`` to force a bar on or
            off, ``None`` for a bar only on a terminal or in a notebook.
        window: longest time range fetched in one go.
        form_id: the form saved to.
        page_size: trades per Huke page.
        order_by: ``trade -> key`` deciding which trade of a buyer wins (the largest key);
            default: the later one in Huke's stream.
        clock: the time source, for "now".

    Raises:
        ValueError: for arguments that make no sense (``start`` after ``end`` ...).
        StateError: when the state cannot be read.

    Nothing else: a failure of Huke or K/3 Cloud is reported, not raised.
    """
    run, setup = _prepare(
        start=start,
        end=end,
        transform=transform,
        on_existing=on_existing,
        batch_size=batch_size,
        dry_run=dry_run,
        state=state,
        window=window,
        form_id=form_id,
        order_by=order_by,
        clock=clock,
    )
    bar = Progress(make_sink(progress))
    try:
        bar.start("fetch")
        for index, span in enumerate(run.windows):
            try:
                for page in huke.iter_trade_pages(
                    start=span.start_ms, end=span.end_ms, page_size=page_size
                ):
                    for trade in page.trades:
                        run.add(trade, index)
                    bar.advance(len(page.trades))
            except Exception as exc:  # reported; what was fetched is still saved
                run.fetch_failed(index, exc)
                break
            span.complete = True
        plan = run.settle()
        try:
            ops = next(plan)
            while True:
                _announce(ops, bar)
                results = []
                for op in ops:
                    results.append(_execute(k3, run, op))
                    bar.advance(_op_size(op))
                ops = plan.send(results)
        except StopIteration:
            pass
        return _finish(run, setup, state, bar)
    finally:
        bar.close()


_WINDOW_DONE = object()


async def _gather(
    ops: Sequence[_Op], call: Callable[[_Op], Awaitable[Any]], bar: Progress
) -> list[Any]:
    """Run ``ops`` concurrently (``call`` bounds how many at once); results in order."""
    results: list[Any] = [None] * len(ops)

    async def one(i: int, op: _Op) -> None:
        results[i] = await call(op)
        bar.advance(_op_size(op))

    async with anyio.create_task_group() as tasks:
        for i, op in enumerate(ops):
            tasks.start_soon(one, i, op)
    return results


async def async_sync_customers(
    huke: AsyncHukeClient,
    k3: AsyncK3CloudClient,
    *,
    start: datetime | int | None = None,
    end: datetime | int | None = None,
    transform: Transform = trade_to_customer,
    on_existing: OnExisting = "skip",
    batch_size: int = 400,
    dry_run: bool = False,
    state: State | None = None,
    progress: ProgressArg = None,
    window: timedelta | None = DEFAULT_WINDOW,
    form_id: str = "BD_Customer",
    page_size: int = 100,
    order_by: Callable[[Any], Any] | None = None,
    clock: Callable[[], float] = time.time,
    concurrency: int = 8,
    fetch_concurrency: int = 4,
) -> SyncReport:
    """:func:`sync_customers` on the async clients, overlapping the waits.

    - Fetching: each window is cut into ``fetch_concurrency`` consecutive sub-windows whose pages
      are fetched side by side (at most that many sub-windows in flight or in memory). Each page
      is transformed as soon as it arrives, and the results are recorded strictly in order, so
      the stream, the dedupe and the report are the same as :func:`sync_customers`'. (So
      ``transform`` and ``order_by`` see the trades in the order they arrive, a trade fetched
      twice twice: give functions without side effects.)
    - Existence lookups: every full chunk of new customer numbers is looked up while fetching
      goes on, and the last numbers as soon as the last page is in.
    - Saves start when the last page is in (the latest trade of a buyer must win) and, like
      every K/3 Cloud call of the run, run ``concurrency`` at a time.

    Same other arguments, decisions and report as :func:`sync_customers`.
    """
    for name, value in (("concurrency", concurrency), ("fetch_concurrency", fetch_concurrency)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    run, setup = _prepare(
        start=start,
        end=end,
        transform=transform,
        on_existing=on_existing,
        batch_size=batch_size,
        dry_run=dry_run,
        state=state,
        window=window,
        form_id=form_id,
        order_by=order_by,
        clock=clock,
        split=fetch_concurrency,
    )
    limiter = anyio.CapacityLimiter(concurrency)
    bar = Progress(make_sink(progress))

    async def call(op: _Op) -> Any:
        async with limiter:
            return await _aexecute(k3, run, op)

    async def early_lookup(op: _Lookup) -> None:
        run.apply_lookup(op, await call(op))

    try:
        bar.start("fetch")
        async with anyio.create_task_group() as lookups:

            def arrived(page: list[_Prepared] | None) -> None:
                if page is not None:
                    run.queue_lookups(page)
                # After the last page every number is known: the last ones are looked up at
                # once, while the pages fetched ahead are still being recorded in order.
                for op in run.take_lookups(full_only=page is not None):
                    lookups.start_soon(early_lookup, op)

            def received(index: int, page: list[_Prepared]) -> None:
                for prepared in page:
                    run.record(prepared, index)
                bar.advance(len(page))

            await _fetch_windows(huke, run, page_size, fetch_concurrency, arrived, received)
        plan = run.settle()
        try:
            ops = next(plan)
            while True:
                _announce(ops, bar)
                ops = plan.send(await _gather(ops, call, bar))
        except StopIteration:
            pass
        return _finish(run, setup, state, bar)
    finally:
        bar.close()


async def _fetch_windows(
    huke: AsyncHukeClient,
    run: _Run,
    page_size: int,
    width: int,
    arrived: Callable[[list[_Prepared] | None], None],
    received: Callable[[int, list[_Prepared]], None],
) -> None:
    """Fetch ``run.windows`` up to ``width`` at a time. Each page is prepared and given to
    ``arrived`` as it arrives (then ``None`` once every window is in), and to ``received`` in
    window order (with its window). Stops at the first window that fails (as the sync engine
    does)."""
    slots = anyio.Semaphore(width)
    unfetched = len(run.windows)
    opened, to_consume = anyio.create_memory_object_stream[
        tuple[int, MemoryObjectReceiveStream[Any]]
    ](max_buffer_size=math.inf)

    async def download(index: int, out: MemoryObjectSendStream[Any]) -> None:
        """One window's pages, as they come, then _WINDOW_DONE or the error that ended it."""
        span = run.windows[index]
        async with out:
            try:
                pages = huke.iter_trade_pages(
                    start=span.start_ms, end=span.end_ms, page_size=page_size
                )
                async for page in pages:
                    await out.send(page.trades)
            except Exception as exc:  # reported; what was fetched before it is still saved
                await out.send(exc)
                return
            await out.send(_WINDOW_DONE)

    async def fetch(index: int, out: MemoryObjectSendStream[Any]) -> None:
        """One window's pages, prepared: each while the next one is being downloaded."""
        nonlocal unfetched
        downloads, downloaded = anyio.create_memory_object_stream[Any](max_buffer_size=math.inf)
        async with out, downloaded, anyio.create_task_group() as tasks:
            tasks.start_soon(download, index, downloads)
            async for payload in downloaded:
                if isinstance(payload, list):
                    # The transform does not depend on order: it is done here, as pages
                    # arrive, so that the windows fetched ahead are ready to be recorded
                    # when their turn comes.
                    payload = [run.prepare(trade) for trade in payload]
                    arrived(payload)
                elif payload is _WINDOW_DONE:
                    unfetched -= 1
                    if not unfetched:
                        arrived(None)
                await out.send(payload)

    async def launch(tasks: TaskGroup) -> None:
        async with opened:
            for index in range(len(run.windows)):
                # A slot is given back only once the window has been consumed: at most
                # ``width`` windows are being fetched or waiting in memory.
                await slots.acquire()
                out, inbox = anyio.create_memory_object_stream[Any](max_buffer_size=math.inf)
                await opened.send((index, inbox))
                tasks.start_soon(fetch, index, out)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(launch, tasks)
        async with to_consume:
            async for index, inbox in to_consume:
                failed = False
                async with inbox:
                    async for payload in inbox:
                        if payload is _WINDOW_DONE:
                            run.windows[index].complete = True
                        elif isinstance(payload, BaseException):
                            run.fetch_failed(index, payload)
                            failed = True
                        else:
                            received(index, payload)
                slots.release()
                if failed:
                    tasks.cancel_scope.cancel()
                    break
