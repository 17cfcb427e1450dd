"""Retention: what of a call is personal beyond its record (raw vendor event bodies, the
recording) and hw seat sessions are kept a number of days, then purged; call records stay.

The sweep (``activities/retention.py``, run by the ``cc-retention`` Temporal Schedule) works
in small batches, each one short transaction, so no batch holds a lock long on any database:

- ``expired_calls`` → the recordings to delete → ``purge_calls``: a tenant's closed calls
  older than its retention, oldest first, along ``ix_call_record_retention`` (tenant, purged,
  created): a purged call leaves the range, so every batch starts where the last one ended.
- ``orphan_events`` / ``delete_events``: events of no call (unknown call ids, garbage that was
  stored and reported) or of a purged call (a straggler), past the platform's retention, along
  ``ix_vendor_event_received``.
- ``expired_sessions`` / ``delete_sessions``: seat sessions not written for the platform's
  retention (a seat in use writes its session at each sign-in).

Each function takes ``now`` (epoch ms) from its caller, so tests control time.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table, and_, case, delete, or_, select, update
from sqlmodel import Session, col
from sqlmodel import select as select_rows

from core.types import CallState
from store.models import CallRecordRow, ChannelSession, Tenant, VendorEvent

DAY_MS = 86_400_000

_CALLS: Table = CallRecordRow.__table__  # type: ignore[attr-defined]
_EVENTS: Table = VendorEvent.__table__  # type: ignore[attr-defined]
_SESSIONS: Table = ChannelSession.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TenantCutoff:
    tenant: str
    days: int
    cutoff: int  # epoch ms: what was created before this is past its retention


def cutoff(now: int, days: int) -> int:
    return now - days * DAY_MS


def tenant_days(tenant: Tenant, default_days: int) -> int:
    """The tenant's retention as it applies: its own, else the platform's."""
    return tenant.retention_days or default_days


def tenant_cutoffs(session: Session, now: int, default_days: int) -> list[TenantCutoff]:
    tenants = session.exec(select_rows(Tenant).order_by(col(Tenant.id))).all()
    applying = [(t.id, tenant_days(t, default_days)) for t in tenants]
    return [TenantCutoff(tid, days, cutoff(now, days)) for tid, days in applying]


@dataclass(frozen=True)
class ExpiredCall:
    cc_call_id: str
    audio_url: str | None  # CC's copy, to delete from storage before the row forgets it


def expired_calls(session: Session, tenant: str, before: int, limit: int) -> list[ExpiredCall]:
    """A tenant's closed calls created before ``before`` whose events and recording are not
    purged yet, oldest first."""
    rows = session.connection().execute(
        select(_CALLS.c.cc_call_id, _CALLS.c.audio_url)
        .where(
            _CALLS.c.tenant == tenant,
            _CALLS.c.purged.is_(None),
            _CALLS.c.created < before,
            _CALLS.c.state == CallState.CLOSE.value,
        )
        .order_by(_CALLS.c.created)
        .limit(limit)
    )
    return [ExpiredCall(cc_call_id, audio_url) for cc_call_id, audio_url in rows]


def purge_calls(session: Session, cc_call_ids: list[str], now: int, reason: str) -> int:
    """Delete the calls' raw vendor events and forget their recordings (the objects are
    already deleted); the records stay. Returns how many events went."""
    if not cc_call_ids:
        return 0
    conn = session.connection()
    events = conn.execute(delete(_EVENTS).where(_EVENTS.c.cc_call_id.in_(cc_call_ids))).rowcount
    had_recording = or_(_CALLS.c.audio_url.is_not(None), _CALLS.c.ch_audio_url.is_not(None))
    conn.execute(
        update(_CALLS)
        .where(_CALLS.c.cc_call_id.in_(cc_call_ids), _CALLS.c.purged.is_(None))
        # In this order: MySQL and MariaDB read a column already set earlier in the statement.
        .ordered_values(
            (
                _CALLS.c.recording_error,
                case((had_recording, reason[:255]), else_=_CALLS.c.recording_error),
            ),
            (
                _CALLS.c.recording_deleted,
                case((_CALLS.c.recording_deleted.is_(None), now), else_=_CALLS.c.recording_deleted),
            ),
            (_CALLS.c.purged, now),
            (_CALLS.c.audio_url, None),
            (_CALLS.c.ch_audio_url, None),
        )
    )
    return int(events)


def orphan_events(session: Session, before: int, limit: int) -> list[int]:
    """Ids of events received before ``before`` that belong to no call, or to a purged one."""
    rows = session.connection().execute(
        select(_EVENTS.c.id)
        .select_from(_EVENTS.outerjoin(_CALLS, _CALLS.c.cc_call_id == _EVENTS.c.cc_call_id))
        .where(
            _EVENTS.c.received < before,
            or_(_CALLS.c.id.is_(None), _CALLS.c.purged.is_not(None)),
        )
        .order_by(_EVENTS.c.received, _EVENTS.c.id)
        .limit(limit)
    )
    return [event_id for (event_id,) in rows]


def delete_events(session: Session, ids: list[int]) -> int:
    if not ids:
        return 0
    return int(session.connection().execute(delete(_EVENTS).where(_EVENTS.c.id.in_(ids))).rowcount)


def expired_sessions(session: Session, before: int, limit: int) -> list[tuple[str, str]]:
    """(channel, key) of seat sessions last written before ``before``."""
    rows = session.connection().execute(
        select(_SESSIONS.c.channel, _SESSIONS.c.key)
        .where(_SESSIONS.c.updated < before)
        .order_by(_SESSIONS.c.updated)
        .limit(limit)
    )
    return [(channel, key) for channel, key in rows]


def delete_sessions(session: Session, keys: list[tuple[str, str]], before: int) -> int:
    """Delete those sessions, unless one was written meanwhile (a seat signed in again)."""
    if not keys:
        return 0
    matches = or_(*(and_(_SESSIONS.c.channel == c, _SESSIONS.c.key == k) for c, k in keys))
    done = session.connection().execute(
        delete(_SESSIONS).where(matches, _SESSIONS.c.updated < before)
    )
    return int(done.rowcount)


# --- One recording, now (DELETE /v1/calls/{id}/recording) -------------------------------------


@dataclass(frozen=True)
class DeletedRecording:
    audio_url: str | None  # the copy to delete from storage (None: there was none yet)
    created: int  # the call's, for the keys a copy still landing would take


def delete_recording(
    session: Session, tenant: str, cc_call_id: str, now: int, reason: str
) -> DeletedRecording | None:
    """Forget the call's recording for good: no copy is kept or made for it from now on (a
    copy landing meanwhile deletes itself, ``activities/recordings.py``). Idempotent; None when
    the tenant has no such call."""
    row = session.exec(
        select_rows(CallRecordRow)
        .where(col(CallRecordRow.tenant) == tenant, col(CallRecordRow.cc_call_id) == cc_call_id)
        .with_for_update()
    ).first()
    if row is None:
        return None
    audio_url = row.audio_url
    if row.recording_deleted is None:
        row.recording_deleted = now
        row.recording_error = reason[:255]
    row.audio_url = row.ch_audio_url = None
    row.updated = now
    session.add(row)
    return DeletedRecording(audio_url=audio_url, created=row.created)


def recording_deleted(session: Session, cc_call_id: str) -> bool:
    found = (
        session.connection()
        .execute(select(_CALLS.c.recording_deleted).where(_CALLS.c.cc_call_id == cc_call_id))
        .first()
    )
    return found is not None and found[0] is not None
