"""Issue 9, the API process itself: it logs like the worker (time, level, logger, message,
numbers redacted; set up once however often create_app runs) and runs no inbox redelivery
of its own (one workflow on the worker does that)."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest

from api.app import create_app
from core.logs import configure_logging
from tests.api.conftest import unit_settings

LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<name>\S+) (?P<msg>.*)$"
)


def cc_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "cc_handler", False)]


def test_the_api_logs_info_lines_with_time_and_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    create_app(unit_settings(tmp_path, log_level="info"))
    create_app(unit_settings(tmp_path, log_level="INFO"))
    assert len(cc_handlers()) == 1  # a second create_app adds no handler
    capsys.readouterr()
    logging.getLogger("cc.api").info("call accepted called=%s", "+8613900000002")
    logging.getLogger("cc.api").debug("not at INFO")
    lines = [line for line in capsys.readouterr().err.splitlines() if "cc.api" in line]
    assert len(lines) == 1, lines
    match = LINE.match(lines[0])
    assert match is not None, lines[0]
    assert match["level"] == "INFO" and match["name"] == "cc.api"
    assert match["msg"] == "call accepted called=+86139****0002"  # redaction kept


def test_the_level_comes_from_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        create_app(unit_settings(tmp_path, log_level="WARNING"))
        capsys.readouterr()
        logging.getLogger("cc.api").info("quiet")
        logging.getLogger("cc.api").warning("loud")
        err = capsys.readouterr().err
        assert "quiet" not in err and " WARNING cc.api loud" in err
        assert len(cc_handlers()) == 1
    finally:
        configure_logging("INFO")


async def test_the_api_runs_no_inbox_redelivery(tmp_path: Path) -> None:
    app = create_app(unit_settings(tmp_path))
    before = asyncio.all_tasks()
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.05)
        started = [t.get_coro().__qualname__ for t in asyncio.all_tasks() - before]  # type: ignore[union-attr]
    assert any("_keep_connecting" in name for name in started), started
    assert not any("redeliver" in name for name in started), started
