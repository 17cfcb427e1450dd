"""The chaos suite: long scenarios are marked ``chaos`` and run only by ``make chaos``.

Without ``-m``, the ``chaos``-marked tests are deselected, so ``make test`` runs only the
short subset. At the end of any run that produced figures, the table is written to
``var/chaos-report.md`` and printed.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import ROOT, ROWS, write_report


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.option.markexpr:
        return  # an explicit -m decides
    chaos = [item for item in items if item.get_closest_marker("chaos") is not None]
    if chaos:
        config.hook.pytest_deselected(items=chaos)
        items[:] = [item for item in items if item.get_closest_marker("chaos") is None]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    report = write_report(ROWS)
    terminalreporter.write_sep("=", "chaos report (var/chaos-report.md)")
    for line in report.splitlines():
        terminalreporter.write_line(line)


@pytest.fixture
def chaos_dir(request: pytest.FixtureRequest) -> Path:
    """``var/chaos/<test>``: the scenario's files (databases, process logs), kept after the
    run for a post-mortem. Not under pytest's basetemp, whose old runs other pytest sessions
    on the machine prune."""
    path = ROOT / "var" / "chaos" / re.sub(r"[^\w.-]", "_", request.node.name)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
