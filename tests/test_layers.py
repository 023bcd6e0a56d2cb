"""The layering of docs/architecture.md, checked on the sources: an arrow may only point down.

- ``_huke_k3_core`` imports neither client nor the bridge;
- ``huke_client`` and ``k3cloud_client`` never import each other or the bridge;
- the bridge imports the clients' public modules only (no ``_private`` module);
- runtime code never imports a ``testing`` module (the demo, which runs on the simulators, aside).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGES = ("_huke_k3_core", "huke_client", "k3cloud_client", "huke_k3_bridge")
#: Which packages each package may import (besides itself).
ALLOWED = {
    "_huke_k3_core": set(),
    "huke_client": {"_huke_k3_core"},
    "k3cloud_client": {"_huke_k3_core"},
    "huke_k3_bridge": {"_huke_k3_core", "huke_client", "k3cloud_client"},
}


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Absolute module names ``path`` imports (relative imports resolved), with line numbers."""
    package = ".".join(path.relative_to(SRC).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _sources(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


def _is_testing(path: Path) -> bool:
    return "testing" in path.relative_to(SRC).parts or path.stem == "testing"


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    wrong = []
    for path in _sources(package):
        for line, name in _imports(path):
            top = name.partition(".")[0]
            if top in PACKAGES and top != package and top not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(SRC)}:{line} imports {name}")
    assert not wrong


def test_the_bridge_uses_only_the_clients_public_modules() -> None:
    wrong = []
    for path in _sources("huke_k3_bridge"):
        for line, name in _imports(path):
            parts = name.split(".")
            private = len(parts) > 1 and parts[1].startswith("_") and not parts[1].startswith("__")
            if parts[0] in ("huke_client", "k3cloud_client") and private:
                wrong.append(f"{path.relative_to(SRC)}:{line} imports {name}")
    assert not wrong


def test_runtime_code_never_imports_a_simulator() -> None:
    wrong = []
    for package in PACKAGES:
        for path in _sources(package):
            if _is_testing(path) or path.name == "_demo.py":
                continue
            for line, name in _imports(path):
                if ".testing" in f".{name}" and "testing" in name.split("."):
                    wrong.append(f"{path.relative_to(SRC)}:{line} imports {name}")
    assert not wrong
