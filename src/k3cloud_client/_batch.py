"""``batch_save`` without I/O: chunking, the body of each call, and every row's outcome.

The invariant this module keeps: every input index ends in exactly one of ``saved``/``failed``,
whatever the server answers, or does not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import attrs

from _huke_k3_core import WireModel, plural

from ._wire import check_form_id
from .errors import (
    K3CloudAPIError,
    K3CloudAuthenticationError,
    K3CloudConnectionError,
    K3CloudError,
    K3CloudHTTPError,
    K3CloudResponseError,
    LoginError,
)
from .models import (
    BatchSaveResult,
    ErrorDetail,
    FailedRow,
    Id,
    ResponseStatus,
    SavedRow,
    converter,
)

#: Rows per BatchSave call unless told otherwise (what integrators commonly send).
DEFAULT_CHUNK_SIZE = 400

#: Errors after which sending the other chunks cannot succeed (and repeating a login could lock
#: the account): the remaining rows are reported as not sent.
_FATAL = (LoginError, K3CloudAuthenticationError)


def to_wire_model(model: object, index: int) -> dict[str, Any]:
    """A model object as sent: a ``WireModel`` through the converter, a mapping as a dict."""
    if isinstance(model, WireModel):
        wire: dict[str, Any] = converter.unstructure(model)
        return wire
    if isinstance(model, Mapping):
        return dict(model)
    raise TypeError(
        f"models[{index}] is a {type(model).__name__}: pass wire models (e.g. Customer) or dicts"
    )


@attrs.frozen
class Row:
    """One input row: its index in the caller's input and its model object."""

    index: int
    model: dict[str, Any]

    @property
    def number(self) -> str | None:
        number = self.model.get("FNumber")
        return number if isinstance(number, str) else None


@attrs.frozen
class Chunk:
    """The rows of one BatchSave call, in order (``DIndex`` is a position in ``rows``)."""

    ordinal: int
    rows: tuple[Row, ...]


class BatchPlan:
    """The chunks of one ``batch_save`` and the outcomes collected so far."""

    def __init__(
        self,
        form_id: str,
        models: Iterable[object],
        *,
        chunk_size: int,
        options: Mapping[str, Any],
        logger: logging.Logger,
    ) -> None:
        check_form_id(form_id)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        rows = [Row(i, to_wire_model(m, i)) for i, m in enumerate(models)]
        self.form_id = form_id
        self.options = dict(options)
        self.chunks = [
            Chunk(n, tuple(rows[start : start + chunk_size]))
            for n, start in enumerate(range(0, len(rows), chunk_size))
        ]
        self.total = len(rows)
        #: The error that stopped the remaining chunks from being sent, if any.
        self.fatal: K3CloudError | None = None
        self._saved: list[SavedRow] = []
        self._failed: list[FailedRow] = []
        self._responses: dict[int, Any] = {}
        self._logger = logger

    def body(self, chunk: Chunk) -> dict[str, Any]:
        """The BatchSave request body for ``chunk``."""
        data = {"Model": [row.model for row in chunk.rows], **self.options}
        return {"formid": self.form_id, "data": data}

    def answered(self, chunk: Chunk, body: Any, status: ResponseStatus) -> None:
        """Record the rows' outcomes from a reply that reports them row by row."""
        self._responses[chunk.ordinal] = body
        rows = chunk.rows
        errors: dict[int, list[ErrorDetail]] = {}
        general: list[str] = []
        for error in status.errors:
            if error.d_index is not None and 0 <= error.d_index < len(rows):
                errors.setdefault(error.d_index, []).append(error)
            elif error.message:
                general.append(error.message)
        entries = _success_entries(status)
        successes = _successes_by_position(entries, rows, refused=set(errors))
        unmatched = len(entries) - len(successes)
        for position, row in enumerate(rows):
            row_errors = errors.get(position)
            success = successes.get(position)
            if row_errors:
                self._fail(
                    row,
                    field_name=row_errors[0].field_name,
                    message="; ".join(e.message for e in row_errors if e.message) or "no message",
                    msg_code=status.msg_code,
                    # Reported both saved and failed: it may well be saved.
                    uncertain=success is not None,
                )
            elif success is not None:
                self._saved.append(SavedRow(row.index, success[0], success[1] or row.number))
            elif row.number is not None and _ambiguous(position, rows, refused=set(errors)):
                self._fail(
                    row,
                    field_name=None,
                    message=(
                        f"this call holds several rows numbered {row.number!r} (one customer in "
                        "several organisations?): the reply's Number cannot tell their results "
                        "apart, so none is trusted; look them up, and send such rows in "
                        "separate calls"
                    ),
                    msg_code=status.msg_code,
                    uncertain=True,
                )
            else:
                reason = "; ".join(general) or "the reply reports neither success nor failure"
                if unmatched:
                    reason += (
                        f" ({plural(unmatched, 'success entry', 'success entries')} named a "
                        "number that matches no row by DIndex: not trusted)"
                    )
                self._fail(
                    row,
                    field_name=None,
                    message=f"no outcome for this row in the reply: {reason}",
                    msg_code=status.msg_code,
                    uncertain=True,
                )

    def call_failed(self, chunk: Chunk, exc: K3CloudError) -> None:
        """Record every row of a chunk whose call failed as a whole."""
        if isinstance(exc, _FATAL):
            self.fatal = exc
        msg_code = exc.msg_code if isinstance(exc, K3CloudAPIError) else None
        uncertain = _may_have_been_saved(exc)
        if uncertain:
            outcome = " (the rows MAY have been saved)"
        else:
            outcome = "" if exc.request_sent else " (not sent: safe to send again)"
        self._logger.warning(
            "BatchSave %s: chunk %d (%s) failed as a whole%s: %s",
            self.form_id,
            chunk.ordinal,
            plural(len(chunk.rows), "row"),
            outcome,
            exc,
        )
        for row in chunk.rows:
            self._fail(
                row, field_name=None, message=str(exc), msg_code=msg_code, uncertain=uncertain
            )

    def skipped(self, chunk: Chunk) -> None:
        """Record the rows of a chunk not sent because of an earlier fatal error."""
        assert self.fatal is not None
        msg_code = self.fatal.msg_code if isinstance(self.fatal, K3CloudAPIError) else None
        for row in chunk.rows:
            self._fail(
                row,
                field_name=None,
                message=f"not sent: an earlier call failed with {self.fatal}",
                msg_code=msg_code,
                uncertain=False,
            )

    def result(self) -> BatchSaveResult:
        """Every row's outcome, in input order."""
        saved = sorted(self._saved, key=lambda r: r.index)
        failed = sorted(self._failed, key=lambda r: r.index)
        responses = [self._responses[n] for n in sorted(self._responses)]
        self._logger.info(
            "BatchSave %s: %s in %s: %d saved, %d failed (%d uncertain)",
            self.form_id,
            plural(self.total, "row"),
            plural(len(self.chunks), "call"),
            len(saved),
            len(failed),
            sum(1 for row in failed if row.uncertain),
        )
        return BatchSaveResult(saved=saved, failed=failed, responses=responses)

    def _fail(
        self,
        row: Row,
        *,
        field_name: str | None,
        message: str,
        msg_code: int | None,
        uncertain: bool,
    ) -> None:
        self._failed.append(
            FailedRow(
                index=row.index,
                field_name=field_name,
                message=message,
                msg_code=msg_code,
                uncertain=uncertain,
                number=row.number,
            )
        )


#: What the bookkeeping needs of one ``SuccessEntitys`` entry: ``(id, number, d_index)``. A plain
#: tuple, not a model: a BatchSave reply holds one per saved row.
_Success = tuple["Id | None", "str | None", "int | None"]


def _int_or_none(value: Any) -> int | None:
    return value if type(value) is int else None


def _success_entries(status: ResponseStatus) -> list[_Success]:
    """The ``SuccessEntitys`` of a reply, read straight from the wire: a BatchSave reply has one
    per saved row, and making a full model of each costs more than the rest of the call."""
    entries = status.raw.get("SuccessEntitys")
    if not isinstance(entries, list):
        return []
    found = []
    for entry in entries:
        if type(entry) is not dict and not isinstance(entry, Mapping):
            continue
        id_ = entry.get("Id")
        number = entry.get("Number")
        found.append(
            (
                id_ if isinstance(id_, int | str) and not isinstance(id_, bool) else None,
                number if isinstance(number, str) else None,
                _int_or_none(entry.get("DIndex")),
            )
        )
    return found


def _same_number(entity_number: str | None, row_number: str | None) -> bool:
    """Whether a success entry's ``Number`` confirms the row's ``FNumber``.

    K/3 Cloud compares numbers without regard to case (its usual SQL Server collation). A row
    without a number (numbered by a coding rule) cannot be checked, and is taken on ``DIndex``.
    """
    if row_number is None:
        return True
    if entity_number is None:
        return False
    return entity_number == row_number or entity_number.casefold() == row_number.casefold()


def _successes_by_position(
    entries: list[_Success], rows: Sequence[Row], *, refused: AbstractSet[int] = frozenset()
) -> dict[int, _Success]:
    """Successes by position in the chunk, each verified by its ``Number``.

    An entry is placed at its ``DIndex`` only when its ``Number`` is that row's ``FNumber``;
    otherwise (no ``DIndex``, one counted from 1, a reversed list...) at the one row of the chunk
    with that number. An entry that fits no row is dropped, so its row has no outcome in the
    reply and is reported uncertain: a wrong id is never attached to a row.
    """
    # A reply holds one entry per saved row: this runs for every row of every BatchSave, so
    # the common case (each entry at its DIndex, numbers unique in the chunk) stays cheap.
    numbers = [row.number for row in rows]
    folded = [None if n is None else n.casefold() for n in numbers]
    seen: set[str] = set()
    dupes: set[str] = set()
    for key in folded:
        if key is not None:
            if key in seen:
                dupes.add(key)
            seen.add(key)
    size = len(rows)
    found: dict[int, _Success] = {}
    unplaced = []
    for entity in entries:
        d_index = entity[2]
        if d_index is not None and 0 <= d_index < size and d_index not in found:
            number, got = numbers[d_index], entity[1]
            if number is None or (
                got is not None and (got == number or got.casefold() == folded[d_index])
            ):
                # Two rows of one number that may both have succeeded (one customer in two
                # organisations): the number cannot confirm which of them this entry is; they
                # stay uncertain and a lookup settles them.
                if not dupes or folded[d_index] not in dupes:
                    found[d_index] = entity
                    continue
                if not _ambiguous(d_index, rows, refused=refused):
                    found[d_index] = entity
                    continue
        unplaced.append(entity)
    if unplaced:
        positions: dict[str, list[int]] = {}
        for position, key in enumerate(folded):
            if key is not None:
                positions.setdefault(key, []).append(position)
        for entity in unplaced:
            candidates = positions.get((entity[1] or "").casefold(), [])
            if len(candidates) == 1 and candidates[0] not in found:
                found[candidates[0]] = entity
    return found


def _ambiguous(position: int, rows: Sequence[Row], *, refused: AbstractSet[int]) -> bool:
    """Whether another row of the chunk has this row's number and may have succeeded too."""
    number = rows[position].number
    if number is None:
        return False
    folded = number.casefold()
    return any(
        p != position and p not in refused and (row.number or "").casefold() == folded
        for p, row in enumerate(rows)
    )


def _may_have_been_saved(exc: K3CloudError) -> bool:
    """Whether a call that failed as a whole may nevertheless have saved its rows."""
    if not exc.request_sent:  # a login failed first, or no connection was made
        return False
    if isinstance(exc, K3CloudConnectionError):  # timeouts included
        return exc.reached_server
    if isinstance(exc, K3CloudAuthenticationError):
        return False
    if isinstance(exc, K3CloudHTTPError):
        # A 5xx may come after the work was done (a gateway timing out); a 4xx refused the call.
        return exc.status_code >= 500
    # A reply that could not be read came from a server that did process the request.
    return isinstance(exc, K3CloudResponseError)
