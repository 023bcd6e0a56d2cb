"""The simulator's ``FilterString`` and ``OrderString`` reader: a real parser (never ``eval``)
of the SQL-like subset the clients send: ``=``, ``<>``/``!=``, ``in (...)``, ``and``, ``or`` and
parentheses, with SQL's comparisons (NULL equals nothing, text compared with a number as one).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ._replies import Fail

#: Deepest parenthesis nesting of a ``FilterString`` (the real server passes it to SQL Server,
#: which refuses a statement "nested too deeply"); the parser recurses five frames per level.
MAX_FILTER_DEPTH = 64

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<op><>|!=|=|\(|\)|,)|(?P<bad>\S))"
)
_Predicate = Callable[[dict[str, Any]], bool]
#: How a query reads a field of a stored row (``Form.value``: organisations as internal ids).
Getter = Callable[[dict[str, Any], str], Any]


def check_field(key: str, known: set[str]) -> None:
    if key.split(".", 1)[0] not in known:
        raise Fail(f"元数据中标识为{key}的字段不存在", code=9, field=key)


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, value)
    return (2, str(value))


def sort_by(key: str, value: Getter) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    return lambda row: _sort_key(value(row, key))


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # only trailing whitespace is left
            break
        position = match.end()
        kind = match.lastgroup
        raw = match.group(kind) if kind else ""
        if kind == "bad":
            raise Fail(f"过滤条件语法错误：无法识别 {raw!r}", code=4)
        if kind == "string":
            tokens.append(("literal", raw[1:-1].replace("''", "'")))
        elif kind == "number":
            if len(raw) > 38:  # SQL Server's widest number (decimal(38))
                raise Fail(f"过滤条件语法错误：数值 {raw[:40]}... 过长", code=4)
            tokens.append(("literal", float(raw) if "." in raw else int(raw)))
        elif kind == "name" and raw.lower() in ("and", "or", "in"):
            tokens.append((raw.lower(), raw))
        elif kind == "name":
            tokens.append(("name", raw))
        elif kind == "op":
            tokens.append((raw, raw))
    return tokens


def _sql_equal(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False  # SQL NULL equals nothing
    numbers = (int, float)
    if isinstance(left, numbers) and isinstance(right, numbers):
        return bool(left == right)
    if isinstance(left, numbers) or isinstance(right, numbers):
        try:  # SQL Server converts the text to the number's type
            return float(str(left)) == float(str(right))
        except ValueError:
            return False
    return str(left) == str(right)


class _FilterParser:
    """``expr := and ('or' and)*; and := atom ('and' atom)*;
    atom := '(' expr ')' | operand ('='|'<>'|'!=') operand | operand 'in' '(' operand, ... ')'``"""

    def __init__(self, text: str, known: set[str], value: Getter) -> None:
        self.tokens = _tokens(text)
        self.position = 0
        self.known = known
        self.value = value
        self.depth = 0

    def parse(self) -> _Predicate:
        if not self.tokens:
            return lambda row: True
        predicate = self._or()
        if self.position != len(self.tokens):
            self._fail(f"多余的 {self.tokens[self.position][1]!r}")
        return predicate

    def _peek(self) -> str | None:
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None

    def _take(self, kind: str) -> Any:
        if self._peek() != kind:
            found = self.tokens[self.position][1] if self._peek() else "结尾"
            self._fail(f"应为 {kind!r}，却是 {found!r}")
        value = self.tokens[self.position][1]
        self.position += 1
        return value

    def _fail(self, message: str) -> None:
        raise Fail(f"过滤条件语法错误：{message}", code=4)

    def _or(self) -> _Predicate:
        return self._joined("or", self._and, any)

    def _and(self) -> _Predicate:
        return self._joined("and", self._atom, all)

    def _joined(
        self, word: str, part: Callable[[], _Predicate], combine: Callable[[Any], bool]
    ) -> _Predicate:
        """``part (word part)*``, true when ``combine`` (``any``/``all``) of the parts is."""
        parts = [part()]
        while self._peek() == word:
            self.position += 1
            parts.append(part())
        return parts[0] if len(parts) == 1 else (lambda row: combine(p(row) for p in parts))

    def _operand(self) -> Callable[[dict[str, Any]], Any]:
        if self._peek() == "name":
            key = self._take("name")
            check_field(key, self.known)
            value = self.value
            return lambda row: value(row, key)
        literal = self._take("literal")
        return lambda row: literal

    def _atom(self) -> _Predicate:
        if self._peek() == "(":
            self.depth += 1
            if self.depth > MAX_FILTER_DEPTH:
                raise Fail(f"过滤条件嵌套过深：括号超过 {MAX_FILTER_DEPTH} 层", code=4)
            self.position += 1
            inner = self._or()
            self._take(")")
            self.depth -= 1
            return inner
        left = self._operand()
        op = self._peek()
        if op == "=":
            self.position += 1
            right = self._operand()
            return lambda row: _sql_equal(left(row), right(row))
        if op in ("<>", "!="):
            self.position += 1
            right = self._operand()
            return lambda row: (
                left(row) is not None
                and right(row) is not None
                and not _sql_equal(left(row), right(row))
            )
        if op == "in":
            self.position += 1
            self._take("(")
            options = [self._operand()]
            while self._peek() == ",":
                self.position += 1
                options.append(self._operand())
            self._take(")")
            return lambda row: any(_sql_equal(left(row), o(row)) for o in options)
        self._fail("只支持 =、<>、in (...)、and、or 与括号")
        raise AssertionError  # pragma: no cover - _fail raised


def parse_filter(text: str, known: set[str], value: Getter) -> _Predicate:
    return _FilterParser(text, known, value).parse()


def parse_order(text: str, known: set[str]) -> list[tuple[str, bool]]:
    order = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        words = part.split()
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise Fail(f"排序条件语法错误：{part!r}", code=4)
        check_field(words[0], known)
        order.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return order
