"""``GET /v1/stats``: figures of the tenant's calls over a range, by channel, agent, close
type or day (API.md, "Figures"), added up in the database from the figures kept as calls
close and the open calls' records (``store/stats.py``). Any key of the tenant may read
them: they hold no customer's number."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import CallerDep, StateDep
from api.errors import invalid_field
from api.openapi import errors
from core.types import Direction
from store import stats
from store.db import now_ms
from store.stats import StatsBy

router = APIRouter(prefix="/v1/stats", tags=["stats"])

MAX_MS = 2**63 - 1
DEFAULT_RANGE_MS = 7 * stats.DAY_MS
# The longest range one request may ask about: one tenant's report stays one bounded scan.
MAX_RANGE_MS = 366 * stats.DAY_MS


class TalkSeconds(BaseModel):
    sum: int = Field(description="talk seconds of the connected calls that have ended")
    p50: int | None = Field(
        description="median talk seconds (nearest rank, in buckets 1 % wide: exact under "
        "100 s, else less than 1 % below); null: none talked"
    )
    p95: int | None = Field(description="95th percentile of talk seconds (as p50)")


class AnswerSeconds(BaseModel):
    p50: float | None = Field(
        description="median seconds from the app's request (`created`) to the bridge, of the "
        "connected calls that have ended (nearest rank, in buckets 1 % wide of the ms: "
        "exact under 0.1 s, else less than 1 % below)"
    )
    p95: float | None = Field(description="95th percentile, `created` to the bridge")


class StatsGroup(BaseModel):
    key: str | int | None = Field(
        description="the group: a channel, an agent line, a close type (its code, as stored), "
        "a day (its UTC start, epoch ms); null when not grouped"
    )
    calls: int = Field(description="calls created in the range")
    placed: int = Field(description="calls a vendor took (it gave its call id)")
    connected: int = Field(description="calls bridged (both legs)")
    answer_rate: float | None = Field(description="connected / placed; null when none placed")
    talk_seconds: TalkSeconds
    placement_to_answer_seconds: AnswerSeconds


class StatsPublic(BaseModel):
    since: int = Field(description="created >= since (epoch ms)")
    until: int = Field(description="created < until (epoch ms)")
    by: StatsBy | None
    groups: list[StatsGroup] = Field(description="one per group with calls, the largest first")


@router.get("", response_model=StatsPublic, responses=errors(422))
async def get_stats(
    state: StateDep,
    caller: CallerDep,
    since: Annotated[
        int | None, Query(ge=0, le=MAX_MS, description="created >= since; default: 7 days ago")
    ] = None,
    until: Annotated[
        int | None, Query(ge=0, le=MAX_MS, description="created < until; default: now")
    ] = None,
    by: Annotated[StatsBy | None, Query(description="group by; default: none")] = None,
    direction: Annotated[
        Direction | None, Query(description="`out` callbacks or `in` 400 calls; default both")
    ] = None,
) -> StatsPublic:
    """Counts, answer rate, talk seconds and placement-to-answer seconds of the tenant's
    calls created in `[since, until)` (at most 366 days). Any key."""
    end = now_ms() if until is None else until
    start = max(0, end - DEFAULT_RANGE_MS) if since is None else since
    if start >= end:
        raise invalid_field("since", "must be before until", "since must come before until")
    if end - start > MAX_RANGE_MS:
        raise invalid_field("since", "at most 366 days before until", "the range is too long")
    tenant, flow = caller.tenant.id, None if direction is None else direction.value
    figures = await state.in_store(lambda s: stats.call_figures(s, tenant, start, end, by, flow))
    return StatsPublic(since=start, until=end, by=by, groups=[_group(f) for f in figures])


def _group(figures: stats.GroupFigures) -> StatsGroup:
    talk = figures.talk_seconds
    return StatsGroup(
        key=figures.key,
        calls=figures.calls,
        placed=figures.placed,
        connected=figures.connected,
        answer_rate=round(figures.connected / figures.placed, 4) if figures.placed else None,
        talk_seconds=TalkSeconds(sum=talk.sum, p50=talk.p50, p95=talk.p95),
        placement_to_answer_seconds=AnswerSeconds(
            p50=figures.answer_p50_s, p95=figures.answer_p95_s
        ),
    )
