"""The layering docs/architecture.md states is the one the code keeps.

The table's `imports` column (the folders each one may import; "nothing of ours", or "all") is read
from the document, and every import of every module (lazy ones inside functions and TYPE_CHECKING
blocks too) is read from its syntax tree: a package importing one its row does not name fails here,
and so does a package the table leaves out.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_CHECKED = frozenset({"tests", "bench"})  # they use every layer, as the table says
ROW = re.compile(r"^\| `(?P<folder>[a-z_]+)/` \|.*\| (?P<imports>[^|]+) \|$")


def packages() -> set[str]:
    """The top-level packages of the project (folders with an __init__.py at the root)."""
    return {path.parent.name for path in ROOT.glob("*/__init__.py")} - NOT_CHECKED


def documented() -> dict[str, set[str]]:
    """Each folder's row of the architecture's table: the packages it may import (itself aside)."""
    ours = packages()
    allowed: dict[str, set[str]] = {}
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        found = ROW.match(line)
        if found is None or found["folder"] in NOT_CHECKED:
            continue
        cell = found["imports"].strip()
        if cell == "all":
            allowed[found["folder"]] = set(ours)
        elif cell == "nothing of ours":
            allowed[found["folder"]] = set()
        else:
            allowed[found["folder"]] = set(re.findall(r"`([a-z_]+)`", cell)) & ours
    return allowed


def imports_of(source: str) -> set[str]:
    """The top-level names a module's source imports, wherever the import statement is."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def imported(package: str) -> dict[str, set[str]]:
    """Our other packages each module of `package` imports, by module path."""
    ours = packages()
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        others = (imports_of(path.read_text()) & ours) - {package}
        if others:
            found[str(path.relative_to(ROOT))] = others
    return found


def test_the_table_names_every_package() -> None:
    assert set(documented()) == packages()


def test_each_package_imports_only_what_its_row_allows() -> None:
    allowed = documented()
    breaches = [
        f"{module} imports {sorted(names - allowed[package])}"
        for package in sorted(packages())
        for module, names in imported(package).items()
        if names - allowed[package]
    ]
    assert breaches == []


def test_the_api_and_the_worker_meet_only_through_the_composition_root() -> None:
    """The API reaches the worker through its `Jobs` port alone; the worker never reaches back."""
    allowed = documented()
    assert "worker" not in allowed["api"]
    assert "api" not in allowed["worker"]
    assert {"api", "worker"} <= allowed["deskbridge"]


def test_the_reader_finds_imports_wherever_they_are() -> None:
    """Imports inside functions and TYPE_CHECKING blocks count as much as those at the top; relative
    imports stay inside their package."""
    source = (
        "import store.db\nfrom typing import TYPE_CHECKING\nfrom . import sibling\n"
        "if TYPE_CHECKING:\n    import api.jobs\n"
        "def later() -> None:\n    from worker.queue import Queue\n"
    )
    assert imports_of(source) == {"store", "typing", "api", "worker"}
