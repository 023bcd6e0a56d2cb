"""Small stand-ins for engine edge cases the simulators cannot produce on demand."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import attrs

from k3cloud_client import BatchSaveResult, Customer, FailedRow, SavedRow

_QUOTED = re.compile(r"'((?:[^']|'')*)'")
_NUMBERS = re.compile(r"FNumber in \(((?:'(?:[^']|'')*'(?:,\s*)?)*)\)")


def numbers_in(filter_string: str) -> list[str]:
    """The numbers of ``FNumber in (...)`` (the organisation clause beside it is not one)."""
    match = _NUMBERS.search(filter_string)
    text = match.group(1) if match else filter_string
    return [m.replace("''", "'") for m in _QUOTED.findall(text)]


@attrs.define
class Page:
    trades: list[Any]
    total: int | None = None


class StubHuke:
    """``iter_trade_pages`` over a list of trades of any shape (plain dicts included)."""

    def __init__(
        self, trades: Sequence[Any], *, page_size: int = 100, fail_after: int | None = None
    ) -> None:
        self.trades = list(trades)
        self.page_size = page_size
        self.fail_after = fail_after
        self.calls: list[tuple[int, int]] = []

    def iter_trade_pages(self, *, start: int, end: int, **_: Any) -> Iterator[Page]:
        self.calls.append((start, end))
        for i in range(0, len(self.trades), self.page_size):
            if self.fail_after is not None and i >= self.fail_after:
                raise ConnectionError("huke went away")
            yield Page(self.trades[i : i + self.page_size])


class StubK3:
    """An in-memory K/3 with programmable save behaviour (``on_save`` may replace the reply)."""

    def __init__(self, existing: Iterable[str] = ()) -> None:
        self.store: dict[str, dict[str, Any]] = {}
        self.next_id = 1000
        for number in existing:
            self._insert({"FNumber": number, "FName": number})
        self.saves: list[dict[str, Any]] = []
        self.queries: list[list[str]] = []
        self.on_save: Callable[[list[dict[str, Any]], BatchSaveResult], BatchSaveResult] | None = (
            None
        )
        self.query_error: Callable[[list[str]], Exception | None] | None = None

    def _insert(self, model: dict[str, Any]) -> int:
        self.next_id += 1
        self.store[model["FNumber"]] = {**model, "FCUSTID": self.next_id}
        return self.next_id

    def iter_bill_query(
        self, form_id: str, field_keys: str, *, filter_string: str, **options: Any
    ) -> Iterator[list[Any]]:
        # One page holds every row here: the lookups ask for at most a few hundred numbers.
        yield from self.execute_bill_query(form_id, field_keys, filter_string=filter_string)

    def execute_bill_query(
        self, form_id: str, field_keys: str, *, filter_string: str, **options: Any
    ) -> list[list[Any]]:
        numbers = numbers_in(filter_string)
        self.queries.append(numbers)
        if self.query_error is not None:
            error = self.query_error(numbers)
            if error is not None:
                raise error
        # SQL Server compares without regard to case, as K/3 Cloud's database does.
        wanted = {n.casefold() for n in numbers}
        return [
            [m["FCUSTID"], k, m.get("FUseOrgId", {}).get("FNumber", "100")]
            for k, m in self.store.items()
            if k.casefold() in wanted
        ]

    def batch_save(self, form_id: str, models: list[Customer], **options: Any) -> BatchSaveResult:
        wire = [m.to_wire() for m in models]
        self.saves.append({"models": wire, **options})
        saved, failed = [], []
        for i, model in enumerate(wire):
            number = model["FNumber"]
            if "FCUSTID" in model:
                self.store[number].update(model)
                saved.append(SavedRow(i, model["FCUSTID"], number))
            elif number in self.store:
                failed.append(
                    FailedRow(
                        i, "FNumber", f"[{number}]在当前系统中已经被使用。", 11, number=number
                    )
                )
            else:
                saved.append(SavedRow(i, self._insert(model), number))
        result = BatchSaveResult(saved=saved, failed=failed)
        if self.on_save is not None:
            result = self.on_save(wire, result)
        return result
