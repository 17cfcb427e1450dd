"""SQLite's query plan for a page of Call Query, on a freshly migrated store."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from store.call_query import CallFilter, Keyset, page_statement
from store.db import make_engine
from store.migrate import upgrade


def page_plan(tmp_path: Path, flt: CallFilter, after: Keyset) -> str:
    """``EXPLAIN QUERY PLAN`` of the page of ``flt`` after ``after``, its steps joined by |."""
    url = f"sqlite:///{tmp_path / 'plan.db'}"
    upgrade(url)
    engine = make_engine(url)
    statement = page_statement(flt, after, 50)
    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        plan = " | ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    engine.dispose()
    return plan
