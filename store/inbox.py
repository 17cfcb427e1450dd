"""The vendor event inbox: raw webhooks stored and committed before they are acknowledged."""

from __future__ import annotations

import contextlib

from sqlalchemy import Table, and_, func, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from channels.events import CallEvent, InboundCall
from store.db import now_ms
from store.models import VendorEvent

_TABLE: Table = VendorEvent.__table__  # type: ignore[attr-defined]


def store_event(
    session: Session, channel: str, event: CallEvent, body: bytes, content_type: str
) -> tuple[int, bool]:
    """Insert the raw event; return (inbox id, is_duplicate). Commits its own savepoint."""
    row = VendorEvent(
        channel=channel,
        dedupe_key=event.dedupe_key,
        cc_call_id=event.cc_call_id,
        vendor_call_id=event.vendor_call_id,
        kind=event.kind.value,
        event_time=event.at,
        received=now_ms(),
        content_type=content_type[:64],
        body=body.decode("utf-8", errors="replace"),
        event_json=event.model_dump_json(),
    )
    return _insert(session, row)


INBOUND_KIND = "callin"


def store_inbound(
    session: Session, channel: str, call: InboundCall, body: bytes, content_type: str
) -> tuple[int, bool]:
    """Store a vendor's inbound request (a customer calling a 400 number) raw, before CC
    answers it; return (inbox id, is_duplicate). It is never signalled (its ``note`` keeps it
    from redelivery): CC answers it at once, and ``settle_inbound`` writes down how."""
    row = VendorEvent(
        channel=channel,
        dedupe_key=call.dedupe_key,
        vendor_call_id=call.vendor_call_id,
        kind=INBOUND_KIND,
        event_time=call.at,
        received=now_ms(),
        content_type=content_type[:64],
        body=body.decode("utf-8", errors="replace"),
        event_json=call.model_dump_json(),
        note="inbound",
    )
    return _insert(session, row)


def _insert(session: Session, row: VendorEvent) -> tuple[int, bool]:
    """A plain INSERT (no unit of work: it runs for every vendor event), in a savepoint so
    that a duplicate (channel, dedupe key) leaves the transaction usable."""
    values = row.model_dump(exclude={"id"}, exclude_unset=False)
    try:
        with session.begin_nested():
            result = session.connection().execute(insert(_TABLE).values(values))
        (inbox_id,) = result.inserted_primary_key or (None,)
        assert inbox_id is not None
        return int(inbox_id), False
    except IntegrityError:
        existing = session.exec(
            select(VendorEvent).where(
                VendorEvent.channel == row.channel, VendorEvent.dedupe_key == row.dedupe_key
            )
        ).one()
        assert existing.id is not None
        return existing.id, True


def settle_inbound(session: Session, inbox_id: int, cc_call_id: str | None, note: str) -> None:
    """How CC answered an inbound request: the call it became (if any), and the answer."""
    session.connection().execute(
        update(_TABLE)
        .where(_TABLE.c.id == inbox_id)
        .values(
            cc_call_id=cc_call_id,
            applied=cc_call_id is not None,
            applied_at=now_ms() if cc_call_id else None,
            note=note[:64],
        )
    )


def last_event_received(session: Session, channel: str) -> int | None:
    """When the channel's latest event reached us (index: channel, received)."""
    latest: int | None = session.exec(
        select(func.max(VendorEvent.received)).where(VendorEvent.channel == channel)
    ).one()
    return latest


def mark_applied(session: Session, inbox_ids: list[int]) -> None:
    """One plain UPDATE (it runs with every save of a record)."""
    if inbox_ids:
        session.connection().execute(
            update(_TABLE)
            .where(_TABLE.c.id.in_(inbox_ids), _TABLE.c.applied.is_(False))
            .values(applied=True, applied_at=now_ms(), note=None)
        )


def note_unapplied(session: Session, inbox_id: int, note: str) -> None:
    session.execute(update(VendorEvent).where(col(VendorEvent.id) == inbox_id).values(note=note))


def mark_signalled(session: Session, inbox_ids: list[int], at: int) -> None:
    """The signal reached Temporal: redelivery never signals these again."""
    if inbox_ids:
        session.execute(
            update(VendorEvent)
            .where(col(VendorEvent.id).in_(inbox_ids))
            .values(
                signalled_at=at,
                signal_attempts=VendorEvent.signal_attempts + 1,
                next_attempt_at=None,
            )
        )


def retry_delay_ms(attempts: int, initial_s: float, max_s: float) -> int:
    """Back-off after ``attempts`` failed signals: initial, 2×, 4×, ... up to max."""
    return int(min(max_s, initial_s * 2 ** max(0, attempts - 1)) * 1000)


def mark_signal_failed(
    session: Session, inbox_ids: list[int], at: int, initial_s: float, max_s: float
) -> None:
    """Count a failed signal and set when the next one is due (back-off per event)."""
    if not inbox_ids:
        return
    rows = session.exec(select(VendorEvent).where(col(VendorEvent.id).in_(inbox_ids))).all()
    for row in rows:
        row.signal_attempts += 1
        row.next_attempt_at = at + retry_delay_ms(row.signal_attempts, initial_s, max_s)
        session.add(row)


def due_for_redelivery(
    session: Session, now: int, unsent_before: int, limit: int = 200
) -> list[CallEvent]:
    """Events never signalled: a failed signal whose back-off is over, or one never tried
    (the process died between storing and signalling) received before ``unsent_before``."""
    next_at, received = col(VendorEvent.next_attempt_at), col(VendorEvent.received)
    rows = session.exec(
        select(VendorEvent)
        .where(col(VendorEvent.applied).is_(False), col(VendorEvent.signalled_at).is_(None))
        .where(col(VendorEvent.cc_call_id).is_not(None), col(VendorEvent.note).is_(None))
        .where(or_(next_at <= now, and_(next_at.is_(None), received < unsent_before)))
        .order_by(col(VendorEvent.id))
        .limit(limit)
    ).all()
    readable = []
    for row in rows:
        try:
            readable.append(_as_event(row))
        except ValueError:  # one bad row must not stop the others
            assert row.id is not None
            note_unapplied(session, row.id, "unreadable")
            session.commit()
    return readable


def events_for_call(
    session: Session, cc_call_id: str, after: tuple[int, int] | None = None, limit: int = 500
) -> list[VendorEvent]:
    """The call's events oldest first, by (event time, id); ``after`` is the last one seen."""
    query = select(VendorEvent).where(VendorEvent.cc_call_id == cc_call_id)
    if after is not None:
        at, last_id = after
        event_time, row_id = col(VendorEvent.event_time), col(VendorEvent.id)
        query = query.where(or_(event_time > at, and_(event_time == at, row_id > last_id)))
    return list(
        session.exec(
            query.order_by(col(VendorEvent.event_time), col(VendorEvent.id)).limit(limit)
        ).all()
    )


def unapplied_for_call(session: Session, cc_call_id: str, limit: int = 200) -> list[CallEvent]:
    """The call's events stored but not applied (nor noted), oldest first: those a process
    stored and died before signalling, redelivery not come yet. An unreadable row is left to
    redelivery, which notes it."""
    events = []
    for row in events_for_call(session, cc_call_id, limit=limit):
        if not row.applied and row.note is None:
            with contextlib.suppress(ValueError):
                events.append(_as_event(row))
    return events


def events_page(
    session: Session, cc_call_id: str, after: tuple[int, int] | None, limit: int
) -> tuple[list[VendorEvent], tuple[int, int] | None]:
    """One page of the call's events and where the next starts (None: this was the last)."""
    rows = events_for_call(session, cc_call_id, after, limit + 1)
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], (last.event_time, last.id or 0)


def _as_event(row: VendorEvent) -> CallEvent:
    event = CallEvent.model_validate_json(row.event_json)
    event.inbox_id = row.id
    return event
