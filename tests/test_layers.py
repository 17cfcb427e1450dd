"""The import graph keeps the layers README's "Layout" gives: a module imports only from its
own layer or those below; workflows never import activities; nothing but the API's own
modules and the scripts that serve it import ``api`` (the worker least of all)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = {
    "core": 1,
    "channels": 2,
    "storage": 2,
    "callflow": 3,
    "contracts": 4,
    "store": 5,
    "intake": 6,
    "workflows": 7,
    "activities": 7,
    "api": 8,
    "worker": 9,
    "scripts": 9,
}


def imports_of(path: Path) -> set[str]:
    """The top-level CC packages ``path`` imports (at any depth of the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
    return found & LAYER.keys()


def modules() -> list[tuple[str, Path]]:
    found = [("worker", ROOT / "worker.py")]
    for package in LAYER.keys() - {"worker"}:
        found += [(package, path) for path in sorted((ROOT / package).rglob("*.py"))]
    return found


def test_no_import_climbs_a_layer() -> None:
    climbs = [
        f"{path.relative_to(ROOT)} ({package}, layer {LAYER[package]}) imports {used} "
        f"(layer {LAYER[used]})"
        for package, path in modules()
        for used in imports_of(path)
        if LAYER[used] > LAYER[package]
    ]
    assert climbs == []


def test_workflows_never_import_activities_and_only_the_api_side_imports_api() -> None:
    for package, path in modules():
        used = imports_of(path)
        if package == "workflows":
            assert "activities" not in used, path
        if package not in ("api", "scripts"):
            assert "api" not in used, path
