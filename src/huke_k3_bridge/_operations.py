"""What the ledger asks of the engine: K/3 Cloud calls to make and pauses to take. No I/O.

The ledger (``_ledger``) decides and the engine (``_engine``) does the I/O; these are the words
between them. A plan (:data:`Plan`) yields batches of operations and receives their results in
order: a :data:`Found` for an :class:`ExistenceQuery`, a ``BatchSaveResult`` for a
:class:`SaveBatch`, ``None`` for a :class:`Pause`, or the exception a call ended with.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence
from typing import Any, Literal, TypeAlias

import attrs

from _huke_k3_core import Id
from k3cloud_client import Customer

#: Customer numbers per existence query, and a cap on the quoted text of one filter.
EXISTENCE_CHUNK = 200
EXISTENCE_CHARS = 20_000


@attrs.frozen
class ExistenceQuery:
    """Which of ``numbers`` exist in use organisation ``org`` (ExecuteBillQuery
    ``FCUSTID,FNumber``, every page)."""

    numbers: tuple[str, ...]
    org: str = ""
    depth: int = 0
    #: The split this query is one half of (halves share it), None for a first query.
    split: int | None = None


@attrs.frozen
class Pause:
    """Pause this long (seconds) before the next operations: the ledger does no I/O, not even
    sleeping, so the engine waits for it."""

    seconds: float


@attrs.frozen
class SaveBatch:
    """One BatchSave call: ``positions`` are the winning trades whose customers are saved."""

    kind: Literal["create", "update"]
    positions: tuple[int, ...]
    customers: tuple[Customer, ...]
    attempt: int = 1


Operation: TypeAlias = ExistenceQuery | SaveBatch | Pause
#: A ledger's plan: yields batches of operations, receives their results in the same order.
Plan: TypeAlias = Generator[list[Operation], list[Any], None]
#: What an existence query found: number -> every ``FCUSTID`` with that number (one, when all
#: is well).
Found: TypeAlias = dict[str, list[Id]]


def operation_size(op: Operation) -> int:
    """How many customers (numbers or rows) an operation concerns: its share of the progress."""
    if isinstance(op, Pause):
        return 0
    return len(op.numbers) if isinstance(op, ExistenceQuery) else len(op.positions)


def existence_queries(spelled: Iterable[tuple[str, str]]) -> list[ExistenceQuery]:
    """Queries for ``(organisation, number)`` pairs: per organisation, in chunks of safely
    quoted numbers."""
    by_org: dict[str, list[str]] = {}
    for org, number in spelled:
        by_org.setdefault(org, []).append(number)
    return [
        ExistenceQuery(chunk, org)
        for org, numbers in by_org.items()
        for chunk in _chunks(numbers, EXISTENCE_CHUNK, EXISTENCE_CHARS)
    ]


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
