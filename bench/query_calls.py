"""How fast a page of ``GET /v1/calls`` is on a large call table.

Seeds N call records (default 1,000,000; 200 tenants' worth of noise around one tenant of
interest) into a fresh database, then times the store's page query (the one the API runs)
for the first page and for a page deep in the result, unfiltered and with each filter, and
prints the plan of one of them. Uses the real migrations, so the indexes are the shipped ones.

    .venv/bin/python -m bench.query_calls [--rows 1000000] [--url sqlite:///var/bench.db]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

from sqlalchemy import insert, text
from sqlmodel import Session, SQLModel

from store.call_query import CallFilter, Keyset, page_statement, query_calls
from store.db import make_engine
from store.migrate import upgrade
from store.models import CallRecordRow

TENANT = "t000"
CHANNELS = ("e9", "hw", "jy")
STATES = ("init", "conn", "close")


def seed(
    url: str,
    rows: int,
    batch: int = 20_000,
    tenants: int = 200,
    days: float = 0,
    states: tuple[str, ...] = STATES,
) -> None:
    """``rows`` calls 100 ms apart (about 28 hours for a million), or spread over ``days``,
    each in one of ``states`` at random."""
    gap = max(1, int(days * 86_400_000 / rows)) if days else 100
    engine = make_engine(url)
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(url)
    rng = random.Random(1)
    start = 1_700_000_000_000
    with Session(engine) as session:
        for offset in range(0, rows, batch):
            chunk: list[dict[str, Any]] = []
            for i in range(offset, min(rows, offset + batch)):
                created = start + i * gap + rng.randrange(gap)
                talked = rng.random() < 0.6  # bridged: answered 2 to 30 s after placement
                chunk.append(
                    {
                        "tenant": f"t{rng.randrange(tenants):03d}",
                        "vendor_call_id": f"v{i}" if talked or rng.random() < 0.5 else None,
                        "conn_time": created + rng.randrange(2_000, 30_000) if talked else None,
                        "agent": f"a{rng.randrange(500)}",
                        "caller": f"+86138{rng.randrange(10**8):08d}",
                        "called": f"+86139{rng.randrange(10**8):08d}",
                        "channel": rng.choice(CHANNELS),
                        "state": rng.choice(states),
                        "close_type": str(rng.choice((0, 0, 0, 1, 2, 3, 4, 5, 6, 7))),
                        "user": f"u{rng.randrange(1000)}",
                        "duration": rng.randrange(600) if talked else 0,
                        "created": created,
                        "updated": created,
                        "cc_call_id": f"b{i:015d}",
                        "display": "platform",
                        "max_duration": 3600,
                        "record_audio": True,
                        "attempts": "[]",
                    }
                )
            session.execute(insert(CallRecordRow), chunk)
            session.commit()
    engine.dispose()


def timed(session: Session, flt: CallFilter, after: Keyset | None, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        query_calls(session, flt, after, 50)
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default="sqlite:///var/bench_calls.db")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--no-seed", action="store_true")
    args = parser.parse_args()
    if not args.no_seed:
        began = time.perf_counter()
        seed(args.url, args.rows)
        print(f"seeded {args.rows} rows in {time.perf_counter() - began:.0f} s")
    engine = make_engine(args.url)
    with Session(engine) as session:
        sample = session.get(CallRecordRow, args.rows // 2)
        assert sample is not None
        deep = Keyset(created=sample.created, id=sample.id or 0)
        filters = {
            "none": CallFilter(tenant=TENANT),
            "state=close&channel=hw": CallFilter(tenant=TENANT, state="close", channel="hw"),
            "agent": CallFilter(tenant=TENANT, agent="a7"),
            "user": CallFilter(tenant=TENANT, user="u7"),
            "called": CallFilter(tenant=TENANT, called=sample.called),
            "close_type=6": CallFilter(tenant=TENANT, close_type="6"),
            "since (last 10%)": CallFilter(tenant=TENANT, since=sample.created),
        }
        print("| filter | first page (ms) | page at mid-table cursor (ms) |\n| --- | --- | --- |")
        for name, flt in filters.items():
            first = timed(session, flt, None, args.repeat)
            middle = timed(session, flt, deep, args.repeat)
            print(f"| {name} | {first:.2f} | {middle:.2f} |")
        if engine.dialect.name == "sqlite":
            statement = page_statement(filters["state=close&channel=hw"], deep, 50)
            compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
            for row in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")):
                print("plan:", row[-1])
    engine.dispose()


if __name__ == "__main__":
    main()
