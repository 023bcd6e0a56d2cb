"""What ``help()``, IPython and ``inspect.signature`` show for a method whose options arrive as
``**kwargs: Unpack[SomeKwargs]``: each option as its own keyword parameter, with its default.

Type checkers read the ``TypedDict``; introspection tools only see ``**kwargs``. A method keeps its
real signature for calls and gets a ``__signature__`` spelling the options out for people.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

F = TypeVar("F", bound=Callable[..., Any])


def _keys(kwargs_type: type) -> dict[str, Any]:
    """The keys of a ``TypedDict`` (its bases' first) and their annotations, as text."""
    keys: dict[str, Any] = {}
    for klass in reversed(kwargs_type.__mro__):
        for name, annotation in vars(klass).get("__annotations__", {}).items():
            keys[name] = getattr(annotation, "__forward_arg__", annotation)
    return keys


def _default(field: attrs.Attribute[Any]) -> Any:
    default: Any = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return inspect.Parameter.empty if default.takes_self else default.factory()
    return default


def spell_out_options(
    kwargs_type: type,
    options_type: type,
    *,
    renamed: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Callable[[F], F]:
    """Give the decorated function a ``__signature__`` with one keyword-only parameter per key of
    ``kwargs_type`` in place of its ``**kwargs``, defaulting to ``options_type``'s field of that
    name (``renamed`` maps a key to another field name; ``defaults`` overrides)."""
    fields = {field.name: _default(field) for field in attrs.fields(options_type)}
    renamed = dict(renamed or {})
    fields.update({key: fields[field] for key, field in renamed.items() if field in fields})
    fields.update(defaults or {})

    def decorate(func: F) -> F:
        signature = inspect.signature(func)
        kept = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        taken = {p.name for p in kept}
        spelled = [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=fields.get(name, inspect.Parameter.empty),
                annotation=annotation,
            )
            for name, annotation in _keys(kwargs_type).items()
            if name not in taken
        ]
        func.__signature__ = signature.replace(parameters=[*kept, *spelled])  # type: ignore[attr-defined]
        return func

    return decorate
