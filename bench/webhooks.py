"""Webhook ingest: how fast CC acknowledges signed vendor webhooks, beside a bare endpoint.

    .venv/bin/python -m bench.webhooks [--rate 300 | --rates 100,300] [--seconds 20]
        [--database sqlite|postgres] [--api-processes 1] [--out FILE]

Starts the stack as ``make run`` does (``bench/stack.py``), places ``--calls`` e9 calls that
never hang up (called number ending in 85) and waits until each is bridged. Then, per rate:

1. **CC**: e9 webhooks signed as the simulator signs them (HMAC-SHA256 over ``ts.body``), each
   a ``bridge`` event of a live call with a new eventId, so each is stored in the inbox, then
   signalled to the call's workflow (which folds it; the record does not change), offered
   open-loop to ``POST /webhooks/e9`` at the rate for ``--seconds``. Each ack's latency counts
   from its *scheduled* send, so a slow server cannot hide its queue. Then the run's inbox
   rows are counted: stored, signalled, applied (stragglers waited for, ``--settle`` at most).
2. **bare**: the same bodies at the same rate to a bare FastAPI endpoint doing one insert
   (``bench/bare_ingest.py``, its own uvicorn process, the same kind of database).

Prints one table (and writes it to ``--out``): acked/s, ack latency, errors, CPU seconds per
part (and what the rest of the machine used meanwhile: another benchmark skews a run), the
ratio CC / bare, and the goal: p99 ≤ 50 ms at 300/s, ≥ 0.7× bare. Then notes: how far the
generator lagged its schedule, and how long acked events took to be marked signalled and to
be applied (folded into the record) by their workflow.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa
import uvloop
from sqlalchemy import Engine
from sqlmodel import col

from bench import bare_ingest
from bench.e2e import add_lines, pct
from bench.stack import (
    TICKS,
    BenchStack,
    StackOptions,
    api_client,
    fresh_postgres,
    post_once,
    report,
)
from channels.e9_events import beijing_ts
from scripts.inprocess import free_port
from scripts.processes import StopSignals, start, wait_http
from store.db import make_engine
from store.models import VendorEvent

CALLER, CALLED = "+8613800000001", "+8613900000085"  # 85: the simulator never hangs up
CONNECTIONS = 256  # keep-alive connections to the server, so at most this many in flight
Call = tuple[str, str]  # CC's id, the vendor's call id
Webhook = tuple[str, bytes, dict[str, str]]  # event id, body, headers
MARK = {True: "✅", False: "❌"}


@dataclass
class Run:
    offered: int
    latencies_ms: list[float] = field(default_factory=list)
    lags_ms: list[float] = field(default_factory=list)  # the generator's: send − schedule
    acked: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    wall_s: float = 1.0
    client_cpu_s: float = 0.0  # the bench process's, while it offered the load
    machine_cpu_s: float = 0.0  # every process's on the machine, meanwhile

    @property
    def rate(self) -> float:
        return len(self.acked) / self.wall_s


async def live_calls(stack: BenchStack, count: int) -> list[Call]:
    """``count`` bridged calls that stay up: (CC id, vendor call id) of each."""
    async with api_client(stack) as api, api_client(stack, operator=True) as operator:
        await add_lines(api, operator, count)
        ids = []
        for _ in range(count):
            body = {"caller": CALLER, "called": CALLED, "channel": "e9", "max_duration": 14400}
            answer = await post_once(api, body)
            if answer.status_code != 201:
                raise SystemExit(f"placing a call: {answer.status_code} {answer.text}")
            ids.append(answer.json()["id"])
        calls, deadline = [], time.monotonic() + 60
        for call_id in ids:
            while (record := (await api.get(f"/v1/calls/{call_id}")).json())["state"] != "conn":
                if record["state"] == "close" or time.monotonic() > deadline:
                    raise SystemExit(f"call {call_id} not bridged: {record}")
                await asyncio.sleep(0.2)
            calls.append((call_id, record["call_id"]))
    return calls


def webhooks(token: str, calls: list[Call], count: int, prefix: str) -> list[Webhook]:
    """Signed e9 ``bridge`` webhooks, round robin over ``calls``, eventIds ``prefix`` + n."""
    ts, at, built = str(int(time.time())), beijing_ts(), []
    for n in range(count):
        cc_call_id, sid = calls[n % len(calls)]
        event_id = f"{prefix}{n:06d}"
        body = json.dumps(
            {
                "eventId": event_id,
                "callSid": sid,
                "event": "bridge",
                "timestamp": at,
                "userData": cc_call_id,
            }
        ).encode()
        sig = hmac.new(token.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-E9-Timestamp": ts, "X-E9-Signature": sig}
        built.append((event_id, body, headers))
    return built


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (user, nice, system, irq, softirq)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (sum(ticks) - ticks[3] - ticks[4]) / TICKS


def http_request(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The whole HTTP/1.1 request, built before the timed part."""
    parts = urlsplit(url)
    lines = [
        f"POST {parts.path} HTTP/1.1",
        f"Host: {parts.netloc}",
        *(f"{name}: {value}" for name, value in headers.items()),
        f"Content-Length: {len(body)}",
        "",
        "",
    ]
    return "\r\n".join(lines).encode() + body


async def offer(url: str, hooks: list[Webhook], rate: float, label: str) -> Run:
    """POST ``hooks`` open-loop, send n due at t0 + n/rate, over ``CONNECTIONS`` keep-alive
    connections (a send waits for a free one); each latency counts from the due time.

    A plain HTTP/1.1 client on asyncio streams: httpx costs ~1.8 ms CPU a request, a quarter
    of this 2-core machine at 300/s, taken from the servers it measures; this one ~0.16 ms.
    """
    run, queue = Run(offered=len(hooks)), asyncio.Queue[tuple[int, str, bytes] | None]()
    requests = [
        (n, event_id, http_request(url, body, headers))
        for n, (event_id, body, headers) in enumerate(hooks)
    ]
    host, port = urlsplit(url).hostname or "", urlsplit(url).port or 80
    t0 = last = time.monotonic() + 0.1
    cpu_before, machine_before = time.process_time(), machine_busy_s()

    async def connection() -> None:
        nonlocal last
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while (item := await queue.get()) is not None:
            n, event_id, request = item
            try:
                async with asyncio.timeout(30):
                    if streams is None or streams[0].at_eof():  # none yet, or closed when idle
                        streams = await asyncio.open_connection(host, port)
                    streams[1].write(request)
                    head = (await streams[0].readuntil(b"\r\n\r\n")).lower()
                    length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
                    await streams[0].readexactly(length)
            except (
                OSError,
                TimeoutError,
                ValueError,
                IndexError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
            ) as exc:
                run.errors[exc.__class__.__name__] += 1
                if streams is not None:
                    streams[1].close()
                streams = None
                continue
            last = max(last, now := time.monotonic())
            if head.startswith(b"http/1.1 2"):
                run.latencies_ms.append((now - t0 - n / rate) * 1000)
                run.acked.append(event_id)
            else:
                run.errors[f"HTTP {head[9:12].decode()}"] += 1
        if streams is not None:
            streams[1].close()

    async def progress() -> None:
        while True:
            sys.stderr.write(
                f"\r  {label:<12} due {len(run.lags_ms)}/{run.offered} acked "
                f"{len(run.acked)} errors {run.errors.total()}  "
            )
            await asyncio.sleep(0.5)

    connections = [asyncio.create_task(connection()) for _ in range(CONNECTIONS)]
    shown = asyncio.create_task(progress())
    for item in requests:
        await asyncio.sleep(max(0.0, t0 + item[0] / rate - time.monotonic()))
        run.lags_ms.append((time.monotonic() - t0 - item[0] / rate) * 1000)
        queue.put_nowait(item)
    for _ in connections:
        queue.put_nowait(None)
    await asyncio.gather(*connections)
    shown.cancel()
    run.wall_s = max(len(hooks) / rate, last - t0)
    run.client_cpu_s = time.process_time() - cpu_before
    run.machine_cpu_s = machine_busy_s() - machine_before
    sys.stderr.write(
        f"\r  {label:<12} acked {len(run.acked)}/{run.offered} at "
        f"{run.rate:.1f}/s, errors {run.errors.total()}\n"
    )
    return run


@dataclass
class Inbox:
    """The acked events' inbox rows."""

    stored: int = 0
    signalled: int = 0  # marked signalled (a signal not confirmed in its budget is not)
    applied: int = 0  # folded and saved by their workflow: delivered, whatever the mark says
    twice: int = 0  # signalled again by redelivery
    signal_ms: list[float] = field(default_factory=list)  # stored → marked signalled
    apply_ms: list[float] = field(default_factory=list)  # stored → applied


def inbox_rows(engine: Engine, prefix: str, acked: list[str]) -> Inbox:
    event = VendorEvent  # the inbox
    query = sa.select(
        col(event.dedupe_key),
        col(event.received),
        col(event.signalled_at),
        col(event.applied_at),
        col(event.signal_attempts),
    )
    query = query.where(col(event.channel) == "e9", col(event.dedupe_key).startswith(prefix))
    with engine.connect() as conn:
        rows = {
            key: (received, signalled, applied, tries)
            for key, received, signalled, applied, tries in conn.execute(query)
        }
    inbox = Inbox()
    for received, signalled_at, applied_at, attempts in filter(None, map(rows.get, acked)):
        inbox.stored += 1
        inbox.twice += attempts > 1
        if signalled_at is not None:
            inbox.signalled += 1
            inbox.signal_ms.append(signalled_at - received)
        if applied_at is not None:
            inbox.applied += 1
            inbox.apply_ms.append(applied_at - received)
    return inbox


async def settle(engine: Engine, prefix: str, acked: list[str], budget_s: float) -> Inbox:
    """``inbox_rows`` once every acked event is applied, or the budget is up."""
    deadline = time.monotonic() + budget_s
    while True:
        inbox = await asyncio.to_thread(inbox_rows, engine, prefix, acked)
        if inbox.applied == len(acked) or time.monotonic() > deadline:
            return inbox
        await asyncio.sleep(0.5)


def cpu(before: dict[str, tuple[float, int]], after: dict[str, tuple[float, int]], run: Run) -> str:
    """CPU seconds of each busy part during ``run`` (and the bench's own), the cores they used,
    and the cores the rest of the machine used meanwhile (another benchmark skews the run)."""
    used = {part: after[part][0] - before[part][0] for part in after}
    used["bench"] = run.client_cpu_s
    ours, others = sum(used.values()), run.machine_cpu_s - sum(used.values())
    return (
        ", ".join(f"{part} {s:.1f}" for part, s in used.items() if s >= 0.1 or part == "bench")
        + f" = {ours / run.wall_s:.2f} cores; others {others / run.wall_s:.2f}"
    )


def row(name: str, rate: float, run: Run, cpu_text: str, inbox: str, goal: str) -> str:
    ms = [pct(run.latencies_ms, p) for p in (50, 95, 99, 100)]
    return (
        f"| {name} | {rate:g} | {run.rate:.1f} | "
        + " | ".join(f"{v:.0f}" for v in ms)
        + f" | {run.errors.total()} | {cpu_text} | {inbox} | {goal} |"
    )


async def one_rate(
    stack: BenchStack,
    args: argparse.Namespace,
    calls: list[Call],
    rate: float,
    bare_url: str,
    bare_db: str,
) -> tuple[list[str], list[str]]:
    """CC then bare at ``rate``: the table's rows, and notes on the generator's honesty."""
    tag, token = f"bench-{secrets.token_hex(3)}-", stack.settings.e9_auth_token
    count, cc_url = int(rate * args.seconds), f"{stack.api_url}/webhooks/e9"
    await offer(cc_url, webhooks(token, calls, 2 * len(calls), tag + "w"), 50, "CC warm-up")
    hooks = webhooks(token, calls, count, tag + "r")
    stack.wait_quiet()
    before = stack.stats()
    cc = await offer(cc_url, hooks, rate, f"CC {rate:g}/s")
    cc_cpu = cpu(before, stack.stats(), cc)
    engine = make_engine(stack.settings.database_url)
    inbox = await settle(engine, tag + "r", cc.acked, args.settle)
    engine.dispose()

    await offer(bare_url, hooks[: 2 * len(calls)], 50, "bare warm-up")
    stack.wait_quiet()
    rows_before = await asyncio.to_thread(bare_ingest.count_rows, bare_db)
    before = stack.stats()
    bare = await offer(bare_url, hooks, rate, f"bare {rate:g}/s")
    bare_cpu = cpu(before, stack.stats(), bare)
    bare_stored = await asyncio.to_thread(bare_ingest.count_rows, bare_db) - rows_before
    ratio = cc.rate / bare.rate if bare.rate else float("nan")
    p99 = pct(cc.latencies_ms, 99)
    all_in = inbox.stored == inbox.applied == len(cc.acked)
    rows = [
        row(
            f"CC {rate:g}/s",
            rate,
            cc,
            cc_cpu,
            f"{inbox.stored} / {inbox.signalled} / "
            f"{inbox.applied} of {len(cc.acked)} ({inbox.twice} signalled twice)",
            f"p99 ≤ 50 ms {MARK[p99 <= 50]}, stored+applied {MARK[all_in]}",
        ),
        row(f"bare {rate:g}/s", rate, bare, bare_cpu, f"{bare_stored} stored", ""),
        "| "
        + " | ".join(
            [
                f"ratio CC / bare {rate:g}/s",
                "",
                f"**{ratio:.2f}×**",
                *[""] * 7,
                f"≥ 0.7× {MARK[ratio >= 0.7]}",
            ]
        )
        + " |",
    ]
    notes = [
        f"{name} {rate:g}/s: the generator's lag behind schedule p99 "
        f"{pct(r.lags_ms, 99):.1f} ms, max {max(r.lags_ms, default=0):.1f} ms; "
        f"errors {dict(r.errors) or 'none'}"
        for name, r in (("CC", cc), ("bare", bare))
    ]
    notes.append(
        f"CC {rate:g}/s: stored → marked signalled p50 {pct(inbox.signal_ms, 50):.0f} "
        f"ms, p99 {pct(inbox.signal_ms, 99):.0f} ms; stored → applied p50 "
        f"{pct(inbox.apply_ms, 50):.0f} ms, p99 {pct(inbox.apply_ms, 99):.0f} ms"
    )
    return rows, notes


async def measure(stack: BenchStack, args: argparse.Namespace, bare_url: str, bare_db: str) -> str:
    calls = await live_calls(stack, args.calls)
    lines = [
        "| run | offered/s | acked/s | p50 ms | p95 ms | p99 ms | max ms | errors "
        "| CPU s during the run | inbox: stored / signalled / applied | goal |",
        "|" + " --- |" * 11,
    ]
    notes: list[str] = []
    for rate in args.rates:
        rows, more = await one_rate(stack, args, calls, rate, bare_url, bare_db)
        lines += rows
        notes += more
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {note}" for note in notes)


def start_bare(stack: BenchStack, args: argparse.Namespace) -> tuple[str, str]:
    """The bare endpoint, a uvicorn process of its own stopped with the stack: URL, its DB."""
    db = f"sqlite:///{stack.dir / 'bare.db'}"
    if args.database == "postgres":
        db = fresh_postgres("ccbench_bare")
    bare_ingest.create_table(db)
    os.environ[bare_ingest.DB_ENV] = db  # the child inherits it
    port = free_port()
    start(
        "bare-api",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.bare_ingest:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.api_processes),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        stack.children,
        stack.dir,
    )
    bare = f"http://127.0.0.1:{port}/docs"
    wait_http(bare, "the bare endpoint", stack.children, StopSignals(), stack.dir)
    return f"http://127.0.0.1:{port}/ingest", db


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--rates", help="several rates in turn, e.g. 100,300")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--calls", type=int, default=20, help="live calls the events go to")
    parser.add_argument("--settle", type=float, default=20.0, help="wait for stragglers (s)")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--api-processes", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")] if args.rates else [args.rate]
    options = StackOptions(database=args.database, api_processes=args.api_processes)
    with BenchStack(options) as stack:
        print(
            f"stack in {stack.dir} ({args.database}, {args.api_processes} API process(es))",
            file=sys.stderr,
        )
        bare_url, bare_db = start_bare(stack, args)
        text = uvloop.run(measure(stack, args, bare_url, bare_db))
    report(text, args.out)


if __name__ == "__main__":
    main()
