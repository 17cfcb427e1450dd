"""The image holds every package the code needs: a package left out (storage/ once was) only
shows when a container fails at import. The list comes from the filesystem, not from here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_SHIPPED = {"tests", "bench", "docs"}  # test and benchmark code, documentation


def top_level_packages() -> set[str]:
    """Directories at the top level with an ``__init__.py``, and any other top-level
    directory the shipped code imports (a namespace package)."""
    dirs = {
        p.name
        for p in ROOT.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in NOT_SHIPPED
    }
    packages = {name for name in dirs if (ROOT / name / "__init__.py").exists()}
    sources = [*ROOT.glob("*.py")] + [f for pkg in packages for f in (ROOT / pkg).rglob("*.py")]
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            packages |= {name.split(".")[0] for name in names} & dirs
    return packages


def copied() -> set[str]:
    """What the Dockerfile's COPY lines put into the image's work directory."""
    found: set[str] = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        match = re.match(r"\s*COPY\s+(?!--from)(.+)", line, re.IGNORECASE)
        if match is None:
            continue
        *sources, dest = match.group(1).split()
        sources = [s for s in sources if not s.startswith("--")]
        if len(sources) == 1 and dest.rstrip("/") == sources[0].rstrip("/"):
            found.add(sources[0].rstrip("/"))  # COPY pkg pkg
        elif dest in ("./", "."):
            found |= {s for s in sources if not (ROOT / s).is_dir()}  # files into ./
    return found


def test_the_list_is_derived_from_the_tree() -> None:
    packages = top_level_packages()
    assert {"core", "api", "store", "storage", "workflows", "intake"} <= packages
    assert not packages & NOT_SHIPPED


def test_every_top_level_package_is_copied() -> None:
    missing = top_level_packages() - copied()
    assert not missing, f"Dockerfile does not COPY {sorted(missing)}"


def test_the_entry_points_are_copied() -> None:
    wanted = {p.name for p in ROOT.glob("*.py")} | {"alembic.ini", "pyproject.toml"}
    assert not wanted - copied(), f"Dockerfile does not COPY {sorted(wanted - copied())}"
