"""The lease reconciler's store side: free a lease its call's workflow left behind.

The lease is freed under its fencing token (``store.lines``), and a record left open is
closed through the record's own state machine (``callflow.record.apply_event``) and saved by
``store.calls``, and the app's notifications of that close written, in the caller's one
transaction.
"""

from __future__ import annotations

import json

from sqlmodel import Session, col, select

from callflow.record import apply_event
from channels.events import CallEvent
from contracts.call import SaveRecordInput
from core.types import CallState, CloseType, EventKind
from store import notifications
from store.calls import get_call_any_tenant, record_of, save_record
from store.db import now_ms
from store.lines import HeldLease, release_line
from store.models import CallRecordRow

# The reconciler's hang-up, as the record's state machine sees it.
RECONCILER_DEDUPE_KEY = "cc:reconciler"


def free_orphaned_lease(session: Session, lease: HeldLease) -> bool:
    """Free a lease whose workflow is gone; close its record if nobody did ("other error").

    Both happen in the caller's one transaction: a line is never freed with its call open.
    """
    freed = release_line(session, lease.channel, lease.agent, lease.cc_call_id, lease.token)
    row = get_call_any_tenant(session, lease.cc_call_id)
    if freed and row is not None and row.state != CallState.CLOSE.value:
        close_by_reconciler(session, row, now_ms())
    return freed


def close_by_reconciler(session: Session, row: CallRecordRow, now: int) -> None:
    """Fold CC's own hang-up (close_type 255, at ``now``) into the row's record through the
    state machine, like any vendor event, and save the result: what the record already has
    is kept by its rules, and a vendor's later word on the close still beats this 255."""
    hangup = CallEvent(
        cc_call_id=row.cc_call_id,
        kind=EventKind.HANGUP,
        at=now,
        close_type=CloseType.OTHER,
        dedupe_key=RECONCILER_DEDUPE_KEY,
    )
    attempts: list[dict[str, object]] = json.loads(row.attempts or "[]")
    before, closed = record_of(row), apply_event(record_of(row), hangup)
    save_record(session, closed, attempts)
    # The app is told, as when its workflow closes a call (in the same transaction).
    notifications.enqueue_saved(
        session,
        SaveRecordInput(record=closed, attempts=[], state_changed=closed.state is not before.state),
    )


# Scheduled calls looked at per round (oldest first): the rest wait for the next round.
WAITING_BATCH = 500


def waiting_calls(session: Session, created_before: int) -> list[str]:
    """Calls still ``scheduled`` (holding no line) recorded before ``created_before``: the
    reconciler asks whether each one's workflow still runs."""
    rows = session.exec(
        select(CallRecordRow.cc_call_id)
        .where(
            CallRecordRow.state == CallState.SCHEDULED.value,
            CallRecordRow.created < created_before,
        )
        .order_by(col(CallRecordRow.created))
        .limit(WAITING_BATCH)
    ).all()
    return list(rows)


def close_orphaned_waiting(session: Session, cc_call_id: str) -> bool:
    """Close a scheduled call whose workflow is gone (255, never dialled): nobody would ever
    place it. False when it is no longer waiting."""
    row = get_call_any_tenant(session, cc_call_id)
    if row is None or row.state != CallState.SCHEDULED.value:
        return False
    close_by_reconciler(session, row, now_ms())
    return True
