"""The figures of closed calls, kept as they close (the ``call_figures`` table), so that
``GET /v1/stats`` adds up a few rows instead of reading every call of a range.

A closed call counts once in each of 12 rows: its minute, hour and UTC day (by
``created``), each with no group and by channel, agent and close type. A row holds counts,
the talk seconds' sum and two histograms (``store.histogram``, buckets 1 % wide):
talk seconds and placement-to-answer ms. Only closed calls are kept here: an open call's
figures still change with each vendor event, so ``store.stats`` reads those (few) from the
records.

Every change to a closed call's figures goes through ``count``: ``store.calls.save_record``
when a call closes (adds) or a closed call changes (a late event: takes the old figures
away, adds the new), ``drop_call`` (takes them away). The tenant's row is locked first, so a
tenant's closes update its rows one after another (no lost update, no deadlock between
them); another tenant's close does not wait. ``rebuild`` computes a tenant's rows from its
records (the migration's backfill, and rows written without the store).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert
from sqlmodel import Session, col, select

from core.types import CallState
from store.histogram import Histogram
from store.models import CallFigures, CallRecordRow
from store.quotas import hold

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
SPANS = (DAY_MS, HOUR_MS, MINUTE_MS)  # the largest first: how a range is covered
DIMS = ("", "channel", "agent", "close_type")
_KEY_NAMES = ("tenant", "dim", "span", "start", "direction", "grp")


_FACTS = (
    "tenant",
    "created",
    "direction",
    "channel",
    "agent",
    "close_type",
    "state",
    "vendor_call_id",
    "conn_time",
    "duration",
)


@dataclass(frozen=True)
class CallFacts:
    """What a call's figures are made of: its row's columns that ``call_figures`` reads."""

    tenant: str
    created: int
    direction: str
    channel: str
    agent: str
    close_type: str | None
    state: str
    vendor_call_id: str | None
    conn_time: int | None
    duration: int

    @classmethod
    def of(cls, row: Any) -> CallFacts:
        return cls(**{name: getattr(row, name) for name in _FACTS})


def facts_query() -> Any:
    """A select of the facts of calls (add the where)."""
    return select(*(col(getattr(CallRecordRow, name)).label(name) for name in _FACTS))


def stored_facts(session: Session, cc_call_id: str) -> CallFacts | None:
    """A call's facts as the database holds them now (not the session's copy of the row)."""
    query = facts_query().where(CallRecordRow.cc_call_id == cc_call_id)
    found = session.connection().execute(query).first()
    return None if found is None else CallFacts(**found._mapping)


class Tally:
    """Figures being added up (mutable): a call at a time, or a stored row at a time."""

    def __init__(self) -> None:
        self.calls = self.placed = self.connected = self.talk_sum = 0
        self.talk = Histogram()  # seconds
        self.wait = Histogram()  # ms

    def add_call(self, row: CallFacts, sign: int = 1) -> None:
        """A call row's figures (closed or open: an open call adds no talk or wait)."""
        self.calls += sign
        self.placed += sign * (row.vendor_call_id is not None)
        if row.conn_time is None:
            return
        self.connected += sign
        if row.state != CallState.CLOSE.value:
            return
        self.talk_sum += sign * row.duration
        self.talk.add(row.duration, sign)
        self.wait.add(row.conn_time - row.created, sign)

    def add_stored(self, row: Any) -> None:
        """A ``call_figures`` row (or any row with its columns)."""
        self.calls += row.calls
        self.placed += row.placed
        self.connected += row.connected
        self.talk_sum += row.talk_sum
        self.talk.add_stored(row.talk)
        self.wait.add_stored(row.wait)


def group_value(row: Any, dim: str) -> str | None:
    return None if dim == "" else getattr(row, dim)


def _keys(row: CallFacts) -> list[tuple[str, int, int, str, str]]:
    """The (dim, span, start, direction, grp) of the 12 rows a call counts in."""
    return [
        (
            dim,
            span,
            row.created - row.created % span,
            row.direction,
            json.dumps(group_value(row, dim)),
        )
        for span in SPANS
        for dim in DIMS
    ]


def count(session: Session, row: CallFacts | None, sign: int) -> None:
    """Add (sign 1) or take away (-1) a closed call's figures, in the caller's transaction
    (an open call's, or none, changes nothing)."""
    if row is None or row.state != CallState.CLOSE.value:
        return
    hold(session, row.tenant)
    for key in sorted(_keys(row)):
        pk = (row.tenant, *key)
        stored = session.get(CallFigures, pk, with_for_update=True, populate_existing=True)
        tally = Tally()
        if stored is not None:
            tally.add_stored(stored)
        tally.add_call(row, sign)
        if tally.calls <= 0:  # nothing left (or, never counted, nothing to take away)
            if stored is not None:
                session.delete(stored)
            continue
        if stored is None:
            stored = CallFigures.model_validate(_row(pk, tally))
        else:
            stored.sqlmodel_update(_columns(tally))
        session.add(stored)
    session.flush()


def _row(pk: tuple[Any, ...], tally: Tally) -> dict[str, Any]:
    """A ``call_figures`` row: its key (``_KEY_NAMES``) and the tally's figures."""
    return {**dict(zip(_KEY_NAMES, pk, strict=True)), **_columns(tally)}


def _columns(tally: Tally) -> dict[str, Any]:
    return {
        "calls": tally.calls,
        "placed": tally.placed,
        "connected": tally.connected,
        "talk_sum": tally.talk_sum,
        "talk": tally.talk.stored(),
        "wait": tally.wait.stored(),
    }


def rebuild(session: Session, tenant: str) -> int:
    """Compute the tenant's rows from its closed records, replacing what was kept, a UTC day
    at a time (every row's span lies within one day, so memory holds one day's rows).
    Returns how many closed calls were counted."""
    hold(session, tenant)
    session.connection().execute(delete(CallFigures).where(col(CallFigures.tenant) == tenant))
    closed = (CallRecordRow.tenant == tenant, CallRecordRow.state == CallState.CLOSE.value)
    created = col(CallRecordRow.created)
    counted = 0
    day = 0
    while True:  # from each day with closed calls to the next (days without are skipped)
        first = session.exec(select(func.min(created)).where(*closed, created >= day)).one()
        if first is None:
            return counted
        day = first - first % DAY_MS
        tallies: defaultdict[tuple[str, int, int, str, str], Tally] = defaultdict(Tally)
        query = facts_query().where(*closed, created >= day, created < day + DAY_MS)
        for found in session.connection().execute(query):
            counted += 1
            call = CallFacts(**found._mapping)
            for key in _keys(call):
                tallies[key].add_call(call)
        rows = [_row((tenant, *key), tally) for key, tally in tallies.items()]
        session.connection().execute(insert(CallFigures), rows)
        day += DAY_MS
