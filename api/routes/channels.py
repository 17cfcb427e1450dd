"""/v1/channels: each channel's routing state, and the operator's on/off override."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlmodel import Session

from api.deps import Caller, CallerOrOperatorDep, OperatorDep, StateDep
from api.errors import Problem
from api.openapi import errors
from core.types import ChannelMode
from store import channel_state
from store.db import now_ms

router = APIRouter(prefix="/v1/channels", tags=["channels"])
ERROR_WINDOW_MS = 15 * 60 * 1000


class ChannelPublic(BaseModel):
    name: str
    mode: ChannelMode
    healthy: bool
    enabled: bool  # routing on/off, as it stands (override, else health)
    override: bool | None  # the operator's pin, if any
    reason: str | None
    # Share of the last 15 minutes' calls that ended in a channel error: the tenant's own
    # calls for a tenant key, every tenant's for the operator.
    error_rate: float
    last_event_time: int | None


class ChannelPatch(BaseModel):
    enabled: bool | None  # null clears the override: health decides again


def _view(state: StateDep, session: Session, name: str, tenant: str | None) -> ChannelPublic:
    """The channel as ``tenant`` sees it (its own calls' error rate), or, for None, as the
    operator does (every tenant's)."""
    row = channel_state.state_of(session, name)
    facts = channel_state.channel_facts(session, name, now_ms() - ERROR_WINDOW_MS, tenant)
    return ChannelPublic(
        name=name,
        mode=state.channels[name].mode,
        healthy=row.healthy,
        enabled=channel_state.routable(row),
        override=row.enabled_override,
        reason=row.reason,
        error_rate=facts.error_rate,
        last_event_time=facts.last_event_time,
    )


@router.get("", response_model=list[ChannelPublic])
async def list_channels(state: StateDep, who: CallerOrOperatorDep) -> list[ChannelPublic]:
    """Each channel: mode (webhook or poll), health, whether routing is on, why, and its recent
    error rate (a tenant sees its own calls'; the operator all). Any tenant key or the operator."""
    tenant = who.tenant.id if isinstance(who, Caller) else None
    return await state.in_store(
        lambda s: [_view(state, s, name, tenant) for name in state.channels]
    )


@router.patch(
    "/{name}",
    response_model=ChannelPublic,
    responses=errors(403, s403="`forbidden`: only the platform operator pins channel routing"),
)
async def patch_channel(
    name: str, body: ChannelPatch, state: StateDep, operator: OperatorDep
) -> ChannelPublic:
    """Channels are shared by every tenant: only the platform operator pins routing."""
    if name not in state.channels:
        raise Problem(404, "not_found", "no such channel")

    def patch(session: Session) -> ChannelPublic:
        channel_state.set_override(session, name, body.enabled)
        return _view(state, session, name, None)

    return await state.in_store(patch)
