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

from k3cloud_client import (
    WHOLE_CALL_MSG_CODES,
    BatchSaveResult,
    Customer,
    K3CloudAPIError,
    K3CloudAuthenticationError,
    K3CloudConnectionError,
    K3CloudHTTPError,
    LoginError,
    PermissionDeniedError,
    RateLimitedError,
    RetryPolicy,
    SessionLostError,
    filters,
)

from ._report import OutcomeStatus, TradeOutcome
from ._trade import TradeLike, as_text, clip, junk_key, short, trade_id, wire_fields
from ._transform import SkipTrade, Transform, save_arguments
from ._windows import ms_to_datetime

#: Customer numbers per ExecuteBillQuery, and a cap on the quoted text of one filter.
LOOKUP_CHUNK = 200
LOOKUP_CHARS = 20_000
#: A lookup the server refuses is split in halves at most this many times to isolate the culprit.
_MAX_SPLITS = 8
#: Confirming an uncertain save: pauses between lookups double from 0.1 s to 5 s (no jitter: one
#: run's own lookups), for at least ``Run.confirm_for`` seconds.
_CONFIRM_PAUSES = RetryPolicy(initial_delay=0.1, max_delay=5.0, jitter=0)
_CONFIRM_DOUBLING_ROUNDS = 8
#: Seconds an uncertain save is given to land before it counts as not saved, unless told.
DEFAULT_CONFIRM_FOR = 30.0
#: The query that tells whether customers exist: internal id, number and use organisation
#: (asked for, not only filtered on: a row of another organisation is never taken for the
#: customer's own, even from a server that ignores part of the filter)...
LOOKUP_ORG_FIELD = "FUseOrgId"
LOOKUP_FIELDS = f"FCUSTID,FNumber,{LOOKUP_ORG_FIELD}.FNumber"
#: ...restricted to the customer's use organisation (by its number), read page by page.
LOOKUP_PAGE = 2000
#: Fields never sent in ``NeedUpDateFields``: the key, the number and the organisations, which
#: K/3 Cloud fixes when the customer is created.
_NOT_UPDATED = frozenset({"FCUSTID", "FNumber", "FCreateOrgId", "FUseOrgId"})

OnExisting = Literal["skip", "update"]
Id: TypeAlias = int | str
#: A customer as K/3 Cloud keys it: ``(use organisation, number)``. A customer allocated to other
#: organisations exists once per organisation, with the same number and its own ``FCUSTID``.
Key: TypeAlias = tuple[str, str]


# -- operations the books ask for ------------------------------------------------------------


@attrs.frozen
class LookupOp:
    """Which of ``numbers`` exist in use organisation ``org`` (ExecuteBillQuery
    ``FCUSTID,FNumber``, every page)."""

    numbers: tuple[str, ...]
    org: str = ""
    depth: int = 0
    #: The split this lookup is one half of (halves share it), None for a first lookup.
    split: int | None = None


@attrs.frozen
class WaitOp:
    """Pause this long (seconds) before the next operations: the books do no I/O, not even
    sleeping, so the engine waits for them."""

    seconds: float


@attrs.frozen
class SaveOp:
    """One BatchSave call: ``positions`` are the winning trades whose customers are saved."""

    kind: Literal["create", "update"]
    positions: tuple[int, ...]
    customers: tuple[Customer, ...]
    attempt: int = 1


Op: TypeAlias = LookupOp | SaveOp | WaitOp
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
    #: The customer's use organisation (number): where it is looked up and saved.
    org: str = ""
    #: The customer as K/3 Cloud keys it (see ``Run.key``), once it has one.
    key: Key = ("", "")
    name: str | None = None
    order_key: Any = None
    status: OutcomeStatus | None = None
    reason: str | None = None
    merged_into: int | None = None
    customer_id: str | None = None
    # What happened to the save so far: "uncertain" / "refused" and the server's words.
    save_state: str | None = None
    save_message: str | None = None
    #: Whether any save of this customer had an unknown outcome (it may have landed).
    ever_uncertain: bool = False
    #: Whether the last save was refused because the number is already used.
    number_taken: bool = False

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
        save_flags: Mapping[str, Any],
        confirm_for: float = DEFAULT_CONFIRM_FOR,
        case_sensitive_numbers: bool = False,
    ) -> None:
        self.transform = transform
        self.on_existing = on_existing
        self.dry_run = dry_run
        self.form_id = form_id
        self.batch_size = batch_size
        self.order_by = order_by
        self.save_flags = dict(save_flags)
        self.confirm_for = confirm_for
        #: Whether "ABC" and "abc" are two customers. K/3 Cloud's database usually compares
        #: without regard to case (SQL Server's default collation): then they are one.
        self.case_sensitive_numbers = case_sensitive_numbers
        self.windows = [_Window(a, b) for a, b in windows]
        self.items: list[_Item] = []
        #: customer -> positions of the trades that map to it, in stream order.
        self.groups: dict[Key, list[int]] = {}
        self.first_seen: dict[str, int] = {}
        #: numbers seen but not yet handed to a lookup, and every number ever queued
        self.unchecked: list[tuple[str, str]] = []
        self.queued: set[tuple[str, str]] = set()
        #: lookups to retry in smaller pieces after the server refused a whole query
        self.split_queue: list[LookupOp] = []
        self._splits = 0
        #: Calls that failed as a whole: ``(operation, error) -> rows struck``.
        self.whole_call_failures: dict[tuple[str, str], int] = {}
        self.found: dict[Key, Id] = {}
        self.lookup_failed: dict[Key, str] = {}
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
            junk = junk_key(customer.number)
            if junk is not None:
                raise SkipTrade(f"{junk}: no customer is made of it")
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
            if customer is not None:
                # Every spelling is looked up: on a database that does compare case, "ABC" may
                # exist where "abc" does not; on one that does not, either finds it.
                spelled = (customer.use_org, customer.number)
                if spelled not in self.queued:
                    self.queued.add(spelled)
                    self.unchecked.append(spelled)

    def record(self, prepared: Prepared, window: int) -> None:
        """Enter a prepared trade in the books, at the next position of the stream."""
        position = len(self.items)
        item = _Item(position, window, prepared.trade_id, prepared.buyer_cid)
        self.items.append(item)
        if item.trade_id is not None:
            first = self.first_seen.setdefault(item.trade_id, position)
            if first != position:
                if self._same_trade(self.items[first], prepared):
                    item.merged_into = first
                    item.decide(
                        "merged",
                        f"trade {clip(item.trade_id, 40)} was fetched twice; counted once "
                        f"(as #{first})",
                    )
                    return
                # The same id for another buyer is another trade (ids unique per shop only, or
                # a server's mistake): dropping it as a repeat would lose its buyer.
                self.notes.append(
                    f"trade id {clip(item.trade_id, 40)} came for two different buyers (#{first} "
                    f"and #{position}); both are kept as separate trades"
                )
        if prepared.failure is not None:
            item.decide(*prepared.failure)
            return
        customer = prepared.customer
        assert customer is not None
        item.customer = customer
        item.number = customer.number
        item.org = customer.use_org
        item.key = self.key(customer.use_org, customer.number)
        item.name = customer.name
        item.order_key = prepared.order_key
        if prepared.order_error is not None:
            self._order_failure(f"order_by failed for {item.identity()}: {prepared.order_error}")
        group = self.groups.get(item.key)
        if group is None:
            self.groups[item.key] = [position]
        else:
            group.append(position)

    def _same_trade(self, first: _Item, prepared: Prepared) -> bool:
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

    def _lookup_ops(self, spelled: Iterable[tuple[str, str]]) -> list[LookupOp]:
        """Lookups for ``(organisation, number)`` pairs: per organisation, in chunks of safely
        quoted numbers."""
        by_org: dict[str, list[str]] = {}
        for org, number in spelled:
            by_org.setdefault(org, []).append(number)
        return [
            LookupOp(chunk, org)
            for org, numbers in by_org.items()
            for chunk in _chunks(numbers, LOOKUP_CHUNK, LOOKUP_CHARS)
        ]

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
        ops = self._lookup_ops(self.unchecked)
        self.unchecked = []
        if full_only:
            # Per organisation, the last, partial chunk waits for more numbers.
            ready = []
            for op in ops:
                if len(op.numbers) < LOOKUP_CHUNK:
                    self.unchecked.extend((op.org, number) for number in op.numbers)
                else:
                    ready.append(op)
            ops = ready
        return ops

    # -- K/3 Cloud answers --------------------------------------------------------------------

    def apply_lookup(self, op: LookupOp, result: Any, *, split: bool = True) -> None:
        if isinstance(result, BaseException):
            if split and not _whole_call(result) and len(op.numbers) > 1 and op.depth < _MAX_SPLITS:
                # The server refused the query for what it holds: find the number it chokes on.
                half = len(op.numbers) // 2
                self._splits += 1
                for part in (op.numbers[:half], op.numbers[half:]):
                    self.split_queue.append(LookupOp(part, op.org, op.depth + 1, self._splits))
                return
            reason = error_text(result)
            if _whole_call(result) or not split:
                self._whole_call_failure("ExecuteBillQuery", result, len(op.numbers))
                # Said once, in full, as a run-level error; each trade's line stays short.
                reason = (
                    f"the lookup failed as a whole ({type(result).__name__}; see the run's errors)"
                )
            for number in op.numbers:
                self.lookup_failed[self.key(op.org, number)] = reason
            return
        found: Found = result
        folded: dict[str, list[Id]] = {}
        for number, ids in found.items():
            folded.setdefault(number.casefold(), []).extend(ids)
        for number in op.numbers:
            key = self.key(op.org, number)
            ids = found.get(number, [])
            if not ids and not self.case_sensitive_numbers:
                # K/3 Cloud's database compares numbers without regard to case (by default).
                ids = folded.get(number.casefold(), [])
            # Several spellings of one customer may be looked up: a result adds to what the
            # others found (``_confirm`` clears a key before looking it up again).
            known = self.found.get(key)
            distinct = list(dict.fromkeys([*([] if known is None else [known]), *ids]))
            if len(distinct) > 1:
                self.lookup_failed[key] = (
                    f"K/3 Cloud holds {len(distinct)} customers numbered {clip(number, 60)} "
                    f"(or spelled so, in another case) in organisation {clip(op.org, 20)} "
                    f"(FCUSTID {', '.join(map(str, distinct[:5]))}): which one is this buyer's "
                    "cannot be told"
                )
            elif distinct:
                self.found[key] = distinct[0]

    # -- deciding --------------------------------------------------------------------------

    def dedupe(self) -> list[int]:
        """Pick each customer's winning trade; the others are merged into it. Returns winners."""
        winners = []
        for positions in self.groups.values():
            winner = self._winner(positions)
            number = str(self.items[winner].number)
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
        for part in self._batches(positions):
            customers = tuple(self._model_for(kind, p) for p in part)
            ops.append(SaveOp(kind, part, customers, attempt))
        return ops

    def _batches(self, positions: list[int]) -> Iterator[tuple[int, ...]]:
        """``positions`` in calls of at most ``batch_size``, never two rows of one number in a
        call (the same customer allocated to two organisations): the reply's ``Number`` is what
        verifies each row's result, and it could not tell them apart."""
        pending = positions
        while pending:
            batch: list[int] = []
            numbers: set[str] = set()
            later: list[int] = []
            for position in pending:
                folded = str(self.items[position].number).casefold()
                if len(batch) < self.batch_size and folded not in numbers:
                    batch.append(position)
                    numbers.add(folded)
                else:
                    later.append(position)
            yield tuple(batch)
            pending = later

    def _model_for(self, kind: str, position: int) -> Customer:
        item = self.items[position]
        assert item.customer is not None
        assert item.number is not None
        if kind == "update":
            return attrs.evolve(item.customer, id=self.found[item.key])
        return item.customer

    def save_call(self, op: SaveOp) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Arguments of ``batch_save`` for ``op``."""
        kwargs: dict[str, Any] = {
            "chunk_size": max(len(op.customers), 1),
            **save_arguments(self.save_flags),
        }
        if op.kind == "update":
            keys: dict[str, None] = {}
            for customer in op.customers:
                keys.update(dict.fromkeys(k for k in customer.to_model() if k not in _NOT_UPDATED))
            kwargs["need_update_fields"] = list(keys)
        return (self.form_id, list(op.customers)), kwargs

    def lookup_call(self, op: LookupOp) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Arguments of ``iter_bill_query`` for ``op``: the numbers, in the customer's use
        organisation only (another organisation's copy is another record), every page."""
        condition = filters.in_("FNumber", op.numbers)
        if op.org:
            condition = filters.and_(condition, filters.eq(f"{LOOKUP_ORG_FIELD}.FNumber", op.org))
        return (self.form_id, LOOKUP_FIELDS), {
            "filter_string": condition,
            "order_string": "FCUSTID",
            "page_size": LOOKUP_PAGE,
        }

    def settle(self) -> _Plan:
        """Everything after fetching: lookups, dedupe, saves, and settling uncertain saves."""
        yield from self._lookups(self.take_lookups(full_only=False))
        winners = self.dedupe()
        creates: list[int] = []
        updates: list[int] = []
        for position in winners:
            item = self.items[position]
            key = item.key
            if key in self.lookup_failed:
                item.decide(
                    "failed",
                    f"could not check whether customer {clip(item.number, 60)} exists in K/3 Cloud, "
                    f"so it was not saved: {self.lookup_failed[key]}",
                )
            elif key in self.found:
                item.customer_id = str(self.found[key])
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
        # A create that did not surely succeed may have been carried out anyway (a lost reply,
        # or a commit still running on the server), or by someone else meanwhile: look, and keep
        # looking for as long as the save could still land, before anything is sent again.
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
            # Both halves of a split refused alike: the query was never the problem, one of its
            # numbers was not either; splitting further would only multiply the calls.
            failures: dict[int, list[Any]] = {}
            for op, result in zip(pending, results, strict=True):
                if op.split is not None and isinstance(result, BaseException):
                    failures.setdefault(op.split, []).append(_failure_kind(result))
            alike = {
                split
                for split, kinds in failures.items()
                if len(kinds) == 2 and kinds[0] == kinds[1]
            }
            for op, result in zip(pending, results, strict=True):
                self.apply_lookup(op, result, split=op.split not in alike)
            pending, self.split_queue = self.split_queue, []

    def _confirm(
        self, positions: list[int], *, final: bool
    ) -> Generator[list[Op], list[Any], list[int]]:
        """Settle creates that did not surely succeed; returns those to send again.

        A refused create is looked up once (another writer may have created the customer). An
        uncertain one is looked up until it is found, with growing pauses, for at least
        ``confirm_for`` seconds: a save whose reply timed out may still be committing on the
        server, and sending it again before it lands would create the customer twice (on a
        K/3 Cloud without a unique number index). Only one still absent after that is sent again
        (``final=False``); after the second attempt it ends ``uncertain``, never re-sent, for
        the next run to settle.
        """
        open_ = list(positions)
        waited = 0.0
        rounds = 0
        # Enough rounds for the pauses to add up to ``confirm_for``, however long: a bound on the
        # loop, never a cut of the window.
        max_rounds = (
            2 + _CONFIRM_DOUBLING_ROUNDS + math.ceil(self.confirm_for / _CONFIRM_PAUSES.max_delay)
        )
        while open_:
            keys = list(dict.fromkeys(self.items[p].key for p in open_))
            for key in keys:
                self.found.pop(key, None)
                self.lookup_failed.pop(key, None)
            spelled = dict.fromkeys((self.items[p].org, str(self.items[p].number)) for p in open_)
            yield from self._lookups(self._lookup_ops(spelled))
            rounds += 1
            still: list[int] = []
            for position in open_:
                item = self.items[position]
                key = item.key
                if key in self.found:
                    self._confirmed(item, self.found[key])
                elif item.save_state == "uncertain" or key in self.lookup_failed:
                    still.append(position)
                elif item.ever_uncertain and item.number_taken:
                    # "Number already used" for a row whose earlier save was uncertain: most
                    # likely that save landed, but the lookup does not show it in this
                    # organisation (a lag, or the number belongs to another organisation's
                    # customer). Not a refusal, not sent again: the next run settles it.
                    item.decide(
                        "uncertain",
                        "the first save's reply was lost and the retry was told the number is "
                        f"already used ({item.save_message}), but K/3 Cloud does not show the "
                        f"customer in organisation {clip(item.org, 20)}: the first save probably "
                        "landed; not sent again: the next run checks before saving",
                    )
                else:
                    message = item.save_message or "no reason given"
                    item.decide("failed", f"BatchSave refused the customer: {message}")
            open_ = still
            if not open_ or waited >= self.confirm_for or rounds >= max_rounds:
                break
            pause = min(_CONFIRM_PAUSES.backoff(rounds - 1), max(self.confirm_for - waited, 0.0))
            pause = pause or _CONFIRM_PAUSES.initial_delay
            yield [WaitOp(pause)]
            waited += pause
        retry: list[int] = []
        for position in open_:
            item = self.items[position]
            message = item.save_message or "no reason given"
            looked = f"{rounds} lookup(s) over {waited:.1f}s"
            if item.key in self.lookup_failed:
                item.decide(
                    "uncertain",
                    f"the save's outcome is unknown ({message}) and checking failed "
                    f"({self.lookup_failed[item.key]}); not sent again: the next run checks "
                    "before saving",
                )
            elif item.save_state == "uncertain" and not final:
                retry.append(position)
            else:
                item.decide(
                    "uncertain",
                    f"the save's outcome stayed unknown after a retry ({message}); not found "
                    f"in K/3 Cloud by {looked}; not sent again: the next run checks before saving",
                )
        return retry

    def _confirmed(self, item: _Item, cid: Id) -> None:
        item.customer_id = str(cid)
        if item.ever_uncertain:
            item.decide("created", "confirmed after an uncertain reply")
        else:
            message = item.save_message or "no reason given"
            item.decide(
                "existed",
                f"the save was refused ({message}) but the customer exists: "
                "created by another writer meanwhile",
            )

    def _apply_save(self, op: Op, result: Any, retry_updates: list[int]) -> list[int]:
        """Record one BatchSave; returns the creates that must be confirmed by a lookup."""
        assert isinstance(op, SaveOp)
        unsure: list[int] = []
        if isinstance(result, BaseException):
            uncertain = _may_have_reached(result)
            text = error_text(result)
            failed = [
                (i, "uncertain" if uncertain else "refused", text, False)
                for i in range(len(op.positions))
            ]
            saved: list[tuple[int, Id | None]] = []
            if not uncertain and _whole_call(result):
                self._whole_call_failure("BatchSave", result, len(op.positions))
        else:
            outcome: BatchSaveResult = result
            saved = [(row.index, row.id) for row in outcome.saved]
            failed = [
                (
                    row.index,
                    "uncertain" if row.uncertain else "refused",
                    _row_message(row),
                    _number_taken(row),
                )
                for row in outcome.failed
            ]
        seen: set[int] = set()
        for index, cid in saved:
            if not 0 <= index < len(op.positions) or index in seen:
                continue
            seen.add(index)
            item = self.items[op.positions[index]]
            sent = op.customers[index].id
            if op.kind == "update" and cid is not None and str(cid) != str(sent):
                # An update names the record it changes: a reply with another id either is
                # wrong or says K/3 made a new record. Neither is reported as this customer's.
                item.customer_id = str(sent)
                item.decide(
                    "uncertain",
                    f"the update of FCUSTID {sent} was answered with FCUSTID {clip(str(cid), 40)}:"
                    " K/3 Cloud may have changed or created another record; check it. Not sent "
                    "again",
                )
                continue
            if cid is not None:
                item.customer_id = str(cid)
            status: OutcomeStatus = "created" if op.kind == "create" else "updated"
            note = "saved on a second attempt after an uncertain reply" if op.attempt > 1 else None
            item.decide(status, note)
        if not isinstance(result, BaseException):
            for row in outcome.failed:
                if row.msg_code in WHOLE_CALL_MSG_CODES and not row.uncertain:
                    self._whole_call_failure("BatchSave", _row_message(row), 1)
        for index, state, message, taken in failed:
            if not 0 <= index < len(op.positions) or index in seen:
                continue
            seen.add(index)
            position = op.positions[index]
            item = self.items[position]
            item.save_state, item.save_message, item.number_taken = state, message, taken
            item.ever_uncertain = item.ever_uncertain or state == "uncertain"
            if op.kind == "create":
                unsure.append(position)
            elif state == "uncertain" and op.attempt == 1:
                # Saving the same fields again is harmless: retry once.
                retry_updates.append(position)
            elif state == "uncertain":
                item.decide(
                    "uncertain",
                    f"the update's outcome stayed unknown after a retry: {message}; the next "
                    "run updates it again",
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
                item.ever_uncertain = True
                if op.kind == "create":
                    unsure.append(position)
                elif op.attempt == 1:
                    retry_updates.append(position)
                else:
                    item.decide(
                        "uncertain",
                        "the update's outcome is unknown: the reply did not mention the row; "
                        "the next run updates it again",
                    )
        return unsure

    def _whole_call_failure(self, operation: str, exc: BaseException | str, rows: int) -> None:
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
            f"{operation} failed as a whole, after the client's retries, for {rows} "
            f"customer(s): {text} (see docs/errors.md for what to check)"
            for (operation, text), rows in self.whole_call_failures.items()
        ]

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
            if final.status in ("failed", "uncertain"):
                bad.add(item.window)
        end = None
        for index, window in enumerate(self.windows):
            if not window.complete or index in bad:
                break
            end = window.end_ms
        return end


def whole_call_hint(exc: BaseException) -> str:
    """What to check when every call fails with ``exc``."""
    if isinstance(exc, K3CloudAuthenticationError | LoginError):
        return (
            "acct_id, user_name, app_id, app_secret (or the password), and the machine's clock "
            "(signatures carry a timestamp)"
        )
    if isinstance(exc, PermissionDeniedError):
        return "the K/3 Cloud user's permissions on the form (view, save, submit, audit)"
    if isinstance(exc, SessionLostError):
        return (
            "whether another client logs in as the same user (each login ends the last "
            "session), or use signed headers (app_id + app_secret)"
        )
    if isinstance(exc, RateLimitedError):
        return "the account's call-rate limit: lower concurrency, or run later"
    if isinstance(exc, K3CloudConnectionError):
        return "server_url and the network (K/3 Cloud could not be reached, or did not answer)"
    if isinstance(exc, K3CloudHTTPError):
        return "server_url (it ends in /k3cloud/) and the server's health"
    return ""


def _whole_call(exc: BaseException) -> bool:
    """Whether an error concerns the call as a whole (session, rate limit, authentication, the
    server or the network), not something in it: splitting such a call cannot isolate a culprit,
    it only multiplies the calls (and the logins)."""
    if not isinstance(exc, K3CloudAPIError):
        return True
    return exc.msg_code in WHOLE_CALL_MSG_CODES


def _failure_kind(exc: BaseException) -> tuple[str, int | None]:
    return type(exc).__name__, getattr(exc, "msg_code", None)


def _number_taken(row: Any) -> bool:
    """Whether a refused row was refused because its number is already in use."""
    message = str(row.message or "")
    return (row.field_name == "FNumber" and row.msg_code == 11) or "已经被使用" in message


def _row_message(row: Any) -> str:
    parts = [str(row.message or "no message")]
    if row.field_name:
        parts.append(f"field {row.field_name}")
    if row.msg_code is not None:
        parts.append(f"MsgCode {row.msg_code}")
    return parts[0] + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "")


#: What a lookup found: number -> every ``FCUSTID`` with that number (one, when all is well).
Found: TypeAlias = dict[str, list[Id]]


def rows_to_found(rows: Iterable[Any], org: str = "") -> Found:
    """The ids per number in the rows of a lookup (``LOOKUP_FIELDS``) in organisation ``org``.

    A row of another organisation is left out. A row without the organisation column is an
    error (``ValueError``, the lookup fails): which organisation it belongs to cannot be told.
    """
    found: Found = {}
    for row in rows:
        if not isinstance(row, list | tuple) or len(row) < 2:
            continue
        cid, number = row[0], row[1]
        text = as_text(number)
        if text is None or isinstance(cid, bool) or not isinstance(cid, int | str):
            continue
        if org:
            if len(row) < 3:
                raise ValueError(
                    f"the lookup's reply has rows without {LOOKUP_ORG_FIELD}.FNumber (asked for "
                    f"{LOOKUP_FIELDS}), e.g. {short(list(row), 80)}: which organisation a "
                    "customer belongs to cannot be told"
                )
            if as_text(row[2]) != org:
                continue
        ids = found.setdefault(text, [])
        if cid not in ids:
            ids.append(cid)
    return found
