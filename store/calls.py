"""Call records: creation, lookup, saving the live record the workflow keeps, and the
Call Query (filtered keyset pages)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from callflow.record import CallRecord
from core.types import CallState
from store.db import now_ms
from store.models import CallRecordRow

# Columns the workflow owns once the call exists (the rest are fixed at creation).
_LIVE_COLUMNS = (
    "call_id",
    "ch_state",
    "a_call_time",
    "b_call_time",
    "a_offhook_time",
    "b_offhook_time",
    "conn_time",
    "close_time",
    "duration",
    "ch_audio_url",
    "audio_url",
    "recording_error",
    "channel",
    "agent",
)


class IdempotencyClash(Exception):
    """Another call already holds this (tenant, Idempotency-Key)."""


def insert_call(session: Session, row: CallRecordRow) -> CallRecordRow:
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise IdempotencyClash(row.idempotency_key) from exc
    return row


def get_call(session: Session, tenant: str, cc_call_id: str) -> CallRecordRow | None:
    return session.exec(
        select(CallRecordRow).where(
            CallRecordRow.tenant == tenant, CallRecordRow.cc_call_id == cc_call_id
        )
    ).first()


def get_call_any_tenant(session: Session, cc_call_id: str) -> CallRecordRow | None:
    return session.exec(select(CallRecordRow).where(CallRecordRow.cc_call_id == cc_call_id)).first()


def find_by_idempotency_key(session: Session, tenant: str, key: str) -> CallRecordRow | None:
    return session.exec(
        select(CallRecordRow).where(
            CallRecordRow.tenant == tenant, CallRecordRow.idempotency_key == key
        )
    ).first()


def save_record(session: Session, record: CallRecord, attempts: list[dict[str, object]]) -> bool:
    """Write the workflow's live record onto its row. Returns False if the row is missing."""
    row = get_call_any_tenant(session, record.cc_call_id)
    if row is None:
        return False
    if row.state == CallState.CLOSE.value and record.state is not CallState.CLOSE:
        # Closed meanwhile by the lease reconciler (workflow thought gone): close is final.
        return True
    for name in _LIVE_COLUMNS:
        setattr(row, name, getattr(record, name))
    row.state = record.state.value
    row.close_type = None if record.close_type is None else str(int(record.close_type))
    row.attempts = json.dumps(attempts)
    row.updated = now_ms()
    session.add(row)
    return True


def drop_call(session: Session, row: CallRecordRow) -> None:
    session.delete(row)


# --- Call Query -------------------------------------------------------------------------------
# Pages are newest first, ordered by (created DESC, id DESC): every filter has an index
# (tenant, <filter>, created, id) and (tenant, created, id) serves the rest, so a page is one
# index range scan with no sort. The keyset cursor is the last row's (created, id): a call
# placed while a client pages sorts before its first page, so pages never shift, repeat or
# skip a row.


@dataclass(frozen=True)
class CallFilter:
    """``GET /v1/calls`` filters, numbers already in E.164; None means "any"."""

    tenant: str
    state: str | None = None
    channel: str | None = None
    agent: str | None = None
    user: str | None = None
    caller: str | None = None
    called: str | None = None
    close_type: str | None = None
    since: int | None = None  # created >= since (epoch ms)
    until: int | None = None  # created < until (epoch ms)


@dataclass(frozen=True)
class Keyset:
    """Where a page ended: the last row's (created, id)."""

    created: int
    id: int


@dataclass(frozen=True)
class CallPage:
    rows: list[CallRecordRow]
    next: Keyset | None  # None: this was the last page


_EQUALITY_FILTERS = ("state", "channel", "agent", "user", "caller", "called", "close_type")


def _conditions(flt: CallFilter, after: Keyset | None) -> list[ColumnElement[bool]]:
    created, row_id = col(CallRecordRow.created), col(CallRecordRow.id)
    conds: list[ColumnElement[bool]] = [col(CallRecordRow.tenant) == flt.tenant]
    for name in _EQUALITY_FILTERS:
        if (value := getattr(flt, name)) is not None:
            conds.append(getattr(CallRecordRow, name) == value)
    if flt.since is not None:
        conds.append(created >= flt.since)
    if flt.until is not None:
        conds.append(created < flt.until)
    if after is not None:
        # Spelled out rather than a row-value comparison: ``created <= x`` bounds the index
        # range on every database (MySQL does not range-scan on row constructors).
        conds.append(created <= after.created)
        conds.append(or_(created < after.created, row_id < after.id))
    return conds


def page_statement(
    flt: CallFilter, after: Keyset | None, limit: int
) -> SelectOfScalar[CallRecordRow]:
    """The SELECT for one page plus one row (which tells whether another page follows)."""
    return (
        select(CallRecordRow)
        .where(*_conditions(flt, after))
        .order_by(col(CallRecordRow.created).desc(), col(CallRecordRow.id).desc())
        .limit(limit + 1)
    )


def query_calls(
    session: Session, flt: CallFilter, after: Keyset | None = None, limit: int = 50
) -> CallPage:
    """One page of a tenant's calls, newest first, strictly after ``after``."""
    rows = list(session.exec(page_statement(flt, after, limit)).all())
    if len(rows) <= limit:
        return CallPage(rows, None)
    rows = rows[:limit]
    last = rows[-1]
    assert last.id is not None
    return CallPage(rows, Keyset(last.created, last.id))


def iter_calls(engine: Engine, flt: CallFilter, page_size: int = 500) -> Iterator[CallRecordRow]:
    """Every matching call, newest first, one short session per page (for streaming)."""
    after: Keyset | None = None
    while True:
        with Session(engine, expire_on_commit=False) as session:
            page = query_calls(session, flt, after, page_size)
        yield from page.rows
        if page.next is None:
            return
        after = page.next
