"""Figures of a tenant's calls (``GET /v1/stats``), computed in the database from the records.

A call counts in the range by when it was created (``since`` ≤ created < ``until``, the index
``(tenant, created, id)``). Per group (channel, agent, close_type, the UTC day, or none):

- ``calls``: records; ``placed``: those a vendor took (it gave its call id);
  ``connected``: those bridged (``conn_time``); the answer rate is connected / placed;
- talk seconds of the connected calls that have ended (``duration``, final only then):
  sum, p50, p95;
- placement-to-answer seconds of the same calls, created (the app's request) → bridged:
  p50, p95 (to the millisecond: computed in ms, which every database divides alike).

Percentiles are nearest-rank (the smallest value with at least p % of the group at or below
it), computed with window functions, the same on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, case, func, select
from sqlmodel import Session

from store.models import CallRecordRow

_T: Table = CallRecordRow.__table__  # type: ignore[attr-defined]
DAY_MS = 86_400_000


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


def _key(by: StatsBy | None) -> ColumnElement[Any]:
    if by is None:
        return _T.c.tenant  # one group: the range is the tenant's
    if by is StatsBy.DAY:
        return _T.c.created - _T.c.created % DAY_MS  # the UTC day's start, on every database
    return _T.c[by.value]


def _percentile(rank: ColumnElement[Any], size: ColumnElement[Any], value: Any, p: int) -> Any:
    """Nearest rank: the value whose rank is the first with rank/size ≥ p %."""
    return func.min(case((rank * 100 >= size * p, value)))


def call_figures(
    session: Session,
    tenant: str,
    since: int,
    until: int,
    by: StatsBy | None = None,
    direction: str | None = None,
) -> list[GroupFigures]:
    """One row per group with calls in the range, the largest group first."""
    key = _key(by)
    where = [_T.c.tenant == tenant, _T.c.created >= since, _T.c.created < until]
    if direction is not None:
        where.append(_T.c.direction == direction)
    connected = _T.c.conn_time.is_not(None)
    ended = and_(connected, _T.c.state == "close")  # its duration is final
    counts = (
        select(
            key.label("grp"),
            func.count().label("calls"),
            func.count(_T.c.call_id).label("placed"),
            func.count(_T.c.conn_time).label("connected"),
            func.coalesce(func.sum(case((ended, _T.c.duration), else_=0)), 0).label("talk"),
        )
        .where(*where)
        .group_by(key)
    )
    waited = _T.c.conn_time - _T.c.created  # ms
    ranked = (
        select(
            key.label("grp"),
            _T.c.duration.label("talked"),
            waited.label("waited"),
            func.row_number().over(partition_by=key, order_by=_T.c.duration).label("rank_talk"),
            func.row_number().over(partition_by=key, order_by=waited).label("rank_wait"),
            func.count().over(partition_by=key).label("size"),
        )
        .where(*where, ended)
        .subquery()
    )
    spreads = select(
        ranked.c.grp,
        _percentile(ranked.c.rank_talk, ranked.c.size, ranked.c.talked, 50).label("talk_p50"),
        _percentile(ranked.c.rank_talk, ranked.c.size, ranked.c.talked, 95).label("talk_p95"),
        _percentile(ranked.c.rank_wait, ranked.c.size, ranked.c.waited, 50).label("wait_p50"),
        _percentile(ranked.c.rank_wait, ranked.c.size, ranked.c.waited, 95).label("wait_p95"),
    ).group_by(ranked.c.grp)
    spread_of = {row.grp: row for row in session.connection().execute(spreads)}
    figures = []
    for row in session.connection().execute(counts):
        spread = spread_of.get(row.grp)
        figures.append(
            GroupFigures(
                key=None if by is None else _plain(row.grp),
                calls=row.calls,
                placed=row.placed,
                connected=row.connected,
                talk_seconds=Spread(
                    int(row.talk),
                    _whole(spread.talk_p50) if spread else None,
                    _whole(spread.talk_p95) if spread else None,
                ),
                answer_p50_s=_seconds(spread.wait_p50) if spread else None,
                answer_p95_s=_seconds(spread.wait_p95) if spread else None,
            )
        )
    figures.sort(key=lambda f: (-f.calls, str(f.key)))
    return figures


def _plain(value: Any) -> str | int | None:
    return value if value is None or isinstance(value, str) else int(value)


def _whole(value: Any) -> int | None:
    return None if value is None else int(value)


def _seconds(ms: Any) -> float | None:
    return None if ms is None else int(ms) / 1000
