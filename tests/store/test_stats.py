"""store/stats.py on SQLite, PostgreSQL and MariaDB: a small data set whose figures are
worked out by hand, and a seeded random one checked against figures computed here in Python
(nearest-rank percentiles), grouped every way."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from store.histogram import bucket
from store.stats import DAY_MS, GroupFigures, StatsBy, call_figures
from tests.api.seed import bulk_insert, call_row

DAY = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS  # a UTC midnight
UNTIL = DAY + 2 * DAY_MS


def figures(engine: Engine, by: StatsBy | None = None, **kw: Any) -> list[GroupFigures]:
    with Session(engine) as session:
        return call_figures(session, kw.pop("tenant", "t1"), DAY, UNTIL, by, **kw)


def connected(
    created: int, waited_ms: int, talked_s: int, tenant: str = "t1", **fields: Any
) -> dict[str, Any]:
    conn = created + waited_ms
    return call_row(
        tenant,
        created,
        vendor_call_id=f"v{created}",
        conn_time=conn,
        close_time=conn + talked_s * 1000,
        duration=talked_s,
        **fields,
    )


def test_figures_worked_out_by_hand(db_engine: Engine) -> None:
    rows = [
        connected(DAY + 1_000, 5_000, 10, channel="e9", agent="a1"),
        # bridged, still talking: connected, but no talk or answer figures until it ends
        connected(DAY + 500, 1_000, 0, channel="e9", agent="a1", state="conn", close_type=None),
        connected(DAY + 2_000, 7_250, 30, channel="e9", agent="a1", close_type="5"),
        call_row(
            "t1",
            DAY + 3_000,
            channel="e9",
            agent="a2",
            vendor_call_id="v3",
            duration=0,
            close_type="2",
        ),
        call_row("t1", DAY + 4_000, channel="e9", agent="a2", duration=0, close_type="6"),
        call_row(
            "t1", DAY + DAY_MS + 5, channel="hw", vendor_call_id="v5", duration=0, close_type="4"
        ),
        # not counted: another tenant, and calls outside [DAY, UNTIL)
        connected(DAY + 6_000, 1_000, 99, tenant="t2"),
        connected(DAY - 1, 1_000, 99),
        connected(UNTIL, 1_000, 99),
    ]
    bulk_insert(db_engine, rows)
    [e9, hw] = figures(db_engine, StatsBy.CHANNEL)
    assert (e9.key, e9.calls, e9.placed, e9.connected) == ("e9", 5, 4, 3)
    assert (e9.talk_seconds.sum, e9.talk_seconds.p50, e9.talk_seconds.p95) == (40, 10, 30)
    # 5 s and 7.25 s, each its bucket's start (under 1 % below)
    assert (e9.answer_p50_s, e9.answer_p95_s) == (4.994, 7.194)
    assert (hw.key, hw.calls, hw.placed, hw.connected) == ("hw", 1, 1, 0)
    assert (hw.talk_seconds.sum, hw.talk_seconds.p50, hw.answer_p50_s) == (0, None, None)
    [everything] = figures(db_engine)
    assert (everything.key, everything.calls, everything.connected) == (None, 6, 3)
    days = {f.key: f.calls for f in figures(db_engine, StatsBy.DAY)}
    assert days == {DAY: 5, DAY + DAY_MS: 1}
    closes = {f.key: f.calls for f in figures(db_engine, StatsBy.CLOSE_TYPE)}
    assert closes == {None: 1, "0": 1, "5": 1, "2": 1, "6": 1, "4": 1}
    agents = {f.key: (f.calls, f.connected) for f in figures(db_engine, StatsBy.AGENT)}
    assert agents == {"a1": (3, 3), "a2": (2, 0), "hw-1": (1, 0)}
    assert figures(db_engine, tenant="nobody") == []
    assert [f.calls for f in figures(db_engine, direction="in")] == []


def _rank(values: list[int], p: int) -> int | None:
    """Nearest rank: the smallest value with at least p % of them at or below it."""
    ordered = sorted(values)
    return ordered[math.ceil(len(ordered) * p / 100) - 1] if ordered else None


def _seeded_rows() -> list[dict[str, Any]]:
    rng = random.Random(24)
    rows = []
    for _ in range(300):
        created = DAY + rng.randrange(2 * DAY_MS)
        fields = {
            "channel": rng.choice(["e9", "hw", "jy"]),
            "agent": rng.choice(["a", "b"]),
            "close_type": rng.choice(["0", "2", "4"]),
        }
        if rng.random() < 0.6:
            rows.append(
                connected(created, rng.randrange(1, 60_000), rng.randrange(0, 1_500), **fields)
            )
        elif rng.random() < 0.2:  # open: still talking, ringing, or waiting to be placed
            state = rng.choice(["conn", "init", "scheduled"])
            talking = {"conn_time": created + 1_000} if state == "conn" else {}
            rows.append(
                call_row("t1", created, state=state, **{**fields, "close_type": None}, **talking)
            )
        else:
            placed = {"vendor_call_id": f"v{created}"} if rng.random() < 0.5 else {}
            rows.append(call_row("t1", created, duration=0, **fields, **placed))
    return rows


def _ranges() -> list[tuple[int, int]]:
    """The whole two days, and ranges whose ends fall anywhere (mid-day, mid-minute)."""
    rng = random.Random(7)
    cut = [sorted(rng.randrange(DAY - 1_000, UNTIL + 1_000) for _ in range(2)) for _ in range(4)]
    return [(DAY, UNTIL), (DAY + 90_061_001, UNTIL - 3_599_999), *((a, b) for a, b in cut)]


@pytest.mark.parametrize("by", [None, *StatsBy])
def test_a_seeded_random_data_set_matches_figures_computed_here(
    db_engine: Engine, by: StatsBy | None
) -> None:
    """Counts and sums exact; percentiles the nearest rank of the values' buckets (each
    1 % wide), within 1 % below the exact nearest rank."""
    rows = _seeded_rows()
    bulk_insert(db_engine, rows)

    def key(row: dict[str, Any]) -> Any:
        if by is None:
            return None
        return row["created"] - row["created"] % DAY_MS if by is StatsBy.DAY else row[by.value]

    for since, until in _ranges():
        inside = [r for r in rows if since <= r["created"] < until]
        with Session(db_engine) as session:
            found = {f.key: f for f in call_figures(session, "t1", since, until, by)}
        assert set(found) == {key(r) for r in inside}
        for group, f in found.items():
            mine = [r for r in inside if key(r) == group]
            bridged = [r for r in mine if r.get("conn_time") is not None]
            talked = [r for r in bridged if r.get("state", "close") == "close"]
            assert (f.calls, f.connected) == (len(mine), len(bridged))
            assert f.placed == sum(1 for r in mine if r.get("vendor_call_id"))
            durations = [r["duration"] for r in talked]
            waits = [r["conn_time"] - r["created"] for r in talked]
            assert f.talk_seconds.sum == sum(durations)
            assert (f.talk_seconds.p50, f.talk_seconds.p95) == (
                _rank([bucket(d) for d in durations], 50),
                _rank([bucket(d) for d in durations], 95),
            )
            for p, seconds in ((50, f.answer_p50_s), (95, f.answer_p95_s)):
                exact = _rank(waits, p)
                assert seconds == (None if exact is None else bucket(exact) / 1000)
                assert exact is None or 0.99 * exact < bucket(exact) <= exact
