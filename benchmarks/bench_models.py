"""5. Models: structuring 100-trade pages with our cattrs converter (the path ``HukeClient`` takes:
``structure_lenient(converter, item, Trade)`` per trade) vs an equivalent pydantic v2 model.
Report the ratio honestly."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from _harness import Table
from _huke_k3_core import structure_lenient
from _profiling import top_functions
from _prototypes import fast_structure, patched_clients
from _serve import EPOCH_2024_MS
from huke_client import Trade
from huke_client._models import converter
from huke_client.testing import generate_trades

PAGE = 100


class PydanticTrade(BaseModel):
    """``Trade``'s pydantic twin: the same two declared fields under their camelCase wire names,
    every other wire field kept (``extra="allow"``), numbers accepted as text like ours."""

    model_config = ConfigDict(
        extra="allow", frozen=True, populate_by_name=True, coerce_numbers_to_str=True
    )

    buyer_nick: str | None = Field(default=None, alias="buyerNick")
    buyer_cid: str | None = Field(default=None, alias="buyerCid")


_PAGE_ADAPTER = TypeAdapter(list[PydanticTrade])


def structure_page(items: Sequence[Any]) -> list[Trade]:
    """What ``HukeClient`` does with a page's items (``_HukeCore._trade_page``), minus the
    warning it logs for a field it cannot read (these pages have none)."""
    trades = []
    for item in items:
        if not isinstance(item, Mapping):
            raise TypeError(f"not a JSON object: {item!r}")
        trade, _problems = structure_lenient(converter, item, Trade)
        trades.append(trade)
    return trades


def _pages(count: int) -> list[list[dict[str, Any]]]:
    trades = list(
        generate_trades(
            count * PAGE,
            start=EPOCH_2024_MS,
            end=EPOCH_2024_MS + 86_400_000,
            seed=5,
            missing_cid_every=10,  # some trades lack buyerCid: the None path is exercised too
        )
    )
    return [trades[i : i + PAGE] for i in range(0, len(trades), PAGE)]


def _check_equivalent(pages: Sequence[Sequence[dict[str, Any]]]) -> None:
    """The contenders must agree on every trade, or the race is not between equals."""
    fast = fast_structure(Trade)
    for page in pages:
        for wire in page:
            (ours,) = structure_page([wire])
            theirs = PydanticTrade.model_validate(wire)
            if (ours.buyer_nick, ours.buyer_cid) != (theirs.buyer_nick, theirs.buyer_cid):
                raise AssertionError(f"cattrs and pydantic disagree on {wire}")
            if set(theirs.model_extra or {}) != set(wire) - {"buyerNick", "buyerCid"}:
                raise AssertionError(f"pydantic lost extra fields of {wire}")
            if dict(ours.raw) != wire or fast(wire, Trade) != ours:
                raise AssertionError(f"the prototype structures {wire} differently")


def _per_page(
    fn: Callable[[list[dict[str, Any]]], object], pages: list[list[dict[str, Any]]], repeat: int
) -> float:
    """Best time over ``repeat`` passes of structuring every page, per page, in microseconds."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        for page in pages:
            fn(page)
        best = min(best, time.perf_counter() - started)
    return 1e6 * best / len(pages)


def run(quick: bool) -> list[Table]:
    pages = _pages(20 if quick else 200)
    repeat = 3 if quick else 7
    _check_equivalent(pages)
    contenders: dict[str, Callable[[list[dict[str, Any]]], object]] = {
        "pydantic v2: `PydanticTrade.model_validate` per trade (baseline)": lambda page: [
            PydanticTrade.model_validate(t) for t in page
        ],
        "pydantic v2: `TypeAdapter(list[PydanticTrade])` per page": _PAGE_ADAPTER.validate_python,
        "ours: `structure_lenient(converter, item, Trade)` per trade (HukeClient's path)": (
            structure_page
        ),
    }
    fixed_name = "ours, same path, with the proposed `_structure_factory` fix (prototype)"
    table = Table(
        f"5. Models: structuring {len(pages)} pages of {PAGE} trades",
        ["structuring", "per page (us)", "per trade (us)", "ratio vs baseline"],
    )
    times = {name: _per_page(fn, pages, repeat) for name, fn in contenders.items()}
    with patched_clients():  # the prototype hook, reached through the same client path
        times[fixed_name] = _per_page(structure_page, pages, repeat)
    fast = fast_structure(Trade)
    direct_name = "the prototype hook alone, called directly (the floor of this design)"
    times[direct_name] = _per_page(lambda page: [fast(t, Trade) for t in page], pages, repeat)
    baseline = next(iter(times.values()))
    for name, micros in times.items():
        table.row(name, f"{micros:.1f}", f"{micros / PAGE:.2f}", micros / baseline)
    names = list(times)
    ours, fixed, adapter = times[names[2]], times[names[3]], times[names[1]]
    verdict = "MET" if ours <= baseline else "MISSED"
    table.note(
        f"Target: ours no slower than the equivalent pydantic v2 model validated per trade. "
        f"{verdict}: ratio {ours / baseline:.2f} (vs pydantic's list adapter "
        f"{ours / adapter:.2f}). With the proposed fix: {fixed / baseline:.2f} "
        f"({fixed / adapter:.2f} vs the list adapter)."
    )
    table.note(
        "Equivalence checked on every trade: same `buyer_nick`/`buyer_cid` (numbers accepted as "
        "text: pydantic `coerce_numbers_to_str=True`), all other wire fields kept (ours in `raw`, "
        "without copying; pydantic in `model_extra`, copied), frozen models. Every 10th trade "
        "lacks `buyerCid`. Best of "
        f"{repeat} passes; same process, same data."
    )
    sample = pages[: max(1, len(pages) // 4)]
    profile = top_functions(lambda: [structure_page(page) for page in sample])
    table.note(
        "Profile of ours (cProfile, top functions by self time): " + "; ".join(profile) + "."
    )
    table.note(
        "Reading: the structure closure of `_huke_k3_core/_models.py::_structure_factory` calls, "
        "for each `str | None` field, the hook cattrs resolved for the *optional* type, "
        "`_structure_optional`, which tests `None` again (the closure already skipped it) and "
        "dispatches to the `str` hook on every value; `converter.structure` dispatches per trade; "
        "`isinstance(data, Mapping)` is an ABC check."
    )
    table.note(
        "Proposed fix in `_structure_factory` (prototype `benchmarks/_prototypes.py::"
        "fast_structure`, same behaviour and errors): build the plan with the hook of the "
        "non-None member (`X | None` -> hook of `X`); take a value whose exact type is the "
        "declared `str`/`int`/`float`/`bool` as it is (what the hook returns anyway); test `type(data) is dict` before `isinstance(data, Mapping)`. "
        "The rest of the client's path costs "
        f"{times[fixed_name] - times[direct_name]:.0f} us per page on top of the hook (the "
        "last two rows): `_trade_page`'s ABC `isinstance(item, Mapping)`, then "
        "`structure_lenient`, whose `try` calls `converter.structure` (a cattrs dispatch per "
        "trade). Proposed: in `huke_client/_client.py::_trade_page` resolve "
        "`converter.get_structure_hook(Trade)` once per page and call it directly, falling back "
        "to `structure_lenient` only for an item it rejects, and test `type(item) is dict` "
        "first."
    )
    return [table]
