"""Engine and session helpers for SQLite (default), PostgreSQL and MariaDB/MySQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

from core.secrets import create_private, private_dir

T = TypeVar("T")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _private_database(path: Path) -> None:
    """The SQLite file (customer numbers, sealed secrets) created 0600, in a directory created
    0700, before SQLite opens it: SQLite then gives its -wal and -shm files the database
    file's own mode, so none of them is ever readable by others. An existing file is kept."""
    if str(path).startswith("file:"):
        return  # a URI filename (``?mode=memory``, ...): SQLite's to interpret
    private_dir(path.parent)
    create_private(path)


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_database(Path(parsed.database))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets the API read while the worker writes; busy_timeout rides out contention.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise


async def in_session(engine: Engine, fn: Callable[[Session], T]) -> T:
    """Run ``fn`` in a committed session (``session_scope``), off the event loop: how async
    code (the API, activities) reaches the store."""

    def run() -> T:
        with session_scope(engine) as session:
            return fn(session)

    return await asyncio.to_thread(run)
