"""/v1/channels: each channel's routing state, and the operator's on/off override."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlmodel import Session

from api.deps import CallerDep, StateDep
from api.errors import Problem
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
    error_rate: float  # share of the last 15 minutes' calls that ended in a channel error
    last_event_time: int | None


class ChannelPatch(BaseModel):
    enabled: bool | None  # null clears the override: health decides again


def _view(state: StateDep, session: Session, name: str) -> ChannelPublic:
    row = channel_state.state_of(session, name)
    facts = channel_state.channel_facts(session, name, now_ms() - ERROR_WINDOW_MS)
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
async def list_channels(state: StateDep, caller: CallerDep) -> list[ChannelPublic]:
    return await state.in_store(lambda s: [_view(state, s, name) for name in state.channels])


@router.patch("/{name}", response_model=ChannelPublic)
async def patch_channel(
    name: str, body: ChannelPatch, state: StateDep, caller: CallerDep
) -> ChannelPublic:
    if caller.scope != "admin":
        raise Problem(403, "forbidden", "changing routing needs an operator (admin) key")
    if name not in state.channels:
        raise Problem(404, "not_found", "no such channel")

    def patch(session: Session) -> ChannelPublic:
        channel_state.set_override(session, name, body.enabled)
        return _view(state, session, name)

    return await state.in_store(patch)
