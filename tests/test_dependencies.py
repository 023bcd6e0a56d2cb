"""The dependency ranges are honest: what the code imports is declared, and every declared floor is
the version constraints/lowest.txt pins (which .ci/run installs to run the suite against)."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ImportError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
OWN = {"_huke_k3_core", "huke_client", "k3cloud_client", "huke_k3_bridge"}
# Pinned in the constraints file because pytest runs with them (ruff and mypy do not run there).
TEST_TOOLS = {"pytest", "pytest-asyncio", "hypothesis"}


def _project() -> dict[str, object]:
    with open(ROOT / "pyproject.toml", "rb") as file:
        project: dict[str, object] = tomllib.load(file)["project"]
    return project


def _requirements(lines: object) -> dict[str, Requirement]:
    assert isinstance(lines, list)
    found = (Requirement(line) for line in lines)
    return {canonicalize_name(r.name): r for r in found if r.marker is None or r.marker.evaluate()}


def _floor(requirement: Requirement) -> Version | None:
    floors = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==")]
    return max(floors) if floors else None


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints" / "lowest.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints/lowest.txt: {line!r} is not name==version"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def _imported_modules() -> set[str]:
    """Top-level modules that the installed packages' code imports, standard library aside."""
    found = set()
    for path in (ROOT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    # tomllib is the standard library's from 3.11; before, the code imports tomli instead.
    return found - set(sys.stdlib_module_names) - OWN - {"tomllib"}


def test_every_imported_package_is_declared() -> None:
    project = _project()
    extras = project["optional-dependencies"]
    assert isinstance(extras, dict)
    # Every declared name counts, whatever its environment marker: tomli is declared for Python
    # < 3.11 only, and the code imports it only there.
    declared = {
        canonicalize_name(Requirement(line).name)
        for line in [*project["dependencies"], *extras["progress"], *extras["celery"]]
    }
    owners = packages_distributions()
    undeclared = {
        module: owners.get(module)
        for module in _imported_modules()
        if not any(canonicalize_name(d) in declared for d in owners.get(module, [module]))
    }
    assert not undeclared, f"imported by src/ but not declared in pyproject.toml: {undeclared}"


def test_every_runtime_floor_is_pinned_in_the_lowest_constraints() -> None:
    pins = _pins()
    runtime = _requirements(_project()["dependencies"])
    for name, requirement in runtime.items():
        floor = _floor(requirement)
        assert floor is not None, f"{requirement}: a runtime dependency needs a lower bound"
        assert pins.get(name) == floor, (
            f"{requirement}: constraints/lowest.txt pins {pins.get(name)}, not the floor {floor}"
        )


def test_the_test_tools_pytest_runs_with_are_pinned_at_their_floors() -> None:
    extras = _project()["optional-dependencies"]
    assert isinstance(extras, dict)
    test = _requirements(extras["test"])
    pins = _pins()
    for name in TEST_TOOLS:
        assert pins.get(name) == _floor(test[name]), f"{test[name]}: pinned {pins.get(name)}"


def test_every_pin_satisfies_the_declared_ranges() -> None:
    project = _project()
    extras = project["optional-dependencies"]
    assert isinstance(extras, dict)
    declared = _requirements(project["dependencies"]) | _requirements(extras["test"])
    for name, version in _pins().items():
        if name in declared:
            assert declared[name].specifier.contains(version), (
                f"{name}=={version} vs {declared[name]}"
            )
