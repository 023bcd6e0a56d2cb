"""Prototypes of the fixes the benchmarks propose for ``src/`` (not applied there).

They are measured next to the code they would replace, so that a proposal comes with its gain.
``patched_clients()`` installs them into both clients for the duration of a ``with``
block only; nothing outside this process, and nothing after the block, sees them.
"""

from __future__ import annotations

import contextlib
import functools
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import cattrs
import httpx
from httpcore import _synchronization as httpcore_sync

from _huke_k3_core import BaseAPIClient, WireModel
from _huke_k3_core._models import WireFieldError, wire_name
from huke_client import Trade
from huke_client._models import converter as huke_converter
from k3cloud_client import ErrorDetail, ResponseStatus, SuccessEntity
from k3cloud_client import converter as k3_converter

_PRIMITIVES = (str, int, float, bool)


def _strip_optional(type_: Any) -> Any:
    """``X | None`` -> ``X``: the structure function already skips ``None`` values, so the
    optional wrapper's per-value ``None`` test and dispatch are pure overhead."""
    args = typing.get_args(type_)
    if typing.get_origin(type_) in (typing.Union, types.UnionType) and type(None) in args:
        rest = tuple(a for a in args if a is not type(None))
        if len(rest) == 1:
            return rest[0]
    return type_


def fast_structure(
    cls: type[WireModel], converter: cattrs.Converter = huke_converter
) -> Callable[[Any, Any], WireModel]:
    """The proposed ``_huke_k3_core._models._structure_factory`` body: same behaviour (same
    errors, ``raw`` kept), with the hooks of the non-``None`` types resolved once, a ``dict``
    fast path before the ABC ``isinstance``, and a value whose exact type is the declared
    ``str``/``int``/``float``/``bool`` taken as it is (what the hook would return anyway)."""
    attrs.resolve_types(cls)
    plan = []
    for field in attrs.fields(cls):
        if field.name == "raw":
            continue
        inner = _strip_optional(field.type)
        hook = converter.get_structure_hook(inner)
        plan.append((field.name, wire_name(field), inner, hook, inner in _PRIMITIVES))
    model = cls.__name__

    def structure(data: Any, _: Any = None) -> WireModel:
        if type(data) is not dict and not isinstance(data, Mapping):
            raise WireFieldError(model, "<object>", data, "expected a JSON object")
        kwargs: dict[str, Any] = {}
        for name, key, type_, hook, primitive in plan:
            value = data.get(key)
            if value is None:
                continue
            if primitive and type(value) is type_:
                kwargs[name] = value
                continue
            try:
                kwargs[name] = hook(value, type_)
            except Exception as exc:
                raise WireFieldError(model, key, value, str(exc) or type(exc).__name__) from exc
        return cls(**kwargs, raw=data)

    return structure


@functools.lru_cache(maxsize=64)
def _joined(base: httpx.URL, path: str) -> httpx.URL:
    return base.join(path)


def _cached_url(self: BaseAPIClient[Any], path: str) -> httpx.URL:
    # httpx.URL.join re-parses both URLs (~18 us); a client calls a handful of paths.
    return _joined(self.base_url, path.lstrip("/"))


def _asyncio() -> str:
    # What httpcore's current_async_library() answers under asyncio once ``sniffio`` is
    # importable (or once encode/httpcore#1103 imports it once at module level): without
    # sniffio installed, it retries ``import sniffio`` -- a failed import, never cached, that
    # scans sys.path -- several times per request.
    return "asyncio"


@contextlib.contextmanager
def patched_clients() -> Iterator[None]:
    """``huke_client`` and ``k3cloud_client`` with the proposed fixes, for the block only."""
    models: list[tuple[cattrs.Converter, type[WireModel]]] = [
        (huke_converter, Trade),
        (k3_converter, ErrorDetail),
        (k3_converter, SuccessEntity),
        (k3_converter, ResponseStatus),
    ]
    originals = [(conv, cls, conv.get_structure_hook(cls)) for conv, cls in models]
    original_url = BaseAPIClient._url
    original_sniff = httpcore_sync.current_async_library
    for conv, cls in models:
        conv.register_structure_hook(cls, fast_structure(cls, conv))
    BaseAPIClient._url = _cached_url  # type: ignore[method-assign]
    httpcore_sync.current_async_library = _asyncio
    try:
        yield
    finally:
        for conv, cls, hook in originals:
            conv.register_structure_hook(cls, hook)
        BaseAPIClient._url = original_url  # type: ignore[method-assign]
        httpcore_sync.current_async_library = original_sniff
