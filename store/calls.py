"""Call records: creation, lookup, saving the live record the workflow keeps (the Call
Query, filtered keyset pages, is ``store/call_query.py``)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Table, inspect, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from callflow.record import (
    SET_ONCE_TIMES,
    CallRecord,
    CallRecordBase,
    apply_event,
    apply_events,
    past_max_duration,
    talk_seconds,
)
from channels.events import CallEvent
from core.types import CallState, EventKind
from store import figures
from store.db import now_ms
from store.models import CallRecordRow
from store.quotas import hold

# The columns the live record holds: the workflow owns them once the call exists, and saves
# them all (those fixed at creation hold what the row already has).
_RECORD_COLUMNS = set(CallRecordBase.model_fields)
_TABLE: Table = CallRecordRow.__table__  # type: ignore[attr-defined]
# Each attribute's column where the two names differ (``vendor_call_id`` is ``call_id``).
_COLUMN_OF = {a.key: a.columns[0].name for a in inspect(CallRecordRow).column_attrs}


class IdempotencyClash(Exception):
    """Another call already holds this (tenant, Idempotency-Key)."""


def insert_call(session: Session, row: CallRecordRow) -> CallRecordRow:
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise IdempotencyClash(row.idempotency_key) from exc
    figures.count(session, figures.CallFacts.of(row), 1)  # born closed (an import): counts
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


def record_of(row: CallRecordRow) -> CallRecord:
    """The live record a stored row stands for (what CallWorkflow would hold)."""
    return CallRecord.model_validate(row)


def _width(column: str) -> int:
    """The size of one of the record's varchar columns."""
    length = getattr(inspect(CallRecordRow).columns[column].type, "length", None)
    assert isinstance(length, int), f"{column} is not a sized text column"
    return length


def _cut(value: str | None, column: str) -> str | None:
    """A vendor's state, id or our reason, cut to its column: its start still says something."""
    return None if value is None else value[: _width(column)]


def _fit(value: str | None, column: str) -> str | None:
    """A URL longer than its column: a cut URL is useless, so it is left out."""
    return value if value is None or len(value) <= _width(column) else None


def stored_values(record: CallRecord) -> dict[str, Any]:
    """The record's columns as its row stores them: its enums as their text, long vendor
    strings fitted to their columns."""
    values = record.model_dump(mode="json", include=_RECORD_COLUMNS)
    values["close_type"] = None if record.close_type is None else str(int(record.close_type))
    for name in ("ch_state", "vendor_call_id", "recording_error"):
        values[name] = _cut(values[name], name)
    for name in ("ch_audio_url", "audio_url"):
        values[name] = _fit(values[name], name)
    return values


def _as_close_event(record: CallRecord) -> CallEvent:
    assert record.close_time is not None
    return CallEvent(
        cc_call_id=record.cc_call_id,
        kind=EventKind.HANGUP,
        at=record.close_time,
        close_type=record.close_type,
        dedupe_key="stored-close",
    )


def _merged_with_stored(row: CallRecordRow, record: CallRecord) -> CallRecord:
    """A row closed meanwhile (the lease reconciler thought the workflow gone): close is final
    and set-once fields keep their stored value; the workflow's facts only fill what is missing
    and its close replaces the stored one by the state machine's own rule (a vendor reason
    beats CC's 255)."""
    stored = record_of(row)
    update: dict[str, object] = {}
    for name in SET_ONCE_TIMES:  # the earliest report of each moment stands
        times = [t for t in (getattr(stored, name), getattr(record, name)) if t is not None]
        update[name] = min(times) if times else None
    if stored.conn_time is not None and record.conn_time is not None:
        # A bridge event beats a bridge derived from a duration, whichever came first.
        real = [
            r.conn_time
            for r in (stored, record)
            if r.conn_time is not None and not r.conn_time_implied
        ]
        update["conn_time"] = min(real) if real else update["conn_time"]
        update["conn_time_implied"] = not real
    else:
        update["conn_time_implied"] = (stored if stored.conn_time else record).conn_time_implied
    for name in ("vendor_call_id", "ch_state", "ch_audio_url", "audio_url"):  # the newest word
        update[name] = getattr(record, name) or getattr(stored, name)
    merged = record.model_copy(
        update={
            **update,
            "state": CallState.CLOSE,
            "close_time": stored.close_time,
            "close_type": stored.close_type,
        }
    )
    if record.close_time is not None:
        merged = apply_event(merged, _as_close_event(record))
    merged.duration = talk_seconds(merged.conn_time, merged.close_time)
    return merged


def save_record(session: Session, record: CallRecord, attempts: list[dict[str, object]]) -> bool:
    """Write the workflow's live record onto its row. Returns False if the row is missing.

    The common case, a row not closed yet, is one UPDATE (no load, no unit of work: it runs
    once per vendor event); a row closed meanwhile is merged with what it holds."""
    if record.state is CallState.CLOSE:  # its figures will be counted: the tenant first,
        hold(session, record.tenant)  # as when a call is made (one lock order, no deadlock)
    values = {**stored_values(record), "attempts": json.dumps(attempts), "updated": now_ms()}
    open_row = (
        (_TABLE.c.cc_call_id == record.cc_call_id)
        & (_TABLE.c.state != CallState.CLOSE.value)
        & _TABLE.c.recording_deleted.is_(None)
    )
    columns = {_COLUMN_OF[name]: value for name, value in values.items()}
    if session.connection().execute(update(_TABLE).where(open_row).values(columns)).rowcount:
        if record.state is CallState.CLOSE:  # it closes now: its figures count from now on
            figures.count(session, figures.stored_facts(session, record.cc_call_id), 1)
        return True
    row = get_call_any_tenant(session, record.cc_call_id)  # closed, missing, recording
    if row is None:  # deleted, or (MySQL counts changed rows, not matched ones) saved
        return False  # unchanged this very ms
    before = figures.CallFacts.of(row)
    if row.state == CallState.CLOSE.value:
        values.update(stored_values(_merged_with_stored(row, record)))
    if row.recording_deleted is not None:
        values.update(_NO_RECORDING, recording_error=row.recording_error)
    row.sqlmodel_update(values)
    session.add(row)
    if (after := figures.CallFacts.of(row)) != before:  # closed now, or a late event's change
        figures.count(session, before, -1)
        figures.count(session, after, 1)
    return True


# What a row whose recording was deleted keeps of it, whatever the workflow or a late event says.
_NO_RECORDING = {"audio_url": None, "ch_audio_url": None}


def note_vendor_call(session: Session, cc_call_id: str, vendor_call_id: str) -> None:
    """The vendor accepted the call under this id (written by the place activity itself)."""
    row = get_call_any_tenant(session, cc_call_id)
    if row is not None and row.vendor_call_id is None:
        before = figures.CallFacts.of(row)  # a call closed meanwhile counts as placed now
        row.vendor_call_id = _cut(vendor_call_id, "vendor_call_id")
        session.add(row)
        figures.count(session, before, -1)
        figures.count(session, figures.CallFacts.of(row), 1)


def placed_call_id(session: Session, cc_call_id: str) -> str | None:
    row = get_call_any_tenant(session, cc_call_id)
    return None if row is None else row.vendor_call_id


def set_recording(
    session: Session, cc_call_id: str, audio_url: str | None, error: str | None
) -> None:
    """Our copy of the recording (or why there is none); not a change of the call's state."""
    row = get_call_any_tenant(session, cc_call_id)
    if row is not None and row.recording_deleted is None:
        row.audio_url = _fit(audio_url, "audio_url")
        row.recording_error = None if audio_url else _cut(error, "recording_error") or None
        row.updated = now_ms()
        session.add(row)


def apply_late_events(session: Session, events: list[CallEvent]) -> CallRecord | None:
    """Fold events for a call whose workflow has finished into its stored record.

    Through ``apply_event`` like every change: a closed record stays closed, set-once times
    keep their values (missing ones are filled) and a vendor's reason may replace CC's 255.
    None when no such call exists.
    """
    if not events or events[0].cc_call_id is None:
        return None
    row = get_call_any_tenant(session, events[0].cc_call_id)
    if row is None:
        return None
    record = past_max_duration(apply_events(record_of(row), events), row.max_duration * 1000)
    attempts: list[dict[str, object]] = json.loads(row.attempts or "[]")
    save_record(session, record, attempts)
    if row.recording_deleted is not None:  # as saved: no recording to copy
        record = record.model_copy(update=_NO_RECORDING)
    return record


def drop_call(session: Session, row: CallRecordRow) -> None:
    figures.count(session, figures.CallFacts.of(row), -1)
    session.delete(row)
