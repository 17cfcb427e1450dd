"""Agent lines and their leases: the lines each channel provides, and which call holds one.

A lease is granted by one conditional UPDATE (``lease_call_id IS NULL``), so two processes
racing for the same line cannot both win, on any of the supported databases; every grant
bumps the line's fencing token, and a release must name the token it was granted under.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, update
from sqlmodel import Session, col, select

from contracts.call import LineLease
from core.types import CallState
from store.bindings import line_is_bound
from store.db import now_ms
from store.models import AgentLine, CallRecordRow


class LineExists(Exception):
    """A channel's line ids are global: some tenant already has this line."""


class LineInUse(Exception):
    """The line is bound to a user or carries a call."""


def list_lines(
    session: Session, tenant: str, channel: str | None, after_id: int, limit: int
) -> list[AgentLine]:
    query = select(AgentLine).where(AgentLine.tenant == tenant, col(AgentLine.id) > after_id)
    if channel is not None:
        query = query.where(AgentLine.channel == channel)
    return list(session.exec(query.order_by(col(AgentLine.id)).limit(limit)).all())


def get_line(session: Session, tenant: str, channel: str, agent: str) -> AgentLine | None:
    return session.exec(
        select(AgentLine).where(
            AgentLine.tenant == tenant, AgentLine.channel == channel, AgentLine.agent == agent
        )
    ).first()


def find_line(session: Session, channel: str, agent: str) -> AgentLine | None:
    """The line, whichever tenant has it (a channel's line ids are global)."""
    return session.exec(
        select(AgentLine).where(AgentLine.channel == channel, AgentLine.agent == agent)
    ).first()


def _add_line(session: Session, tenant: str, channel: str, agent: str, number: str) -> AgentLine:
    line = AgentLine(tenant=tenant, channel=channel, agent=agent, number=number)
    session.add(line)
    session.flush()
    return line


def create_line(session: Session, tenant: str, channel: str, agent: str, number: str) -> AgentLine:
    """A new line of ``tenant``; LineExists if any tenant has it already."""
    if find_line(session, channel, agent) is not None:
        raise LineExists(f"{channel} line {agent} already exists")
    return _add_line(session, tenant, channel, agent, number)


def ensure_line(session: Session, tenant: str, channel: str, agent: str, number: str) -> AgentLine:
    """The line as it is (whichever tenant has it), or a new line of ``tenant``."""
    return find_line(session, channel, agent) or _add_line(session, tenant, channel, agent, number)


def delete_line(session: Session, line: AgentLine) -> None:
    if line_is_bound(session, line.tenant, line.channel, line.agent):
        raise LineInUse("a binding uses this line")
    if line.lease_call_id is not None:
        raise LineInUse("the line is on a call")
    session.delete(line)


# --- Leases -----------------------------------------------------------------------------------


def lease_of(line: AgentLine) -> LineLease:
    """The lease a freshly leased line stands for."""
    assert line.lease_token is not None, "lease_of takes a leased line"
    return LineLease(
        channel=line.channel, agent=line.agent, number=line.number, token=line.lease_token
    )


def _grant(session: Session, cc_call_id: str, *which: ColumnElement[bool]) -> AgentLine | None:
    """Lease the line ``which`` selects to ``cc_call_id`` if it is idle: the one conditional
    UPDATE every lease goes through. Returns the line as leased, or None if it was busy."""
    granted = session.execute(
        update(AgentLine)
        .where(
            *which, col(AgentLine.lease_call_id).is_(None), col(AgentLine.out_of_service).is_(None)
        )
        .values(lease_call_id=cc_call_id, lease_token=AgentLine.lease_token + 1, leased_at=now_ms())
    )
    if granted.rowcount != 1:  # type: ignore[attr-defined]
        return None
    fresh = select(AgentLine).where(*which).execution_options(populate_existing=True)
    return session.exec(fresh).one()


def lease_line(session: Session, tenant: str, channel: str, cc_call_id: str) -> AgentLine | None:
    """Give ``cc_call_id`` an idle line of the tenant on ``channel``, or None if all are busy.

    The longest idle line first; a line another process takes meanwhile is passed over.
    """
    candidates = session.exec(
        select(AgentLine.id)
        .where(
            AgentLine.tenant == tenant,
            AgentLine.channel == channel,
            col(AgentLine.lease_call_id).is_(None),
            col(AgentLine.out_of_service).is_(None),
        )
        .order_by(col(AgentLine.leased_at).asc(), col(AgentLine.id).asc())
    ).all()
    for line_id in candidates:
        line = _grant(session, cc_call_id, col(AgentLine.id) == line_id)
        if line is not None:
            return line
    return None


def lease_agent_line(
    session: Session, tenant: str, channel: str, agent: str, cc_call_id: str
) -> AgentLine | None:
    """Give ``cc_call_id`` this one line of the tenant (a bound user's), or None if busy."""
    return _grant(
        session,
        cc_call_id,
        col(AgentLine.tenant) == tenant,
        col(AgentLine.channel) == channel,
        col(AgentLine.agent) == agent,
    )


def take_out_of_service(session: Session, channel: str, agent: str, reason: str) -> None:
    """No call is routed to the line until an operator puts it back (deletes and adds it
    again): e.g. an hw seat signed in elsewhere (100-015). Its other lines are unaffected."""
    session.execute(
        update(AgentLine)
        .where(col(AgentLine.channel) == channel, col(AgentLine.agent) == agent)
        .values(out_of_service=reason[:255])
    )


def release_line(session: Session, channel: str, agent: str, cc_call_id: str, token: int) -> bool:
    """Free the line if ``cc_call_id`` still holds it under ``token`` (the fencing token)."""
    released = session.execute(
        update(AgentLine)
        .where(
            col(AgentLine.channel) == channel,
            col(AgentLine.agent) == agent,
            col(AgentLine.lease_call_id) == cc_call_id,
            col(AgentLine.lease_token) == token,
        )
        .values(lease_call_id=None)
    )
    return bool(released.rowcount == 1)  # type: ignore[attr-defined]


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
    """Every lease held now, with what its call's record says (the lease reconciler's view)."""
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
            call.vendor_call_id if call else None,
            call is not None and call.state != CallState.CLOSE.value,
            line.leased_at or 0,
        )
        for line, call in rows
    ]
