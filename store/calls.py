"""Call records: creation, lookup and saving the live record the workflow keeps."""

from __future__ import annotations

import json

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from callflow.record import CallRecord
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
