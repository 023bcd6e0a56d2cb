"""Settling a run: the plan that checks, saves, and confirms every save. No I/O.

After the last page, the ledger's customers are checked (which exist), each customer's winning
trade is picked, the new customers are created and the existing ones skipped or updated, and
every save whose outcome is not sure is queried, with growing pauses, before anything is sent
again. ``Settlement.plan()`` is that sequence as a plan the engine carries out; the results of
each ``BatchSave`` are read row by row into the ledger's entries here.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any, Literal

import attrs

from _huke_k3_core import Id, one_line, plural
from k3cloud_client import WHOLE_CALL_MSG_CODES, BatchSaveResult, Customer, RetryPolicy

from ._errors import error_text
from ._operations import Operation, Pause, Plan, SaveBatch, existence_queries
from ._replies import is_whole_call, may_have_reached, number_taken, row_message
from ._report import OutcomeStatus

if TYPE_CHECKING:
    from ._ledger import Entry, Ledger

#: Confirming an uncertain save: pauses between existence queries double from 0.1 s to 5 s (no
#: jitter: one run's own queries), for at least ``Ledger.confirm_for`` seconds.
_CONFIRM_PAUSES = RetryPolicy(initial_delay=0.1, max_delay=5.0, jitter=0)
_CONFIRM_DOUBLING_ROUNDS = 8


class Settlement:
    """The part of a ledger's plan that comes after fetching (see the module)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.entries = ledger.entries

    def plan(self) -> Plan:
        """Existence queries, dedupe, saves, and settling uncertain saves."""
        ledger = self.ledger
        yield from ledger.check_existence(ledger.take_existence_queries(full_only=False))
        winners = ledger.dedupe()
        creates: list[int] = []
        updates: list[int] = []
        for position in winners:
            entry = self.entries[position]
            key = entry.key
            if key in ledger.check_failed:
                entry.decide(
                    "failed",
                    f"could not check whether customer {one_line(entry.number, 60, none='-')} "
                    f"exists in K/3 Cloud, so it was not saved: {ledger.check_failed[key]}",
                )
            elif key in ledger.found:
                entry.customer_id = str(ledger.found[key])
                if ledger.on_existing == "update":
                    updates.append(position)
                else:
                    entry.decide("existed")
            else:
                creates.append(position)
        if ledger.dry_run:
            for position in creates:
                self.entries[position].decide("created", "dry run: would be created")
            for position in updates:
                self.entries[position].decide("updated", "dry run: would be updated")
            return
        ops = [*self._save_batches("create", creates, 1), *self._save_batches("update", updates, 1)]
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
            *self._save_batches("create", retry_creates, 2),
            *self._save_batches("update", retry_updates, 2),
        ]
        results = (yield ops) if ops else []
        unsure = []
        for op, result in zip(ops, results, strict=True):
            unsure += self._apply_save(op, result, [])
        yield from self._confirm(unsure, final=True)

    # -- what is sent -------------------------------------------------------------------------

    def _save_batches(
        self, kind: Literal["create", "update"], positions: list[int], attempt: int
    ) -> list[Operation]:
        ops: list[Operation] = []
        for part in self._batches(positions):
            customers = tuple(self._model_for(kind, p) for p in part)
            ops.append(SaveBatch(kind, part, customers, attempt))
        return ops

    def _batches(self, positions: list[int]) -> Iterator[tuple[int, ...]]:
        """``positions`` in calls of at most ``batch_size``, never two rows of one number in a
        call (the same customer allocated to two organisations): the reply's ``Number`` is what
        verifies each row's result, and it could not tell them apart."""
        batch_size = self.ledger.options.batch_size
        pending = positions
        while pending:
            batch: list[int] = []
            numbers: set[str] = set()
            later: list[int] = []
            for position in pending:
                folded = str(self.entries[position].number).casefold()
                if len(batch) < batch_size and folded not in numbers:
                    batch.append(position)
                    numbers.add(folded)
                else:
                    later.append(position)
            yield tuple(batch)
            pending = later

    def _model_for(self, kind: str, position: int) -> Customer:
        entry = self.entries[position]
        assert entry.customer is not None
        assert entry.number is not None
        if kind == "update":
            return attrs.evolve(entry.customer, id=self.ledger.found[entry.key])
        return entry.customer

    # -- confirming ---------------------------------------------------------------------------

    def _confirm(
        self, positions: list[int], *, final: bool
    ) -> Generator[list[Operation], list[Any], list[int]]:
        """Settle creates that did not surely succeed; returns those to send again.

        A refused create is queried once (another writer may have created the customer). An
        uncertain one is queried until it is found, with growing pauses, for at least
        ``confirm_for`` seconds: a save whose reply timed out may still be committing on the
        server, and sending it again before it lands would create the customer twice (on a
        K/3 Cloud without a unique number index). Only one still absent after that is sent again
        (``final=False``); after the second attempt it ends ``uncertain``, never re-sent, for
        the next run to settle.
        """
        ledger = self.ledger
        entries = self.entries
        confirm_for = ledger.confirm_for
        open_ = list(positions)
        waited = 0.0
        rounds = 0
        # Enough rounds for the pauses to add up to ``confirm_for``, however long: a bound on the
        # loop, never a cut of the window.
        max_rounds = (
            2 + _CONFIRM_DOUBLING_ROUNDS + math.ceil(confirm_for / _CONFIRM_PAUSES.max_delay)
        )
        while open_:
            keys = list(dict.fromkeys(entries[p].key for p in open_))
            for key in keys:
                ledger.found.pop(key, None)
                ledger.check_failed.pop(key, None)
            spelled = dict.fromkeys((entries[p].org, str(entries[p].number)) for p in open_)
            yield from ledger.check_existence(existence_queries(spelled))
            rounds += 1
            still: list[int] = []
            for position in open_:
                entry = entries[position]
                key = entry.key
                if key in ledger.found:
                    self._confirmed(entry, ledger.found[key])
                elif entry.save_state == "uncertain" or key in ledger.check_failed:
                    still.append(position)
                elif entry.ever_uncertain and entry.number_taken:
                    # "Number already used" for a row whose earlier save was uncertain: most
                    # likely that save landed, but the query does not show it in this
                    # organisation (a lag, or the number belongs to another organisation's
                    # customer). Not a refusal, not sent again: the next run settles it.
                    entry.decide(
                        "uncertain",
                        "the first save's reply was lost and the retry was told the number is "
                        f"already used ({entry.save_message}), but K/3 Cloud does not show the "
                        f"customer in organisation {one_line(entry.org, 20)}: the first save "
                        "probably landed; not sent again: the next run checks before saving",
                    )
                else:
                    message = entry.save_message or "no reason given"
                    entry.decide("failed", f"BatchSave refused the customer: {message}")
            open_ = still
            if not open_ or waited >= confirm_for or rounds >= max_rounds:
                break
            pause = min(_CONFIRM_PAUSES.backoff(rounds - 1), max(confirm_for - waited, 0.0))
            pause = pause or _CONFIRM_PAUSES.initial_delay
            yield [Pause(pause)]
            waited += pause
        retry: list[int] = []
        for position in open_:
            entry = entries[position]
            message = entry.save_message or "no reason given"
            looked = f"{plural(rounds, 'lookup')} over {waited:.1f}s"
            if entry.key in ledger.check_failed:
                entry.decide(
                    "uncertain",
                    f"the save's outcome is unknown ({message}) and checking failed "
                    f"({ledger.check_failed[entry.key]}); not sent again: the next run checks "
                    "before saving",
                )
            elif entry.save_state == "uncertain" and not final:
                retry.append(position)
            else:
                entry.decide(
                    "uncertain",
                    f"the save's outcome stayed unknown after a retry ({message}); not found "
                    f"in K/3 Cloud by {looked}; not sent again: the next run checks before saving",
                )
        return retry

    def _confirmed(self, entry: Entry, cid: Id) -> None:
        entry.customer_id = str(cid)
        if entry.ever_uncertain:
            entry.decide("created", "confirmed after an uncertain reply")
        else:
            message = entry.save_message or "no reason given"
            entry.decide(
                "existed",
                f"the save was refused ({message}) but the customer exists: "
                "created by another writer meanwhile",
            )

    # -- what a BatchSave said, row by row ----------------------------------------------------

    def _apply_save(self, op: Operation, result: Any, retry_updates: list[int]) -> list[int]:
        """Record one BatchSave; returns the creates that must be confirmed by a query."""
        assert isinstance(op, SaveBatch)
        entries = self.entries
        unsure: list[int] = []
        if isinstance(result, BaseException):
            uncertain = may_have_reached(result)
            text = error_text(result)
            failed = [
                (i, "uncertain" if uncertain else "refused", text, False)
                for i in range(len(op.positions))
            ]
            saved: list[tuple[int, Id | None]] = []
            if not uncertain and is_whole_call(result):
                self.ledger.whole_call_failure("BatchSave", result, len(op.positions))
        else:
            outcome: BatchSaveResult = result
            saved = [(row.index, row.id) for row in outcome.saved]
            failed = [
                (
                    row.index,
                    "uncertain" if row.uncertain else "refused",
                    row_message(row),
                    number_taken(row),
                )
                for row in outcome.failed
            ]
        seen: set[int] = set()
        for index, cid in saved:
            if not 0 <= index < len(op.positions) or index in seen:
                continue
            seen.add(index)
            entry = entries[op.positions[index]]
            sent = op.customers[index].id
            if op.kind == "update" and cid is not None and str(cid) != str(sent):
                # An update names the record it changes: a reply with another id either is
                # wrong or says K/3 made a new record. Neither is reported as this customer's.
                entry.customer_id = str(sent)
                entry.decide(
                    "uncertain",
                    f"the update of FCUSTID {sent} was answered with FCUSTID "
                    f"{one_line(str(cid), 40)}: K/3 Cloud may have changed or created another "
                    "record; check it. Not sent again",
                )
                continue
            if cid is not None:
                entry.customer_id = str(cid)
            status: OutcomeStatus = "created" if op.kind == "create" else "updated"
            note = "saved on a second attempt after an uncertain reply" if op.attempt > 1 else None
            entry.decide(status, note)
        if not isinstance(result, BaseException):
            for row in outcome.failed:
                if row.msg_code in WHOLE_CALL_MSG_CODES and not row.uncertain:
                    self.ledger.whole_call_failure("BatchSave", row_message(row), 1)
        for index, state, message, taken in failed:
            if not 0 <= index < len(op.positions) or index in seen:
                continue
            seen.add(index)
            position = op.positions[index]
            entry = entries[position]
            entry.save_state, entry.save_message, entry.number_taken = state, message, taken
            entry.ever_uncertain = entry.ever_uncertain or state == "uncertain"
            if op.kind == "create":
                unsure.append(position)
            elif state == "uncertain" and op.attempt == 1:
                # Saving the same fields again is harmless: retry once.
                retry_updates.append(position)
            elif state == "uncertain":
                entry.decide(
                    "uncertain",
                    f"the update's outcome stayed unknown after a retry: {message}; the next "
                    "run updates it again",
                )
            else:
                entry.decide("failed", f"BatchSave refused the update: {message}")
        for index, position in enumerate(op.positions):
            if index not in seen:
                # The reply said nothing about this row: treat it as unknown, then check.
                entry = entries[position]
                entry.save_state, entry.save_message = (
                    "uncertain",
                    "the reply did not mention the row",
                )
                entry.ever_uncertain = True
                if op.kind == "create":
                    unsure.append(position)
                elif op.attempt == 1:
                    retry_updates.append(position)
                else:
                    entry.decide(
                        "uncertain",
                        "the update's outcome is unknown: the reply did not mention the row; "
                        "the next run updates it again",
                    )
        return unsure
