"""What a sample of Huke wire trades shows the doctor: each field's JSON types and fill rate,
whether the buyer fields the sync needs are there, and one trade with every value masked.

Also the small things the Huke checks share: how a check of section ``huke`` is made, and how a
decoded JSON value is named and outlined (types and keys, never values).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone, tzinfo
from typing import Any

import attrs

from _huke_k3_core import ELLIPSIS, json_type, one_line, plural, shorten, wire_text
from huke_client.pagination import TRADE_ID_KEYS

from ._doctor_report import Check, CheckStatus, check_of
from ._trade import junk_key

__all__ = [
    "CHECKS",
    "OUTLINE_KEYS",
    "WIDER_FIX",
    "FieldStats",
    "array_outline",
    "buyer_check",
    "field_stats",
    "fields_check",
    "make_check",
    "mask_key",
    "mask_keys",
    "mask_value",
    "outline",
    "sample_check",
]

#: Each check of section ``huke``, in order: its title, and whether the sync needs it to pass.
CHECKS: Mapping[str, tuple[str, bool]] = {
    "huke.auth": ("Huke authentication", True),
    "huke.shape": ("Huke reply shape", True),
    "huke.fields": ("Huke trade fields", False),
    "huke.buyer": ("Huke buyer fields", True),
    "huke.sample": ("Huke sample trade", False),
}
WIDER_FIX = "run with --hours 72 (a window with trades)"
#: How many fields the fields table shows before it counts the rest.
_FIELD_LINES = 40
#: How many keys of an object an outline names.
OUTLINE_KEYS = 30
_BUYER_FIELDS = ("buyerNick", "buyerCid")
#: How long a trade's field name may be where a check names it.
_NAME = 60
_ID_WORDS = frozenset({"id", "cid", "tid", "uid", "openid", "unionid", "userid", "customerid"})
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


#: The check ``check_id`` of section ``huke`` (its title and ``required`` from ``CHECKS``).
make_check = functools.partial(check_of, CHECKS)


# -- JSON values, named and outlined ---------------------------------------------------------

_DOTS = "•••"
#: A key shown as it is below a trade's own fields: what a field name looks like. Anything else
#: may be data used as a key (contacts keyed by phone number, buyers by name) and is masked.
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
#: Five digits in a row: a number (a phone, an id) with a letter before it, not a field name.
_DIGIT_RUN = re.compile(r"[0-9]{5}")


def _mask_text(text: str) -> str:
    return f"{text[0]}{_DOTS}({len(text)})" if text else text


def mask_key(key: object) -> str:
    """``key`` as it is when it looks like a field name (``mobile``, ``home_tel``), else masked
    like a text value (``"1•••(11)"``): a short text whatever the key was."""
    text = str(key)
    if _FIELD_NAME.fullmatch(text) and not _DIGIT_RUN.search(text):
        return text
    return _mask_text(text)


def mask_keys(keys: Iterable[object]) -> list[str]:
    """Each of ``keys`` through ``mask_key``, told apart when they mask alike."""
    return _unique(mask_key(k) for k in keys)


def _unique(names: Iterable[str]) -> list[str]:
    """``names`` with a ``#2``, ``#3`` … on repeats: two phone numbers mask alike, and the keys of
    one object must stay apart."""
    seen: set[str] = set()
    unique = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}#{n}"
        seen.add(candidate)
        unique.append(candidate)
    return unique


def array_outline(items: Sequence[Any]) -> str:
    if not items:
        return "empty array"
    kinds = Counter(json_type(v) for v in items)
    return "array of " + ", ".join(
        plural(n, kind, "entries" if kind == "array" else None) for kind, n in kinds.items()
    )


def outline(value: Any, depth: int = 1) -> str:
    """``value``'s JSON type, with its keys' types ``depth`` levels down (no values; keys that
    are no field names masked, see ``mask_key``)."""
    if isinstance(value, list | tuple):
        return array_outline(value)
    if isinstance(value, Mapping):
        if depth <= 0 or not value:
            return f"object ({plural(len(value), 'key')})"
        shown = list(value.items())[:OUTLINE_KEYS]
        names = mask_keys(k for k, _ in shown)
        inner = [
            f"{name}: {outline(v, depth - 1)}" for name, (_, v) in zip(names, shown, strict=True)
        ]
        more = len(value) - len(inner)
        return "object {" + ", ".join(inner) + (f", {more} more" if more > 0 else "") + "}"
    return json_type(value)


# -- fields and buyers ------------------------------------------------------------------------


def _filled(value: Any) -> bool:
    """Present with a value: not null, not an empty text, list or object."""
    if value is None:
        return False
    if isinstance(value, str | list | tuple | Mapping):
        return bool(value)
    return True


@attrs.frozen
class FieldStats:
    """One wire field over a sample of trades."""

    name: str
    #: Its JSON types, in the order first seen.
    types: tuple[str, ...]
    #: In how many trades the key is present.
    present: int
    #: In how many it is present and not null or empty.
    filled: int
    #: How many trades the sample holds.
    of: int

    @property
    def fill(self) -> str:
        return f"{self.filled}/{self.of}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": shorten(self.name, _NAME),
            "types": list(self.types),
            "present": self.present,
            "filled": self.filled,
            "of": self.of,
        }


def field_stats(trades: Sequence[Mapping[str, Any]]) -> list[FieldStats]:
    """Every top-level wire field seen in ``trades``, in the order first seen."""
    types: dict[str, dict[str, None]] = {}
    present: Counter[str] = Counter()
    filled: Counter[str] = Counter()
    for trade in trades:
        for key, value in trade.items():
            name = str(key)
            types.setdefault(name, {})[json_type(value)] = None
            present[name] += 1
            filled[name] += _filled(value)
    return [
        FieldStats(name, tuple(kinds), present[name], filled[name], len(trades))
        for name, kinds in types.items()
    ]


def _empty(check_id: str, window: str, what: str = "") -> Check:
    return make_check(check_id, "warn", f"no trades {window}{what}", WIDER_FIX)


def fields_check(trades: Sequence[Mapping[str, Any]], window: str) -> Check:
    """``huke.fields``: each wire field's JSON types and fill rate over the sample."""
    if not trades:
        return _empty("huke.fields", window)
    stats = field_stats(trades)
    always = sum(1 for s in stats if s.filled == s.of)
    never = sum(1 for s in stats if s.filled == 0)
    mixed = sum(1 for s in stats if len([t for t in s.types if t != "null"]) > 1)
    summary = (
        f"{plural(len(stats), 'field')} over {plural(len(trades), 'trade')}: {always} always "
        f"filled, {len(stats) - always - never} sometimes, {never} never"
        + (f"; {mixed} with mixed types" if mixed else "")
    )
    shown = stats if len(stats) <= _FIELD_LINES else stats[: _FIELD_LINES - 1]
    # No padded columns: the text report puts each line on one line, whitespace runs collapsed.
    lines = [f"{shorten(s.name, 40)}: {'|'.join(s.types)}, filled {s.fill}" for s in shown]
    if len(shown) < len(stats):
        lines.append(f"{ELLIPSIS} {plural(len(stats) - len(shown), 'more field')} (see details)")
    details = {"trades": len(trades), "fields": [s.to_dict() for s in stats], "lines": lines}
    return make_check("huke.fields", "info", summary, details=details)


def _rejected(value: Any) -> str | None:
    """Why the sync makes no customer of the buyerCid ``value`` (blank, the text of a
    non-finite number, not text), or ``None`` when it can. The sync's own rule, ``junk_key``:
    the doctor must not pass a value the sync skips."""
    text = wire_text(value)
    reason = junk_key(text if text is not None else value)
    return None if reason is None else one_line(reason, 80)


def _id_like(name: str) -> bool:
    """Whether a field's name suggests it identifies the buyer (``buyerId``, ``cid``,
    ``customer_id``, ``openId``), judged on its camelCase / snake_case words."""
    words = [w.lower() for w in _WORD.findall(name)]
    joined = "".join(words)
    return (
        "buyer" in joined
        or "cid" in joined
        or any(w in _ID_WORDS or w.endswith("cid") for w in words)
    )


def _buyerish(name: str) -> bool:
    lower = name.lower()
    return "buyer" in lower or "cid" in lower or "customer" in lower


def buyer_check(trades: Sequence[Mapping[str, Any]], window: str) -> Check:
    """``huke.buyer``: whether the trades carry a ``buyerCid`` the sync can use (the customer
    number: a trade without one is skipped) and ``buyerNick`` (the name; the cid stands in when
    it is empty)."""
    if not trades:
        return _empty("huke.buyer", window, ": cannot tell whether they carry buyerCid")
    n = len(trades)
    values = [t.get("buyerCid") for t in trades if t.get("buyerCid") is not None]
    reasons = [_rejected(v) for v in values]
    usable = reasons.count(None)
    rejected = Counter(r for r in reasons if r is not None)
    missing = n - len(values)
    cid_keys = sum(1 for t in trades if "buyerCid" in t)
    with_nick = sum(1 for t in trades if _filled(t.get("buyerNick")))
    nick_keys = sum(1 for t in trades if "buyerNick" in t)
    details: dict[str, Any] = {
        "trades": n,
        "buyerCid": {"present": cid_keys, "usable": usable, "rejected": dict(rejected)},
        "buyerNick": {"present": nick_keys, "filled": with_nick},
    }
    # junk_key quotes a value only when it is junk ('NaN'), which is nobody's personal data.
    kinds = "; ".join(f"{reason} (x{count})" for reason, count in rejected.most_common(3))
    if len(rejected) > 3:
        kinds += f"; {ELLIPSIS} {plural(len(rejected) - 3, 'more kind')}"
    nick = f"buyerNick filled in {with_nick}/{n}"
    if usable == 0:
        candidates = [
            s for s in field_stats(trades) if s.name not in _BUYER_FIELDS and _id_like(s.name)
        ]
        # The buyer's own fields first; a trade's id (one customer per trade) last, never proposed.
        candidates.sort(key=lambda s: (s.name in TRADE_ID_KEYS, not _buyerish(s.name), -s.filled))
        details["id_like_fields"] = [s.to_dict() for s in candidates[:_FIELD_LINES]]
        named = ", ".join(f"{shorten(s.name, _NAME)} {s.fill}" for s in candidates[:8]) or "none"
        if rejected:
            has = "a usable buyerCid"
            found = f"present in {cid_keys}/{n}, every value one the sync rejects: {kinds}"
        else:
            has = "a buyerCid"
            found = "absent" if cid_keys == 0 else f"present in {cid_keys}/{n} but never filled"
        summary = (
            f"no trade of {n} has {has} (the key is {found}); {nick}; fields that look "
            f"like ids: {named}"
        )
        # A name that is no field name would not fit in a template, nor in one line.
        field = next(
            (
                s.name
                for s in candidates
                if s.filled and s.name not in TRADE_ID_KEYS and mask_key(s.name) == s.name
            ),
            None,
        )
        number = f"{{{{{field}}}}}" if field else "{{theIdField}}"
        fix = (
            "the sync would skip every trade: if another field holds the buyer's id, map it, "
            f"e.g. CustomerTransform().with_fields(FNumber={number!r})"
        )
        status: CheckStatus = "fail"
    elif usable < n:
        found_parts = []
        if missing:
            found_parts.append(f"{missing} of {n} trades have no buyerCid")
        if rejected:
            found_parts.append(
                f"{n - usable - missing} of {n} have a buyerCid the sync rejects ({kinds})"
            )
        summary = (
            f"{'; '.join(found_parts)}: the sync will skip them; {usable}/{n} have a usable "
            f"one; {nick}"
        )
        fix = "nothing to set if those trades have no customer in Huke; look them up if they should"
        status = "warn"
    else:
        summary = f"every trade has a buyerCid ({usable}/{n}); {nick}"
        fix = None
        status = "pass"
    return make_check("huke.buyer", status, summary, fix, details)


# -- one trade, masked ------------------------------------------------------------------------

#: Keys whose epoch-millisecond values are times: shown as their hour, which is no personal data.
_TIME_KEY = re.compile(r"(?:time|Time|TIME|_at|At)$")
#: Epoch milliseconds from 2001 to 2100: what a time field of a trade plausibly holds.
_EPOCH_MS = range(978_307_200_000, 4_102_444_800_000)
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}")
_DIGIT = re.compile(r"\d")
#: Caps of a masked value: keys of an object, entries of an array, levels of nesting.
_MAX_KEYS = 40
_MAX_ENTRIES = 3
_MAX_DEPTH = 4


def _nines(value: int | float) -> int | float | str:
    if isinstance(value, int):
        return int(_DIGIT.sub("9", str(value)))
    if not math.isfinite(value):
        return str(value)  # NaN and infinities are no JSON: their text says what they were
    nines = float(_DIGIT.sub("9", repr(value)))
    # 1e+300 would become 9e+999, an infinity.
    return nines if math.isfinite(nines) else 9.9e300


def _hour(ms: int, tz: tzinfo | None) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz or timezone.utc)
    return moment.replace(minute=0, second=0, microsecond=0).isoformat()


def mask_value(value: Any, key: str | None = None, tz: tzinfo | None = None, depth: int = 0) -> Any:
    """``value`` with nothing personal left: the keys and JSON types stay; a text becomes its
    first character, ``•••`` and its length (``"张•••(4)"``); a number has every digit replaced
    by 9; booleans and nulls stay. Under a time key (``createTime``, ``pay_time``,
    ``updatedAt``) an epoch-ms value or a date text shows its hour (in ``tz``, default UTC).
    Objects and arrays are masked in turn, cut to a few keys, entries and levels. The keys of
    the outermost object (a trade's field names) stay, cut to 60 characters; the keys below it
    are masked unless they look like field names (``mask_key``)."""
    timed = key is not None and _TIME_KEY.search(key) is not None
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if timed and isinstance(value, int) and value in _EPOCH_MS:
            return _hour(value, tz)
        return _nines(value)
    if isinstance(value, str):
        if timed and value.isascii() and value.isdigit() and int(value) in _EPOCH_MS:
            return _hour(int(value), tz)
        if timed and _DATE_TEXT.match(value):
            return value[:13] + ELLIPSIS
        return _mask_text(value)
    if depth >= _MAX_DEPTH:
        return f"{outline(value, 0)} {ELLIPSIS}"
    if isinstance(value, Mapping):
        shown = list(value.items())[:_MAX_KEYS]
        names = _unique(shorten(str(k), _NAME) if depth == 0 else mask_key(k) for k, _ in shown)
        masked = {
            name: mask_value(v, str(k), tz, depth + 1)
            for name, (k, v) in zip(names, shown, strict=True)
        }
        if len(value) > _MAX_KEYS:
            masked[ELLIPSIS] = plural(len(value) - _MAX_KEYS, "more key")
        return masked
    if isinstance(value, list | tuple):
        entries = [mask_value(v, key, tz, depth + 1) for v in value[:_MAX_ENTRIES]]
        if len(value) > _MAX_ENTRIES:
            entries.append(f"{ELLIPSIS} {len(value) - _MAX_ENTRIES} more")
        return entries
    return f"{type(value).__name__}{_DOTS}"


def _json_lines(trade: Mapping[str, Any], width: int = 150, most: int = 8) -> list[str]:
    """``trade`` as compact JSON over a few lines of about ``width`` characters."""
    pieces = [
        shorten(f"{json.dumps(k, ensure_ascii=False)}:{_compact(v)}", width)
        for k, v in trade.items()
    ]
    lines: list[str] = []
    for piece in pieces:
        if lines and len(lines[-1]) + 1 + len(piece) <= width:
            lines[-1] += "," + piece
        else:
            lines.append(piece)
    if len(lines) > most:
        hidden = len(lines) - (most - 1)
        lines = [*lines[: most - 1], f"{ELLIPSIS} {plural(hidden, 'more line')} (see details)"]
    return lines


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sample_check(trades: Sequence[Mapping[str, Any]], window: str, tz: tzinfo | None) -> Check:
    """``huke.sample``: the sample's most complete trade, every value masked."""
    if not trades:
        return _empty("huke.sample", window)
    index, trade = max(enumerate(trades), key=lambda pair: (_fill_count(pair[1]), -pair[0]))
    masked = mask_value(trade, tz=tz)
    summary = (
        f"trade #{index + 1} of {len(trades)} (the most complete), {len(trade)} fields, values "
        "masked: text as first character and length, digits as 9, times to the hour"
    )
    details = {"index": index, "trade": masked, "lines": _json_lines(masked)}
    return make_check("huke.sample", "info", summary, details=details)


def _fill_count(trade: Mapping[str, Any]) -> int:
    return sum(1 for v in trade.values() if _filled(v))
