"""Seed call records straight into the store (bulk, one transaction) for query tests."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, insert
from sqlmodel import Session, col, select

from store import figures
from store.call_query import CallFilter
from store.db import make_engine, session_scope
from store.models import CallRecordRow, VendorEvent
from store.tenants import add_api_key, ensure_tenant

_seq = iter(range(10**9))


def call_row(tenant: str, created: int, **fields: Any) -> dict[str, Any]:
    """One call_record row as a dict; ``fields`` override the defaults."""
    row: dict[str, Any] = {
        "tenant": tenant, "agent": "hw-1", "caller": "+8613800000001",
        "called": "+8613900000002", "channel": "hw", "state": "close", "close_type": "0",
        "user": "u1", "duration": 3, "created": created, "updated": created,
        "cc_call_id": f"seed{next(_seq):012d}", "display": "platform", "max_duration": 60,
        "record_audio": False, "attempts": "[]",
    }  # fmt: skip
    row.update(fields)
    return row


def bulk_insert(engine: Engine, rows: list[dict[str, Any]], shuffle_seed: int = 7) -> None:
    """Insert in shuffled order, so ids do not follow ``created`` (the tie-break must hold)."""
    rows = list(rows)
    random.Random(shuffle_seed).shuffle(rows)
    with Session(engine) as session:
        session.execute(insert(CallRecordRow), rows)
        for tenant in sorted({row["tenant"] for row in rows}):  # as if they had closed here
            figures.rebuild(session, tenant)
        session.commit()


def count_matching(engine: Engine, flt: CallFilter) -> int:
    """A direct count of what ``flt`` selects, written without the query code under test."""
    conds: list[ColumnElement[bool]] = [col(CallRecordRow.tenant) == flt.tenant]
    for name in ("state", "channel", "agent", "user", "caller", "called", "close_type"):
        if (value := getattr(flt, name)) is not None:
            conds.append(getattr(CallRecordRow, name) == value)
    if flt.since is not None:
        conds.append(col(CallRecordRow.created) >= flt.since)
    if flt.until is not None:
        conds.append(col(CallRecordRow.created) < flt.until)
    with Session(engine) as session:
        return int(session.exec(select(func.count()).where(*conds)).one())


def add_tenant_key(database_url: str, tenant: str, raw_key: str, scope: str = "full") -> None:
    """A tenant (created if new) and an API key of ``scope`` for it, in the stack's store."""
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        ensure_tenant(session, tenant)
        add_api_key(session, tenant, raw_key, scope)
    engine.dispose()


def add_event(engine: Engine, cc_call_id: str, body: str, content_type: str) -> None:
    """A raw vendor event stored for ``cc_call_id``, as the inbox would keep it."""
    with session_scope(engine) as session:
        session.add(VendorEvent(
            channel="jy", dedupe_key=f"seed-{next(_seq)}", cc_call_id=cc_call_id,
            kind="bridged", event_time=BASE_EVENT_MS, received=BASE_EVENT_MS,
            content_type=content_type, body=body, event_json="{}", applied=True,
        ))  # fmt: skip


BASE_EVENT_MS = 1_800_000_000_000
