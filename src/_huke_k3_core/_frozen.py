"""``FrozenDict``: a read-only mapping for the fields of frozen options objects.

``types.MappingProxyType`` is read-only too, but neither pickles nor deep-copies, and options
objects travel (a task queue pickles them; ``attrs.evolve`` and ``copy.deepcopy`` copy them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class FrozenDict(Mapping[str, Any]):
    """A mapping that cannot be changed after it is made; equal to any mapping with the same
    items, shown as a dict."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data = dict(data or {})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(self._data)

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        return FrozenDict, (self._data,)
