"""Which line a call takes: the seed's Channel and User-Agent-Channel parts.

- A bound user's call takes the bound line on the bound channel (unless the request pins
  another channel). If that channel is out of routing the call is refused (no_channel),
  unless the request allows fallback, in which case it is routed as if unbound.
- A request that names a channel takes an idle line there.
- Otherwise the first routable channel, in configured priority, with an idle line.
Whether a channel is routable is store.channel_state's to say (override, else health).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from contracts.call import Routing
from store.bindings import get_binding
from store.channel_state import refusals, routable_channels
from store.lines import lease_agent_line, lease_line
from store.models import AgentLine


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

    @classmethod
    def for_call(
        cls, tenant: str, cc_call_id: str, routing: Routing, channel: str | None = None
    ) -> RouteRequest:
        """The request for a call routed as ``routing`` says, ``channel`` pinning one."""
        return cls(
            tenant=tenant,
            cc_call_id=cc_call_id,
            user=routing.user,
            channel=channel,
            allow_fallback=routing.allow_fallback,
            priority=routing.priority,
        )


@dataclass(frozen=True)
class Route:
    line: AgentLine
    may_fail_over: bool  # False when the request or a binding pins the channel


def choose_line(session: Session, req: RouteRequest) -> Route:
    """Lease the line the call should take, or raise NoChannel / LineBusy."""
    routable = routable_channels(session, req.priority) - req.exclude
    binding = None if req.user is None else get_binding(session, req.tenant, req.user)
    if binding is not None and req.channel in (None, binding.channel):
        if binding.channel in routable:
            line = lease_agent_line(
                session, req.tenant, binding.channel, binding.agent, req.cc_call_id
            )
            if line is None:
                raise LineBusy(f"the line bound to user {req.user} is on a call")
            return Route(line, may_fail_over=_may_fail_over(req, bound=True))
        if not req.allow_fallback:
            why = refusals(session, [binding.channel])
            raise NoChannel(f"user {req.user} is bound to channel {binding.channel}, and {why}")
    wanted = [req.channel] if req.channel else req.priority
    candidates = [name for name in wanted if name in routable]
    if not candidates:
        down = [name for name in wanted if name not in req.exclude]
        tried = [name for name in wanted if name in req.exclude]
        words = [refusals(session, down)] if down else []
        words += [f"{', '.join(tried)} already tried for this call"] if tried else []
        raise NoChannel("no channel can take the call: " + "; ".join(words))
    for name in candidates:
        line = lease_line(session, req.tenant, name, req.cc_call_id)
        if line is not None:
            return Route(line, may_fail_over=_may_fail_over(req, bound=False))
    raise LineBusy("every candidate line is on a call")


def _may_fail_over(req: RouteRequest, bound: bool) -> bool:
    """A call on its bound line fails over only if the request allows fallback; any other
    only if the request did not pin its channel."""
    return req.allow_fallback if bound else req.channel is None


def route_taken(session: Session, req: RouteRequest, line: AgentLine) -> Route:
    """The route ``choose_line`` gave ``req`` when it leased ``line`` (for a request
    replayed after that): the line it holds, and whether the call may fail over."""
    binding = None if req.user is None else get_binding(session, req.tenant, req.user)
    bound = (
        binding is not None
        and req.channel in (None, binding.channel)
        and (binding.channel, binding.agent) == (line.channel, line.agent)
    )
    return Route(line, may_fail_over=_may_fail_over(req, bound))
