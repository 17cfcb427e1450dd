"""A callback's retry series in the store: the next try's row, born like any call
(``store.placement.record_born``: its ``call.state`` queued with it) and told to the app as
``call.retry_scheduled``, in one transaction; and a series' try still waiting to be placed
(what cancelling the series must reach)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from callflow.record import CallRecord
from core.types import CallState, Direction
from store import notifications
from store.calls import get_call_any_tenant
from store.db import now_ms
from store.models import CallRecordRow
from store.placement import record_born

# The columns a try copies from the one before: how the app asked for the call.
_ASKED = (
    "tenant",
    "user",
    "main_num",
    "ext_num",
    "caller",
    "called",
    "biz_data",
    "ivr_url",
    "ivr_text",
    "display",
    "max_duration",
    "record_audio",
)


def next_try_id(ended: CallRecord) -> str:
    """The next try's CC call id: the series' first id and the try's number, so a retried
    activity finds the try it made (``abc...-2``, at most 23 characters)."""
    return f"{ended.parent or ended.cc_call_id}-{ended.try_number + 1}"


def previous_try_id(row: CallRecordRow) -> str:
    """The CC call id of the try before ``row`` (a try of a series: ``parent`` set), the one
    that made it."""
    head = row.parent or row.cc_call_id
    return head if row.try_number <= 2 else f"{head}-{row.try_number - 1}"


def record_next_try(session: Session, ended: CallRecord, due: int, reason: str) -> CallRecordRow:
    """The try after ``ended``, due at ``due`` (state ``scheduled``, no line), recorded once:
    a second ask returns the row the first made."""
    cc_call_id = next_try_id(ended)
    existing = get_call_any_tenant(session, cc_call_id)
    if existing is not None:
        return existing
    source = get_call_any_tenant(session, ended.cc_call_id)
    if source is None:
        raise LookupError(f"no call {ended.cc_call_id}")
    now = now_ms()
    row = CallRecordRow(
        **{name: getattr(source, name) for name in _ASKED},
        cc_call_id=cc_call_id,
        agent="",
        channel="",
        state=CallState.SCHEDULED.value,
        not_before=due,
        wait_reason=reason,
        parent=ended.parent or ended.cc_call_id,
        try_number=ended.try_number + 1,
        direction=Direction.OUT.value,
        created=now,
        updated=now,
    )
    record_born(session, row)
    notifications.enqueue_retry_scheduled(session, row)
    return row


def pending_try(session: Session, tenant: str, head: str) -> CallRecordRow | None:
    """The series' try that has not ended (at most one runs at a time), if any."""
    return session.exec(
        select(CallRecordRow)
        .where(
            CallRecordRow.tenant == tenant,
            CallRecordRow.parent == head,
            CallRecordRow.state != CallState.CLOSE.value,
        )
        .order_by(col(CallRecordRow.try_number).desc())
        .limit(1)
    ).first()
