"""Channel state: the health verdict, the operator's override, and whether a channel routes.

Health writes only the verdict (``healthy``, ``reason``); the override is the operator's (the
API's) and is never touched by health. A channel is routable when an operator's override says
so or, without one, when it is healthy; a channel with no state yet is healthy.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, func
from sqlmodel import Session, col, select

from core.types import CallState, CloseType
from store.db import now_ms
from store.inbox import last_event_received
from store.models import CallRecordRow, ChannelState, VendorEvent

# Close types that blame the channel, as the record stores them.
CHANNEL_ERRORS = frozenset({CloseType.CHANNEL_SERVER_ERROR, CloseType.CHANNEL_NETWORK_ERROR})
_STORED_CHANNEL_ERRORS = frozenset(str(int(close_type)) for close_type in CHANNEL_ERRORS)


def routable(state: ChannelState) -> bool:
    """Routing on or off, as it stands: the operator's override, else the health verdict."""
    return state.enabled_override if state.enabled_override is not None else state.healthy


def _unsaid(name: str) -> ChannelState:
    """The state of a channel nothing was said about yet (healthy, no override)."""
    return ChannelState(name=name, updated=0)


def state_of(session: Session, name: str) -> ChannelState:
    """The channel's stored state, or that of a channel nothing was said about yet."""
    return session.get(ChannelState, name) or _unsaid(name)


def why_not_routable(state: ChannelState) -> str:
    """Why CC routes no call to a channel, in words a person can act on."""
    name = state.name
    if state.enabled_override is False:
        return (
            f"channel {name} is switched off by the platform operator (who turns it back on "
            f"with PATCH /v1/channels/{name})"
        )
    reason = f": {state.reason}" if state.reason else ""
    return f"channel {name} is unhealthy{reason}; CC routes calls to it again once it recovers"


def refusals(session: Session, names: list[str]) -> str:
    """Why none of ``names`` is routable (each channel's reason, in order)."""
    return "; ".join(why_not_routable(state_of(session, name)) for name in names)


def routable_channels(session: Session, names: list[str]) -> set[str]:
    states = {s.name: s for s in session.exec(select(ChannelState)).all()}
    return {name for name in names if routable(states.get(name) or _unsaid(name))}


def _state_to_write(session: Session, name: str) -> ChannelState:
    return session.get(ChannelState, name) or ChannelState(name=name, updated=now_ms())


def set_override(session: Session, name: str, enabled: bool | None) -> ChannelState:
    """The operator pins routing on or off (``None`` clears the pin: health decides again)."""
    state = _state_to_write(session, name)
    state.enabled_override, state.updated = enabled, now_ms()
    session.add(state)
    session.flush()
    return state


def write_verdict(session: Session, name: str, healthy: bool, reason: str | None) -> None:
    state = _state_to_write(session, name)
    state.healthy, state.reason, state.updated = healthy, reason[:255] if reason else None, now_ms()
    session.add(state)


@dataclass(frozen=True)
class ChannelFacts:
    error_rate: float  # share of recent calls that ended in a channel error
    last_event_time: int | None  # when the channel's last vendor event came


def channel_facts(
    session: Session, name: str, since_ms: int, tenant: str | None = None
) -> ChannelFacts:
    """What the channel's calls since ``since_ms`` (of one tenant, when given: a tenant sees
    its own error rate, never the others') and its events say about it."""
    query = select(CallRecordRow.close_type).where(
        CallRecordRow.channel == name,
        CallRecordRow.created >= since_ms,
        col(CallRecordRow.close_type).is_not(None),
    )
    if tenant is not None:
        query = query.where(CallRecordRow.tenant == tenant)
    closed = session.exec(query).all()
    errors = sum(1 for close_type in closed if close_type in _STORED_CHANNEL_ERRORS)
    error_rate = errors / len(closed) if closed else 0.0
    return ChannelFacts(error_rate, last_event_received(session, name))


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
            col(CallRecordRow.vendor_call_id).is_not(None),
            CallRecordRow.created < cutoff,
            ~heard_of,
        )
    ).one()
    return int(waiting)
