"""Building ``FilterString`` text safely.

K/3 Cloud's ``FilterString`` is SQL-like text the server puts into its query. Values must never
be pasted in as they come: ``quote`` makes any value one SQL literal (single quotes doubled), and
the helpers below only ever insert quoted values and validated field keys:

```python
from k3cloud_client import filters

filters.and_(filters.in_("FNumber", ["C001", "x' or '1'='1"]), filters.eq("FForbidStatus", "A"))
# "(FNumber in ('C001','x'' or ''1''=''1')) and (FForbidStatus = 'A')"
```
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Iterable

__all__ = ["Value", "and_", "eq", "field_key", "in_", "quote"]

#: What a filter value may be.
Value = str | int | float | _dt.date

# A field key: FNumber, FCreateOrgId.FNumber, F_abc_Text (letters, digits, underscores, dots).
_FIELD_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def quote(value: Value) -> str:
    """One SQL literal for ``value``: text in single quotes with ``'`` doubled, numbers as they
    are, dates as ``'YYYY-MM-DD'`` (datetimes ``'YYYY-MM-DD HH:MM:SS'``)."""
    if isinstance(value, bool):
        # True/False would read as the numbers 1/0 or as text depending on the field: ambiguous.
        raise TypeError("quote() does not take booleans; pass the value the field stores")
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"quote() takes finite numbers, got {value!r}")
        return repr(value)
    if isinstance(value, _dt.datetime):
        return "'" + value.strftime("%Y-%m-%d %H:%M:%S") + "'"
    if isinstance(value, _dt.date):
        return "'" + value.isoformat() + "'"
    raise TypeError(f"quote() takes text, numbers or dates, not {type(value).__name__}")


def field_key(name: str) -> str:
    """``name`` if it is a field key (``FNumber``, ``FCreateOrgId.FNumber``); ValueError otherwise."""
    if not isinstance(name, str) or not _FIELD_KEY.fullmatch(name):
        raise ValueError(f"not a field key: {name!r} (letters, digits, '_' and '.' only)")
    return name


def eq(field: str, value: Value) -> str:
    """``field = 'value'``."""
    return f"{field_key(field)} = {quote(value)}"


def in_(field: str, values: Iterable[Value]) -> str:
    """``field in ('a','b')``; at least one value (``in ()`` is not valid SQL)."""
    quoted = [quote(v) for v in values]
    if not quoted:
        raise ValueError(f"in_({field!r}, ...) needs at least one value")
    return f"{field_key(field)} in ({','.join(quoted)})"


def and_(*conditions: str) -> str:
    """The conditions joined with ``and``, each in parentheses so their own ``or`` stays inside."""
    if not conditions:
        raise ValueError("and_() needs at least one condition")
    if len(conditions) == 1:
        return conditions[0]
    return " and ".join(f"({c})" for c in conditions)
