"""Figures of a tenant's calls (``GET /v1/stats``), from what the database keeps of them.

A call counts in the range by when it was created (``since`` ≤ created < ``until``). Per group
(channel, agent, close_type, the UTC day, or none):

- ``calls``: records; ``placed``: those a vendor took (it gave its call id);
  ``connected``: those bridged (``conn_time``); the answer rate is connected / placed;
- talk seconds of the connected calls that have ended (``duration``, final only then):
  sum, p50, p95;
- placement-to-answer seconds of the same calls, created (the app's request) → bridged:
  p50, p95 (computed in ms).

Closed calls are read from the figures kept as they close (``store.figures``): whole days of
the range, then whole hours and minutes at its ends; the closed calls of the parts of a
minute at each end, and every open call of the range (few: they are live or waiting), from
the records by the index ``(tenant, state, created)``. So a request reads a few hundred rows
whatever the range holds.

Percentiles are nearest-rank (the smallest value with at least p % of the group at or below
it) over histograms whose buckets are 1 % wide (``store.histogram``): exact for values
under 100 (talk under 100 s, answers under 0.1 s), otherwise the bucket's start, less than
1 % below the value.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, and_, select
from sqlmodel import Session

from core.types import CallState
from store.figures import DAY_MS, SPANS, CallFacts, Tally, facts_query, group_value
from store.models import CallFigures, CallRecordRow

_T: Table = CallRecordRow.__table__  # type: ignore[attr-defined]
_F: Table = CallFigures.__table__  # type: ignore[attr-defined]


class StatsBy(StrEnum):
    CHANNEL = "channel"
    AGENT = "agent"
    CLOSE_TYPE = "close_type"
    DAY = "day"


@dataclass(frozen=True)
class Spread:
    sum: int
    p50: int | None
    p95: int | None


@dataclass(frozen=True)
class GroupFigures:
    key: str | int | None  # the channel, agent, close type or day (its UTC start, epoch ms)
    calls: int
    placed: int
    connected: int
    talk_seconds: Spread
    answer_p50_s: float | None  # placement to answer
    answer_p95_s: float | None


def call_figures(
    session: Session,
    tenant: str,
    since: int,
    until: int,
    by: StatsBy | None = None,
    direction: str | None = None,
) -> list[GroupFigures]:
    """One row per group with calls in the range, the largest group first."""
    dim = "" if by in (None, StatsBy.DAY) else by.value
    tallies: defaultdict[Any, Tally] = defaultdict(Tally)
    spans, raw = cover(since, until)
    for stored in _kept(session, tenant, spans, dim, direction):
        tallies[_stored_group(stored, by)].add_stored(stored)
    for call in _read(session, tenant, since, until, raw, direction):
        tallies[_group_of(call, by)].add_call(call)
    groups = [_figures(by, grp, t) for grp, t in tallies.items() if t.calls > 0]
    groups.sort(key=lambda f: (-f.calls, str(f.key)))
    return groups


def cover(since: int, until: int) -> tuple[list[tuple[int, int, int]], list[tuple[int, int]]]:
    """``[since, until)`` as whole days, then whole hours and minutes at its ends (each
    ``(span, first start, end)``), and what is left: the parts of a minute at each end."""
    spans: list[tuple[int, int, int]] = []
    raw: list[tuple[int, int]] = []

    def walk(lo: int, hi: int, sizes: tuple[int, ...]) -> None:
        if lo >= hi:
            return
        if not sizes:
            raw.append((lo, hi))
            return
        size, smaller = sizes[0], sizes[1:]
        first, end = -(-lo // size) * size, hi - hi % size
        if first >= end:
            walk(lo, hi, smaller)
            return
        spans.append((size, first, end))
        walk(lo, first, smaller)
        walk(end, hi, smaller)

    walk(since, until, SPANS)
    return spans, raw


def _kept(
    session: Session,
    tenant: str,
    spans: list[tuple[int, int, int]],
    dim: str,
    direction: str | None,
) -> Iterable[Any]:
    """The kept figures (closed calls) of the whole spans: one key range each."""
    where = [_F.c.tenant == tenant, _F.c.dim == dim]
    if direction is not None:
        where.append(_F.c.direction == direction)
    for size, first, end in spans:
        inside = (_F.c.span == size, _F.c.start >= first, _F.c.start < end)
        yield from session.connection().execute(select(_F).where(*where, *inside))


def _read(
    session: Session,
    tenant: str,
    since: int,
    until: int,
    raw: list[tuple[int, int]],
    direction: str | None,
) -> Iterable[CallFacts]:
    """From the records: the open calls of the whole range, and the closed calls of what
    whole minutes do not cover."""
    where = [_T.c.tenant == tenant]
    if direction is not None:
        where.append(_T.c.direction == direction)
    open_states = [state.value for state in CallState if state is not CallState.CLOSE]
    parts = [
        and_(_T.c.state.in_(open_states), _T.c.created >= since, _T.c.created < until),
        *(
            and_(_T.c.state == CallState.CLOSE.value, _T.c.created >= lo, _T.c.created < hi)
            for lo, hi in raw
        ),
    ]
    for part in parts:  # one by one: each is an index range (tenant, state, created)
        for found in session.connection().execute(facts_query().where(*where, part)):
            yield CallFacts(**found._mapping)


def _stored_group(stored: Any, by: StatsBy | None) -> Any:
    if by is None:
        return None
    return stored.start - stored.start % DAY_MS if by is StatsBy.DAY else stored.grp


def _group_of(call: CallFacts, by: StatsBy | None) -> Any:
    if by is None:
        return None
    if by is StatsBy.DAY:
        return call.created - call.created % DAY_MS
    return json.dumps(group_value(call, by.value))


def _figures(by: StatsBy | None, grp: Any, tally: Tally) -> GroupFigures:
    return GroupFigures(
        key=_key(by, grp),
        calls=tally.calls,
        placed=tally.placed,
        connected=tally.connected,
        talk_seconds=Spread(tally.talk_sum, tally.talk.percentile(50), tally.talk.percentile(95)),
        answer_p50_s=_seconds(tally.wait.percentile(50)),
        answer_p95_s=_seconds(tally.wait.percentile(95)),
    )


def _key(by: StatsBy | None, grp: Any) -> str | int | None:
    if by is None:
        return None
    if by is StatsBy.DAY:
        return int(grp)
    return _plain(json.loads(grp))


def _plain(value: Any) -> str | int | None:
    return value if value is None or isinstance(value, str) else int(value)


def _seconds(ms: Any) -> float | None:
    return None if ms is None else int(ms) / 1000
