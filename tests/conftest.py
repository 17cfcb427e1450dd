"""Shared fixtures: databases (SQLite always; PostgreSQL and MariaDB when reachable)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

from store.db import make_engine
from store.migrate import upgrade
from tests.stack import sim_faults, stack, stack_dir, temporal_env  # noqa: F401  (fixtures)

PG_URL = os.environ.get("CC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIA_URL = os.environ.get("CC_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def _reset(engine: Engine) -> None:
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A freshly migrated database of each supported kind."""
    url = {
        "sqlite": f"sqlite:///{tmp_path / 'store.db'}",
        "postgresql": PG_URL,
        "mariadb": MARIA_URL,
    }[request.param]
    engine = make_engine(url)
    try:
        with engine.connect():
            pass
    except Exception as exc:  # noqa: BLE001 - any connection failure means "not here"
        engine.dispose()
        pytest.skip(f"{request.param} not reachable at {engine.url!r}: {exc.__class__.__name__}")
    _reset(engine)
    upgrade(url)
    yield engine
    _reset(engine)
    engine.dispose()
