"""Names a package serves on first use: moved ones (with a ``DeprecationWarning``) and lazy ones.

A package sets ``__getattr__ = module_getattr(__name__, moved={...}, lazy={...})``; Python calls it
only for names the module does not already have (PEP 562), so the common imports cost nothing.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def module_getattr(
    package: str,
    *,
    moved: Mapping[str, str] | None = None,
    lazy: Mapping[str, str] | None = None,
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``.

    ``moved`` maps an old name to its new home ``"module.path:attr"``: the object is returned and a
    ``DeprecationWarning`` names the new import. ``lazy`` maps a public name to where it is
    defined, imported only when first asked for (for modules too heavy to load on ``import``).
    """
    moved = dict(moved or {})
    lazy = dict(lazy or {})

    def __getattr__(name: str) -> Any:
        target = lazy.get(name)
        if target is not None:
            return _load(target)
        target = moved.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        new = target.replace(":", ".")
        # ``from package import name`` asks twice: importlib's ``_handle_fromlist`` first checks
        # that the name exists, then the import statement fetches it. Only the second is the
        # user's line, so only it warns (once per import, pointing at that line).
        if sys._getframe(1).f_code.co_name == "_handle_fromlist":
            return _load(target)
        warnings.warn(
            f"{package}.{name} moved to {new}: import it from there "
            f"(the old path goes away in a future release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return _load(target)

    return __getattr__
