"""Store side of channel health and lease reconciliation.

Health writes only the verdict (``healthy``, ``reason``); the operator's override is the
API's and is never touched here. Reconciliation finds leases that may have outlived their
call, and frees each one under its fencing token, closing a record left open.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from callflow.record import talk_seconds
from core.types import CallState, CloseType
from store.calls import get_call_any_tenant
from store.db import now_ms
from store.inbox import last_event_received
from store.models import AgentLine, CallRecordRow, ChannelState
from store.tenants import release_line


def write_verdict(session: Session, name: str, healthy: bool, reason: str | None) -> None:
    state = session.get(ChannelState, name) or ChannelState(name=name, updated=now_ms())
    state.healthy, state.reason, state.updated = healthy, reason[:255] if reason else None, now_ms()
    session.add(state)


def silent_setups(session: Session, channel: str, silence_ms: int, now: int) -> int:
    """Calls still being set up after ``silence_ms`` with no event from the channel since.

    A call in ``init`` hears from its vendor within seconds (dialling, ringing), so such
    calls on a channel that sent nothing at all for that long mean its webhooks are not
    reaching us. A long talk (``conn``) is quiet by nature and is not counted.
    """
    cutoff = now - silence_ms
    last_event = last_event_received(session, channel)
    if last_event is not None and last_event >= cutoff:
        return 0
    waiting = session.exec(
        select(func.count())
        .select_from(CallRecordRow)
        .where(
            CallRecordRow.channel == channel,
            CallRecordRow.state == CallState.INIT.value,
            col(CallRecordRow.call_id).is_not(None),
            CallRecordRow.created < cutoff,
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
    """Free a lease whose workflow is gone; close its record if nobody did ("other error")."""
    freed = release_line(session, lease.channel, lease.agent, lease.cc_call_id, lease.token)
    row = get_call_any_tenant(session, lease.cc_call_id)
    if freed and row is not None and row.state != CallState.CLOSE.value:
        now = now_ms()
        row.state, row.close_time, row.updated = CallState.CLOSE.value, now, now
        row.close_type = str(int(CloseType.OTHER))
        row.duration = talk_seconds(row.conn_time, now)
        session.add(row)
    return freed
