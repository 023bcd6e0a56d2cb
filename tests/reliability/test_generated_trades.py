"""Hypothesis-generated trades through FakeHuke, the real clients and FakeK3Cloud (in-process
transports, for speed): odd Unicode (astral, right-to-left, zero-width, NUL), huge strings, nulls,
numbers, missing fields, and, separately, lists, objects and booleans where text belongs.

A sync never raises for bad data: every trade ends saved or reported (skipped or failed, with a
reason), K/3 Cloud holds each customer number once, and a re-run converges. With faults chosen by
Hypothesis in both simulators as well, a fault-free re-run still ends with exactly the customers
the trades describe.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _huke_k3_core import wire_text
from huke_client.testing import Fault, envelope_error
from huke_k3_bridge import SyncReport

from .conftest import ENGINES, Engine, Stage

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Text a JSON service can send: any code point but lone surrogates.
CHAR = st.characters(codec="utf-8")
ASTRAL = st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, codec="utf-8")
SPECIAL = st.sampled_from(
    [
        "\x00",  # NUL
        "\u202e",  # right-to-left override
        "\u200f",  # right-to-left mark
        "مرحبا",  # Arabic
        "שלום",  # Hebrew
        "\u200b",  # zero-width space
        "\u200d",  # zero-width joiner
        "\ufeff",  # zero-width no-break space (BOM)
        "\u3000",  # ideographic space
        "👩\u200d👩\u200d👧",  # a ZWJ sequence
        "e\u0301",  # combining accent
        "'",
        "''",
        "\\",
        "\n",
        " ",
    ]
)
ODD_TEXT = st.one_of(
    st.text(CHAR, max_size=12),
    st.lists(st.one_of(SPECIAL, ASTRAL, CHAR), max_size=8).map("".join),
    st.builds(
        lambda unit, n: unit * n,
        st.sampled_from(["a", "字", "🌸", "\u200b", "مرحبا "]),
        st.integers(1_000, 50_000),
    ),
)
SCALAR = st.one_of(
    st.none(),
    ODD_TEXT,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
)
# A few buyers that repeat (and collide once stripped) so that the dedupe has work to do.
REPEATED = st.sampled_from(["wm1", "wm2", " wm2 ", "WM1", "wm\u200b1", "客户1", "1"])
STRUCTURED = st.one_of(
    st.booleans(),
    st.lists(SCALAR, max_size=3),
    st.dictionaries(st.text(max_size=3), SCALAR, max_size=2),
)
# Any other field, but none the bridge reads as the trade's id (the tests set those).
_KNOWN = ("tid", "tradeId", "tradeNo", "orderId", "id", "buyerCid", "buyerNick", "createTime")
OTHER_KEY = ODD_TEXT.filter(lambda k: k not in _KNOWN)


def trades_of(value: st.SearchStrategy[Any]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Lists of wire trades whose buyer fields (and an odd extra field) come from ``value``;
    a field may also be missing. ``createTime`` is an offset, ids are set by ``_load``."""
    trade = st.fixed_dictionaries(
        {"createTime": st.integers(0, 50)},
        optional={
            "buyerCid": st.one_of(value, REPEATED),
            "buyerNick": value,
            "payment": value,
            "tid": st.just(True),  # with an id (most trades) or without
        },
    )
    extra = st.dictionaries(OTHER_KEY, value, max_size=1)
    return st.lists(st.tuples(trade, extra).map(lambda te: {**te[1], **te[0]}), max_size=20)


def _load(stage: Stage, trades: list[dict[str, Any]]) -> None:
    wire = []
    for i, trade in enumerate(trades):
        fields = {k: v for k, v in trade.items() if k != "tid"}
        fields["createTime"] = stage.start + 1000 + trade["createTime"]
        if "tid" in trade:
            fields["tid"] = f"T{i}"
        wire.append(fields)
    stage.add(wire)


#: What ``str()`` of a non-finite float looks like: never a customer number.
_NON_FINITE = {"nan", "-nan", "+nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"}


def _cid_text(trade: dict[str, Any]) -> str | None:
    text = wire_text(trade.get("buyerCid"))
    return text.strip() if text is not None and text.strip() else None


def _number(trade: dict[str, Any]) -> str | None:
    text = _cid_text(trade)
    return None if text is None or text.casefold() in _NON_FINITE else text


def _skip_reason(trade: dict[str, Any]) -> str:
    if "buyerCid" not in trade:
        return "trade has no buyerCid"
    value = trade["buyerCid"]
    if value is None:
        return "buyerCid is null"
    if wire_text(value) is None:
        return f"buyerCid is {type(value).__name__} {_short(value)}, not text"
    text = _cid_text(trade)
    if text is not None:
        return (
            f"the customer number {_short(text)} is not a finite value: no customer is made of it"
        )
    return "buyerCid is blank"


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _expected_store(stream: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Customer number -> name: the latest trade of each buyer wins, the nick or else the cid."""
    # Numbers differing only in case are one customer (K/3's usual collation, the bridge's
    # default), spelled as its latest trade spells it.
    store: dict[str, tuple[str, str]] = {}
    for trade in stream:
        number = _number(trade)
        if number is not None:
            nick = wire_text(trade.get("buyerNick"))
            name = nick.strip() if nick is not None and nick.strip() else number
            store[number.casefold()] = (number, name)
    return dict(store.values())


def _assert_saved_or_reported(report: SyncReport, stage: Stage) -> None:
    """Each fetched trade once, in Huke's order (a prefix of it, if Huke failed for good); each
    outcome saved (its customer is stored) or reported with a reason; no number stored twice."""
    stream = stage.stream()
    report.check()
    assert [o.trade_id for o in report.outcomes] == [t.get("tid") for t in stream[: report.total]]
    if not report.errors:
        assert report.total == len(stream)
    stored = stage.customers()
    for outcome in report.outcomes:
        if outcome.status in ("created", "updated", "existed"):
            assert outcome.number in stored
        elif outcome.status == "merged":
            assert outcome.merged_into is not None
            merged_into = report.outcomes[outcome.merged_into].number
            # Numbers differing only in case are one customer (the bridge's default).
            assert str(merged_into).casefold() == str(outcome.number).casefold()
        else:
            assert outcome.reason


def _assert_exact(report: SyncReport, stage: Stage) -> dict[str, str]:
    """The exact outcome of every trade: the latest trade of a buyer is created, the others are
    merged into it, a trade without a usable buyerCid is skipped saying why; K/3 holds exactly
    the expected customers. Returns them (number -> name)."""
    stream = stage.stream()
    _assert_saved_or_reported(report, stage)
    assert report.ok, str(report)
    last = {str(_number(t)).casefold(): i for i, t in enumerate(stream) if _number(t) is not None}
    for i, (outcome, trade) in enumerate(zip(report.outcomes, stream, strict=True)):
        number = _number(trade)
        if number is None:
            assert (outcome.status, outcome.reason) == ("skipped", _skip_reason(trade))
        elif last[number.casefold()] == i:
            assert (outcome.status, outcome.number) == ("created", number)
        else:
            assert (outcome.status, outcome.merged_into) == ("merged", last[number.casefold()])
    expected = _expected_store(stream)
    assert {n: r["FName"] for n, r in stage.customers().items()} == expected
    return expected


def _assert_rerun_changes_nothing(stage: Stage, engine: Engine, expected: dict[str, str]) -> None:
    before = stage.k3.records("BD_Customer")
    again = stage.run(engine, page_size=7, batch_size=5)
    _assert_saved_or_reported(again, stage)
    assert again.counts["created"] == 0
    assert again.counts["existed"] == len(expected)
    assert stage.k3.records("BD_Customer") == before


@SETTINGS
@given(trades=trades_of(SCALAR))
@pytest.mark.parametrize("engine", ENGINES)
def test_odd_text_nulls_and_numbers_are_saved_or_skipped_exactly(
    engine: Engine, trades: list[dict[str, Any]]
) -> None:
    stage = Stage(transport="inprocess")
    _load(stage, trades)
    report = stage.run(engine, page_size=7, batch_size=5)
    expected = _assert_exact(report, stage)
    _assert_rerun_changes_nothing(stage, engine, expected)


@SETTINGS
@given(
    trades=trades_of(st.one_of(SCALAR, STRUCTURED)),
    # At least one trade with a list, an object or a boolean for its buyer's id or name.
    poison=st.one_of(
        st.fixed_dictionaries(
            {"createTime": st.integers(0, 50), "tid": st.just(True), "buyerCid": STRUCTURED},
            optional={"buyerNick": st.one_of(SCALAR, STRUCTURED)},
        ),
        st.fixed_dictionaries(
            {"createTime": st.integers(0, 50), "tid": st.just(True), "buyerNick": STRUCTURED},
            optional={"buyerCid": st.one_of(SCALAR, REPEATED)},
        ),
    ),
)
@pytest.mark.parametrize("engine", ENGINES)
def test_lists_objects_and_booleans_are_skipped_or_fall_back_never_fatal(
    engine: Engine, trades: list[dict[str, Any]], poison: dict[str, Any]
) -> None:
    """A buyerCid that is not text or a number is skipped ("buyerCid is list [...], not
    text"); a buyerNick that is not falls back to the buyerCid as the name."""
    stage = Stage(transport="inprocess")
    _load(stage, [*trades, poison])
    report = stage.run(engine, page_size=7, batch_size=5)
    expected = _assert_exact(report, stage)
    _assert_rerun_changes_nothing(stage, engine, expected)


# -- faults chosen by Hypothesis ------------------------------------------------------------------

HUKE_FAULTS: dict[str, Fault] = {
    "reset": Fault.reset(),
    "503": Fault.http_status(503),
    "429": Fault.http_status(429, retry_after="0"),
    "truncated": Fault.malformed_json(),
    "timeout": Fault.timeout(),
    "rate-limit": envelope_error(40100, "rate limited"),
}
K3_FAULTS = ("reset", "503", "429", "truncated", "timeout", "reply-lost", "reply-timeout", "14")
FaultPlan = list[tuple[str, str, str | None, int, int]]
FAULT_PLANS = st.lists(
    st.one_of(
        st.tuples(
            st.just("huke"),
            st.sampled_from(sorted(HUKE_FAULTS)),
            st.none(),
            st.integers(0, 4),
            st.integers(1, 3),
        ),
        st.tuples(
            st.just("k3"),
            st.sampled_from(K3_FAULTS),
            st.sampled_from(["BatchSave", "ExecuteBillQuery", None]),
            st.integers(0, 4),
            st.integers(1, 3),
        ),
    ),
    max_size=5,
)


def _inject(stage: Stage, plan: FaultPlan) -> None:
    for where, kind, path, after, times in plan:
        if where == "huke":
            stage.huke.inject(HUKE_FAULTS[kind], after=after, times=times)
        elif kind == "reply-lost":
            stage.k3.inject_reply_lost(after=after, times=times, path=path)
        elif kind == "reply-timeout":
            stage.k3.inject_reply_timeout(after=after, times=times, path=path)
        elif kind == "14":
            stage.k3.inject_rate_limit(after=after, times=times, path=path)
        else:
            fault = HUKE_FAULTS[kind]  # the same network faults
            stage.k3.inject(fault, after=after, times=times, path=path)


@SETTINGS
@given(trades=trades_of(SCALAR), plan=FAULT_PLANS)
@pytest.mark.parametrize("engine", ENGINES)
def test_odd_trades_under_faults_lose_nothing_and_duplicate_nothing(
    engine: Engine, trades: list[dict[str, Any]], plan: FaultPlan
) -> None:
    stage = Stage(transport="inprocess")
    _load(stage, trades)
    _inject(stage, plan)
    report = stage.run(engine, page_size=7, batch_size=5, huke_options={"retry_codes": [40100]})
    _assert_saved_or_reported(report, stage)
    stage.huke.faults.clear()
    stage.k3.faults.clear()
    again = stage.run(engine, page_size=7, batch_size=5)
    _assert_saved_or_reported(again, stage)
    assert again.ok, str(again)
    expected = _expected_store(stage.stream())
    stored = {n: r["FName"] for n, r in stage.customers().items()}
    assert stored == expected
    counts = collections.Counter(o.status for o in again.outcomes)
    assert counts["created"] + counts["existed"] == len(expected)
