"""Store side of channel health and lease reconciliation.

Health writes only the verdict (``healthy``, ``reason``); the operator's override is the
API's and is never touched here. Reconciliation finds leases that may have outlived their
call, and frees each one under its fencing token, closing a record left open through the
record's own state machine (``callflow.record.apply_event``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import exists, func
from sqlmodel import Session, col, select

from callflow.record import apply_event
from channels.base import CallEvent
from core.types import CallState, CloseType, EventKind
from store.calls import get_call_any_tenant, record_of, save_record
from store.db import now_ms
from store.inbox import last_event_received
from store.models import AgentLine, CallRecordRow, ChannelState, VendorEvent
from store.tenants import release_line

# The reconciler's hang-up, as the record's state machine sees it.
RECONCILER_DEDUPE_KEY = "cc:reconciler"


def write_verdict(session: Session, name: str, healthy: bool, reason: str | None) -> None:
    state = session.get(ChannelState, name) or ChannelState(name=name, updated=now_ms())
    state.healthy, state.reason, state.updated = healthy, reason[:255] if reason else None, now_ms()
    session.add(state)


def silent_setups(session: Session, channel: str, silence_ms: int, now: int) -> int:
    """Calls still being set up after ``silence_ms`` that nothing has explained.

    A call in ``init`` hears from its vendor within seconds (dialling, ringing), so such
    calls on a channel that sent nothing at all for that long mean its webhooks are not
    reaching us. A call with any inbox row of its own (a webhook, or the answer CallWorkflow's
    set-up reconciliation got from the vendor's call-result query, stored in the inbox like
    any event) is explained and not counted, however old that row is. A long talk (``conn``)
    is quiet by nature and is not counted either.
    """
    cutoff = now - silence_ms
    last_event = last_event_received(session, channel)
    if last_event is not None and last_event >= cutoff:
        return 0
    heard_of = exists().where(col(VendorEvent.cc_call_id) == col(CallRecordRow.cc_call_id))
    waiting = session.exec(
        select(func.count())
        .select_from(CallRecordRow)
        .where(
            CallRecordRow.channel == channel,
            CallRecordRow.state == CallState.INIT.value,
            col(CallRecordRow.call_id).is_not(None),
            CallRecordRow.created < cutoff,
            ~heard_of,
        )
    ).one()
    return int(waiting)


@dataclass(frozen=True)
class HeldLease:
    channel: str
    agent: str
    cc_call_id: str
    token: int
    vendor_call_id: str | None  # the call's id at its vendor, if it got that far
    live: bool  # its record is not closed
    leased_at: int


def held_leases(session: Session) -> list[HeldLease]:
    rows = session.exec(
        select(AgentLine, CallRecordRow)
        .join(
            CallRecordRow,
            col(CallRecordRow.cc_call_id) == col(AgentLine.lease_call_id),
            isouter=True,
        )
        .where(col(AgentLine.lease_call_id).is_not(None))
    ).all()
    return [
        HeldLease(
            line.channel,
            line.agent,
            line.lease_call_id or "",
            line.lease_token,
            call.call_id if call else None,
            call is not None and call.state != CallState.CLOSE.value,
            line.leased_at or 0,
        )  # fmt: skip
        for line, call in rows
    ]


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
    save_record(session, apply_event(record_of(row), hangup), attempts)
