"""How fast ``GET /v1/stats`` is on a large call table.

Seeds N call records (default 1,000,000, 60 % of them bridged) into a fresh database, for
``--tenants`` tenants (default 1: the whole table is the one tenant's, the hardest case;
200 spreads it as ``bench.query_calls`` does), over ``--days`` days (default 30; 0: 100 ms
apart, about 28 hours for a million, the densest case), builds the kept figures from them
(``store.figures.rebuild``, as the migration does), then times the store's figures query
(the one the API runs) for each grouping over the last day, the last 7 days and
everything, each ending mid-minute, and prints p50 and p99 of ``--repeat`` runs each.
Uses the real migrations and indexes.

    .venv/bin/python -m bench.stats [--rows 1000000] [--tenants 1] [--days 30] [--url sqlite:///var/bench_stats.db]
"""

from __future__ import annotations

import argparse
import statistics
import time

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from bench.query_calls import TENANT, seed
from store.db import make_engine, session_scope
from store.figures import rebuild
from store.models import CallRecordRow
from store.stats import DAY_MS, StatsBy, call_figures


def timed(session: Session, since: int, until: int, by: StatsBy | None, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        call_figures(session, TENANT, since, until, by)
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=1)
    parser.add_argument("--url", default="sqlite:///var/bench_stats.db")
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--no-seed", action="store_true")
    args = parser.parse_args()
    if not args.no_seed:
        began = time.perf_counter()
        # Every call closed but those of the last 5 minutes (live), as on a working system.
        seed(args.url, args.rows, tenants=args.tenants, days=args.days, states=("close",))
        with session_scope(make_engine(args.url)) as session:
            last = session.exec(select(func.max(col(CallRecordRow.created)))).one()
            live = col(CallRecordRow.created) > last - 300_000
            session.exec(update(CallRecordRow).where(live).values(state="conn", close_type=None))
        took = time.perf_counter() - began
        print(f"seeded {args.rows} rows for {args.tenants} tenant(s) in {took:.0f} s")
        began = time.perf_counter()
        with session_scope(make_engine(args.url)) as session:
            counted = rebuild(session, TENANT)
        took = time.perf_counter() - began
        print(f"kept figures built from {counted} closed calls in {took:.0f} s")
    engine = make_engine(args.url)
    with Session(engine) as session:
        where = col(CallRecordRow.tenant) == TENANT
        last = session.exec(select(func.max(col(CallRecordRow.created))).where(where)).one()
        mine = session.exec(select(func.count()).where(where)).one()
        ranges = {"last day": DAY_MS, "last 7 days": 7 * DAY_MS, "all": last + 1}
        print(f"\ntenant {TENANT}: {mine} calls; {args.repeat} runs each\n")
        print(
            "| by | range | calls in range | p50 (ms) | p99 (ms) |\n| --- | --- | --- | --- | --- |"
        )
        for name, span in ranges.items():
            since = max(0, last + 1 - span)
            figures = call_figures(session, TENANT, since, last + 1, None)
            count = figures[0].calls if figures else 0
            for by in (None, *StatsBy):
                samples = sorted(timed(session, since, last + 1, by, args.repeat))
                p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
                label = by.value if by else "(none)"
                p50 = statistics.median(samples)
                print(f"| {label} | {name} | {count} | {p50:.1f} | {p99:.1f} |")
    engine.dispose()


if __name__ == "__main__":
    main()
