"""Retention under load: purging a million old vendor events while calls run must keep webhook
acks within their goal: p99 ≤ 50 ms (``bench/webhooks.py``), or, where this machine misses that
with no purge running, no more than 1.5× the p99 it has then.

    .venv/bin/python -m bench.retention [--events 1000000] [--rate 50] [--seconds 30]
        [--database sqlite|postgres] [--out FILE]

Starts the stack as ``make run`` does (``bench/stack.py``), with the retention Schedule's own
runs far apart (the bench triggers the one it measures). Seeds ``--events`` raw e9 events,
ten per call, on closed calls 100 days old (past CC_RETENTION_DAYS, 90), straight into the
database. Places ``--calls`` e9 calls that stay up. Then:

1. **before**: signed e9 webhooks for the live calls, open-loop at ``--rate`` for
   ``--seconds`` (each ack's latency from its scheduled send), nothing purged meanwhile;
2. **during**: the schedule triggered (a RetentionWorkflow run, as every interval does), and
   the same load offered again while it deletes;
3. the purge is waited for: how long it took, events per second, batches.

Prints one table (and writes it to ``--out``): each load's acks, latency percentiles, errors,
the goal; how much of the "during" load the purge overlapped; the purge's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import sqlalchemy as sa
import uvloop
from temporalio.client import ScheduleActionExecutionStartWorkflow, ScheduleHandle

from bench.e2e import pct
from bench.stack import BenchStack, StackOptions, report
from bench.webhooks import MARK, Run, live_calls, offer, webhooks
from contracts.client import connect_temporal
from contracts.retention import RetentionResult, retention_schedule_id
from store.db import make_engine, now_ms
from store.models import CallRecordRow, VendorEvent
from store.retention import DAY_MS
from workflows.retention import RetentionWorkflow

GOAL_P99_MS = 50.0
EVENTS_PER_CALL = 10
CHUNK = 20_000  # rows per INSERT statement batch while seeding


def seed_old(database_url: str, events: int) -> float:
    """``events`` raw events on closed calls 100 days old; returns the seconds it took."""
    started, engine = time.monotonic(), make_engine(database_url)
    created = now_ms() - 100 * DAY_MS
    calls = (events + EVENTS_PER_CALL - 1) // EVENTS_PER_CALL
    body = '{"eventId": "old", "event": "hangup", "called": "+8613900000002"}'
    with engine.begin() as conn:
        for first in range(0, calls, CHUNK // EVENTS_PER_CALL):
            ids = range(first, min(calls, first + CHUNK // EVENTS_PER_CALL))
            conn.execute(sa.insert(CallRecordRow), [
                {"tenant": "demo", "agent": "+8613700000010", "caller": "+8613800000001",
                 "called": "+8613900000002", "channel": "e9", "state": "close", "close_type": "0",
                 "created": created + n, "updated": created + n, "cc_call_id": f"old{n:010d}",
                 "display": "passthrough", "max_duration": 60, "record_audio": False,
                 "attempts": "[]", "direction": "out", "duration": 0}
                for n in ids
            ])  # fmt: skip
            conn.execute(sa.insert(VendorEvent), [
                {"channel": "e9", "dedupe_key": f"old{n:010d}-{k}", "cc_call_id": f"old{n:010d}",
                 "vendor_call_id": f"v{n}", "kind": "hangup", "event_time": created + n,
                 "received": created + n, "content_type": "application/json", "body": body,
                 "event_json": "{}", "applied": True, "signal_attempts": 1}
                for n in ids for k in range(EVENTS_PER_CALL)
                if n * EVENTS_PER_CALL + k < events
            ])  # fmt: skip
            sys.stderr.write(f"\r  seeding {min(calls, first + len(ids)) * EVENTS_PER_CALL}")
    sys.stderr.write("\n")
    engine.dispose()
    return time.monotonic() - started


def old_events_left(database_url: str) -> int:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(VendorEvent.__table__)  # type: ignore[attr-defined]
        left = conn.execute(query.where(sa.column("dedupe_key").startswith("old"))).scalar_one()
    engine.dispose()
    return int(left)


async def started_run(schedule: ScheduleHandle) -> str:
    """The workflow id of the run the trigger started."""
    for _ in range(300):
        for action in (await schedule.describe()).info.recent_actions:
            if isinstance(action.action, ScheduleActionExecutionStartWorkflow):
                return action.action.workflow_id
        await asyncio.sleep(0.2)  # noqa: ASYNC110 - polling another process's state
    raise SystemExit("the triggered retention run did not start within 60 s")


def load_row(name: str, run: Run, rate: float, note: str, goal: str) -> str:
    ms = " | ".join(f"{pct(run.latencies_ms, p):.0f}" for p in (50, 95, 99, 100))
    return f"| {name} | {rate:g} | {run.rate:.1f} | {ms} | {run.errors.total()} | {note} | {goal} |"


def within_goal(before: Run, during: Run) -> str:
    """The ack goal is p99 ≤ 50 ms (bench/webhooks.py); where the machine misses it with no
    purge running, the purge must not make it more than half as bad again."""
    p99, base = pct(during.latencies_ms, 99), pct(before.latencies_ms, 99)
    bound = max(GOAL_P99_MS, 1.5 * base)
    return f"p99 ≤ max(50, 1.5 × before) = {bound:.0f} ms {MARK[p99 <= bound]}"


async def measure(stack: BenchStack, args: argparse.Namespace) -> str:
    calls = await live_calls(stack, args.calls)
    token, url = stack.settings.e9_auth_token, f"{stack.api_url}/webhooks/e9"
    count = int(args.rate * args.seconds)
    await offer(url, webhooks(token, calls, 2 * len(calls), "warm-"), 50, "warm-up")
    stack.wait_quiet()
    before = await offer(url, webhooks(token, calls, count, "before-"), args.rate, "before")

    client = await connect_temporal(stack.settings)
    schedule = client.get_schedule_handle(retention_schedule_id(stack.settings.task_queue))
    triggered = time.monotonic()
    await schedule.trigger()
    during = await offer(url, webhooks(token, calls, count, "during-"), args.rate, "during")
    offered_until = time.monotonic()
    run_id = await started_run(schedule)
    run = client.get_workflow_handle_for(RetentionWorkflow.run, run_id)
    result: RetentionResult = await run.result()
    described = await run.describe()
    assert described.close_time is not None
    purge_s = (described.close_time - described.start_time).total_seconds()
    left = await asyncio.to_thread(old_events_left, stack.settings.database_url)
    calls_part = result.parts[0]
    overlap = min(1.0, purge_s / max(0.001, offered_until - triggered))  # it starts at once
    lines = [
        "| load | offered/s | acked/s | p50 ms | p95 ms | p99 ms | max ms | errors | meanwhile "
        "| goal |",
        "|" + " --- |" * 10,
        load_row("before", before, args.rate, "nothing purged", ""),
        load_row(
            "during",
            during,
            args.rate,
            f"purge ran for {overlap:.0%} of this load",
            within_goal(before, during),
        ),
        "",
        f"- purge: {calls_part.events:,} events of {calls_part.calls:,} calls in "
        f"{calls_part.batches:,} batches, {purge_s:.1f} s "
        f"({calls_part.events / purge_s:,.0f} events/s, CC_RETENTION_BATCH="
        f"{stack.settings.retention_batch} calls a batch, CC_RETENTION_PAUSE_S="
        f"{stack.settings.retention_pause_s}); old events left: {left:,} "
        f"{MARK[left == 0]}",
        f"- errors: before {dict(before.errors) or 'none'}, during {dict(during.errors) or 'none'}",
        f"- seeded {args.events:,} events in {args.seeded_s:.0f} s; database {args.database}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    # 300/s is beyond a 2-core machine with or without a purge (docs/benchmarks.md): the
    # default is a load the stack carries, so what the purge adds is what shows.
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--calls", type=int, default=20, help="live calls the webhooks go to")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    # The schedule's own runs a day apart: the bench triggers the one it measures.
    options = StackOptions(database=args.database, env={"CC_RETENTION_EVERY_S": "86400"})
    with BenchStack(options) as stack:
        print(f"stack in {stack.dir} ({args.database})", file=sys.stderr)
        args.seeded_s = seed_old(stack.settings.database_url, args.events)
        text = uvloop.run(measure(stack, args))
    report(text, args.out)


if __name__ == "__main__":
    main()
