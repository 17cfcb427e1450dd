"""README.md stands alone (issue 22): it never points outside the repository, every file and
make target it names exists, and the close_type table is the code's."""

from __future__ import annotations

import re
from pathlib import Path

from core.types import CloseType

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_readme_points_only_inside_the_repository() -> None:
    assert "../" not in README
    folders = "docs|scripts|tests|bench|api|store|channels|simulators|workflows|activities|core"
    named = set(re.findall(rf"`((?:{folders}|contracts)/[\w./-]*\w)`", README))
    assert "docs/record.md" in named
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert missing == []


def test_every_make_target_it_names_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z]+):", makefile, re.MULTILINE))
    named = set(re.findall(r"\bmake ([a-z]+)\b", README))
    assert named and named <= targets


def test_its_close_type_table_is_the_codes() -> None:
    rows = dict(re.findall(r"^\| (\d+) \| ([^|]+) \|$", README, re.MULTILINE))
    assert sorted(int(code) for code in rows) == sorted(int(c) for c in CloseType)
