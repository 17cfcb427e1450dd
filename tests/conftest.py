"""Shared fixtures: databases (SQLite always; PostgreSQL and MariaDB when reachable)."""

from __future__ import annotations

import os
import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlmodel import SQLModel

from store.db import make_engine
from store.migrate import upgrade
from tests.stack import sim_faults, stack, stack_dir, temporal_env  # noqa: F401  (fixtures)

PG_URL = os.environ.get("CC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIA_URL = os.environ.get("CC_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def _own_database(url: str) -> Iterator[str]:
    """A database of this test session's own on ``url``'s server (``cc_test_<pid>_<hex>``,
    dropped at the end), so two ``make test`` runs on one machine (a CI host's jobs, an
    engineer's run beside a loop) never drop each other's tables. A server that refuses to
    create one (no right) leaves ``url``'s own database in use; one not reachable is
    skipped by each test with the reason (``db_engine``)."""
    base = make_url(url)
    name = f"cc_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # noqa: BLE001 - not reachable, or no right to create: as given
        admin.dispose()
        shared = f"tests share {base.database!r} at {base.host}: {exc.__class__.__name__}"
        warnings.warn(shared, stacklevel=2)
        yield url
        return
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        # Whatever a test left connected is cut off, rather than the drop waiting on it.
        drop = f"DROP DATABASE IF EXISTS {name}"
        with admin.connect() as conn:
            if admin.dialect.name == "postgresql":
                conn.execute(text(f"{drop} WITH (FORCE)"))
            else:
                conn.execute(text("SET SESSION lock_wait_timeout = 30"))
                conn.execute(text(drop))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    yield from _own_database(PG_URL)


@pytest.fixture(scope="session")
def maria_url() -> Iterator[str]:
    yield from _own_database(MARIA_URL)


def _reset(engine: Engine) -> None:
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A freshly migrated database of each supported kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "maria_url")
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
