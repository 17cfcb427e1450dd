"""Two requests of one tenant at its quota's limit, at the same moment, on every database:
one passes, the other is refused (issue 20's left-over: on PostgreSQL and MariaDB both used
to pass, each counting before the other's row was committed). The first request's
transaction is held open after it has counted; the second must wait for it, then count its
call, and be refused. Another tenant's request meanwhile does not wait (but on SQLite, where
every writer waits for the one before)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import Engine
from sqlmodel import Session

from contracts.call import Routing
from store.db import now_ms, session_scope
from store.lines import ensure_line
from store.models import CallRecordRow
from store.placement import record_call
from store.quotas import QuotaExceeded, Quotas
from store.tenants import ensure_tenant

ONE_LIVE = Quotas(max_lines=10, max_live_calls=1, calls_per_minute=100)
ROUTING = Routing(priority=["e9"])


def seeded(engine: Engine) -> None:
    with session_scope(engine) as s:
        for tenant in ("t1", "t2"):
            ensure_tenant(s, tenant)
            for i in range(2):
                ensure_line(s, tenant, "e9", f"{tenant}-{i}", f"+86108000{i:04d}")


def call(tenant: str, cc_call_id: str) -> CallRecordRow:
    now = now_ms()
    return CallRecordRow(cc_call_id=cc_call_id, tenant=tenant, agent="", channel="",
                         caller="+8613800000001", called="+8613900000002",
                         display="platform", created=now, updated=now)  # fmt: skip


def in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test reads
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def recorded(engine: Engine, tenant: str, cc_call_id: str) -> object:
    with session_scope(engine) as s:
        return record_call(s, call(tenant, cc_call_id), ROUTING, "e9", ONE_LIVE)


def test_two_calls_at_the_limit_at_once_one_passes(db_engine: Engine) -> None:
    seeded(db_engine)
    first = Session(db_engine)
    try:
        record_call(first, call("t1", "first"), ROUTING, "e9", ONE_LIVE)  # counted, open
        if db_engine.dialect.name != "sqlite":  # (SQLite has one lock for every writer)
            other, other_outcome = in_thread(lambda: recorded(db_engine, "t2", "other"))
            other.join(timeout=30)  # another tenant never waits for t1's transaction
            assert not other.is_alive() and not isinstance(other_outcome[0], Exception)
        second, outcome = in_thread(lambda: recorded(db_engine, "t1", "second"))
        second.join(timeout=2)  # it waits for the first (without the hold, done by now)
        first.commit()
    finally:
        first.close()
    second.join(timeout=30)
    assert not second.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], QuotaExceeded), outcome
