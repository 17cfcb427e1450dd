"""Which line a call takes: the seed's Channel and User-Agent-Channel parts.

- A bound user's call takes the bound line on the bound channel (unless the request pins
  another channel). If that channel is out of routing the call is refused (no_channel),
  unless the request allows fallback, in which case it is routed as if unbound.
- A request that names a channel takes an idle line there.
- Otherwise the first routable channel, in configured priority, with an idle line.
A channel is routable when an operator's override says so or, without one, when it is healthy.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import Session, col, select

from contracts.call import LineLease
from store.db import now_ms
from store.models import AgentLine, Binding, ChannelState
from store.tenants import lease_line


def lease_of(line: AgentLine) -> LineLease:
    """The lease a freshly leased line stands for."""
    assert line.lease_token is not None, "lease_of takes a leased line"
    return LineLease(channel=line.channel, agent=line.agent, number=line.number,
                     token=line.lease_token)  # fmt: skip


class NoChannel(Exception):
    """No routable channel can take the call (503 no_channel)."""


class LineBusy(Exception):
    """The channel is routable but every candidate line is on a call (409 line_busy)."""


@dataclass(frozen=True)
class RouteRequest:
    tenant: str
    cc_call_id: str
    priority: list[str]  # every channel CC can use, most preferred first
    user: str | None = None
    channel: str | None = None  # pinned by the request
    allow_fallback: bool = False
    exclude: frozenset[str] = frozenset()  # channels already tried for this call


@dataclass(frozen=True)
class Route:
    line: AgentLine
    may_fail_over: bool  # False when the request or a binding pins the channel


def routable_channels(session: Session, names: list[str]) -> set[str]:
    states = {s.name: s for s in session.exec(select(ChannelState)).all()}

    def routable(name: str) -> bool:
        state = states.get(name)
        if state is None:
            return True
        return state.enabled_override if state.enabled_override is not None else state.healthy

    return {name for name in names if routable(name)}


def _lease_bound_line(session: Session, binding: Binding, cc_call_id: str) -> AgentLine | None:
    granted = session.execute(
        update(AgentLine)
        .where(
            col(AgentLine.tenant) == binding.tenant,
            col(AgentLine.channel) == binding.channel,
            col(AgentLine.agent) == binding.agent,
            col(AgentLine.lease_call_id).is_(None),
        )
        .values(lease_call_id=cc_call_id, lease_token=AgentLine.lease_token + 1, leased_at=now_ms())
    )
    if granted.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.exec(
        select(AgentLine).where(
            AgentLine.channel == binding.channel, AgentLine.agent == binding.agent
        )
    ).one()


def choose_line(session: Session, req: RouteRequest) -> Route:
    """Lease the line the call should take, or raise NoChannel / LineBusy."""
    routable = routable_channels(session, req.priority) - req.exclude
    binding = None
    if req.user is not None:
        binding = session.exec(
            select(Binding).where(Binding.tenant == req.tenant, Binding.user == req.user)
        ).first()
    if binding is not None and req.channel in (None, binding.channel):
        if binding.channel in routable:
            line = _lease_bound_line(session, binding, req.cc_call_id)
            if line is None:
                raise LineBusy(f"the line bound to user {req.user} is on a call")
            return Route(line, may_fail_over=req.allow_fallback)
        if not req.allow_fallback:
            raise NoChannel(f"channel {binding.channel} bound to user {req.user} is down")
    candidates = [req.channel] if req.channel else req.priority
    candidates = [name for name in candidates if name in routable]
    if not candidates:
        raise NoChannel("no routable channel")
    for name in candidates:
        line = lease_line(session, req.tenant, name, req.cc_call_id)
        if line is not None:
            return Route(line, may_fail_over=req.channel is None)
    raise LineBusy("every candidate line is on a call")
