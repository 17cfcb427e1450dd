"""Agent lines and user bindings as the API manages them (leases live in store.tenants)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from store.db import now_ms
from store.inbox import last_event_received
from store.models import AgentLine, Binding, CallRecordRow, ChannelState


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


def line_taken(session: Session, channel: str, agent: str) -> bool:
    """Whether any tenant already has this line (a channel's line ids are global)."""
    found = session.exec(
        select(AgentLine.id).where(AgentLine.channel == channel, AgentLine.agent == agent)
    ).first()
    return found is not None


def delete_line(session: Session, line: AgentLine) -> None:
    bound = session.exec(
        select(Binding.id).where(
            Binding.tenant == line.tenant,
            Binding.channel == line.channel,
            Binding.agent == line.agent,
        )
    ).first()
    if bound is not None:
        raise LineInUse("a binding uses this line")
    if line.lease_call_id is not None:
        raise LineInUse("the line is on a call")
    session.delete(line)


def get_binding(session: Session, tenant: str, user: str) -> Binding | None:
    return session.exec(
        select(Binding).where(Binding.tenant == tenant, Binding.user == user)
    ).first()


def put_binding(session: Session, tenant: str, user: str, channel: str, agent: str) -> Binding:
    binding = get_binding(session, tenant, user) or Binding(
        tenant=tenant, user=user, channel=channel, agent=agent, updated=now_ms()
    )
    binding.channel, binding.agent, binding.updated = channel, agent, now_ms()
    session.add(binding)
    session.flush()
    return binding


def set_override(session: Session, name: str, enabled: bool | None) -> ChannelState:
    state = session.get(ChannelState, name) or ChannelState(name=name, updated=now_ms())
    state.enabled_override, state.updated = enabled, now_ms()
    session.add(state)
    session.flush()
    return state


def channel_facts(session: Session, name: str, since_ms: int) -> tuple[float, int | None]:
    """(share of recent calls that ended in a channel error, last vendor event time)."""
    closed = session.exec(
        select(CallRecordRow.close_type).where(
            CallRecordRow.channel == name,
            CallRecordRow.created >= since_ms,
            col(CallRecordRow.close_type).is_not(None),
        )
    ).all()
    errors = sum(1 for close_type in closed if close_type in ("6", "7"))
    return (errors / len(closed) if closed else 0.0), last_event_received(session, name)
