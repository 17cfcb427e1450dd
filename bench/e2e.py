"""End to end: callbacks per second through the whole stack, beside the engine's own ceiling.

    .venv/bin/python -m bench.e2e [--calls 300] [--concurrency 100] [--database postgres]

Starts the stack as ``make run`` does (each part a process; ``bench/stack.py``), adds e9
lines, sets the e9 simulator's timing (ring 100 ms, talk 1 s, recording ready at once), and:

1. **capacity**: ``--calls`` callbacks with at most ``--concurrency`` in flight, the app
   polling each call once a second as the seed's apps do, each call done once its record is
   closed and its recording copied. Also the CPU seconds of every part.
2. **bare**: the same number of bare workflows of a callback's irreducible shape
   (``bench/bare.py``: 3 activities, one signal per vendor event) on the same Temporal server.
3. **half load**: calls started at half the capacity measured in 1, for ``--half-seconds``;
   ``POST /v1/calls`` latency, and for one call in five the time from the vendor's bridge and
   hang-up (the simulator's own clock) to the record showing ``conn`` and ``close``.

Prints one table with both runs and their ratio (and writes it to ``--out`` if given).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench import bare
from bench.stack import BenchStack, StackOptions, api_client, post_once, report
from scripts.processes import start
from simulators.scenario import Timing, timeline

CALLER, CALLED = "+8613800000001", "+8613900000002"
TIMING = {"ring_ms": 100, "talk_ms": 1000, "recording_delay_ms": 0}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


class Progress:
    def __init__(self, what: str, total: int) -> None:
        self.what, self.total, self.began = what, total, time.monotonic()
        self.shown = 0.0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if done < self.total and now - self.shown < 0.5:
            return
        self.shown = now
        rate = done / max(time.monotonic() - self.began, 1e-9)
        bar = "#" * (30 * done // max(self.total, 1))
        sys.stderr.write(f"\r  {self.what:<9} [{bar:<30}] {done}/{self.total} {rate:5.1f}/s")
        if done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


@dataclass
class CallRun:
    post_ms: list[float] = field(default_factory=list)
    done_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    placed: list[str] = field(default_factory=list)  # CC call ids the API accepted
    lags_ms: dict[str, list[float]] = field(default_factory=lambda: {"conn": [], "close": []})
    seen: dict[str, dict[str, float]] = field(default_factory=dict)  # call → state → epoch ms
    connection_retries: int = 0  # the app's polls asked again on a broken connection


async def add_lines(
    api: httpx.AsyncClient, operator: httpx.AsyncClient, count: int, tenant: str = "demo"
) -> None:
    """``count`` more e9 lines, provisioned by the operator and added by the tenant, through
    the API (one already there is kept)."""
    for i in range(count):
        number = f"+86137{i:06d}10"  # never a scenario ending (81-85)
        granted = await operator.put(f"/v1/operator/lines/e9/{number}", json={"tenant": tenant})
        if granted.status_code != 200:
            raise SystemExit(f"provisioning line {number}: {granted.status_code} {granted.text}")
        answer = await api.post(
            "/v1/lines", json={"channel": "e9", "agent": number, "number": number}
        )
        if answer.status_code not in (201, 409):
            raise SystemExit(f"adding line {number}: {answer.status_code} {answer.text}")


async def setup(stack: BenchStack, lines: int) -> None:
    async with api_client(stack) as api, api_client(stack, operator=True) as operator:
        await add_lines(api, operator, lines)
    async with httpx.AsyncClient(base_url=stack.sim_url("e9")) as sim:
        (await sim.put("/_sim/timing", json=TIMING)).raise_for_status()


async def one_call(api: httpx.AsyncClient, run: CallRun, watch: bool = False) -> None:
    """Place one callback and poll it (once a second; every 20 ms when ``watch``) until it
    is closed and its recording copied (or closed without a bridge: an error, no recording
    comes)."""
    began = time.monotonic()
    try:
        answer = await post_once(api, {"caller": CALLER, "called": CALLED, "channel": "e9"})
    except httpx.HTTPError as exc:
        run.errors.append(f"POST: {exc.__class__.__name__}")
        return
    run.post_ms.append((time.monotonic() - began) * 1000)
    if answer.status_code != 201:
        run.errors.append(f"POST {answer.status_code}: {answer.text[:100]}")
        return
    call_id = answer.json()["id"]
    run.placed.append(call_id)
    seen = run.seen.setdefault(call_id, {}) if watch else {}
    while True:
        await asyncio.sleep(0.02 if watch else 1.0)
        try:
            record = (await api.get(f"/v1/calls/{call_id}")).json()
        except httpx.TransportError:  # a kept-alive connection closed under load: ask again
            run.connection_retries += 1
            continue
        seen.setdefault(record["state"], time.time() * 1000)
        if record["state"] != "close":
            continue
        if record["conn_time"] is None:  # never bridged: no recording will come
            run.errors.append(f"closed unbridged: close_type {record['close_type']}")
            break
        if record["audio_url"] or record["recording_error"]:
            break
    if record["recording_error"]:
        run.errors.append(f"recording: {record['recording_error']}")
    run.done_s.append(time.monotonic() - began)


async def capacity(stack: BenchStack, calls: int, concurrency: int) -> tuple[float, CallRun]:
    run, gate, progress = CallRun(), asyncio.Semaphore(concurrency), Progress("CC", calls)
    limits = httpx.Limits(max_connections=concurrency + 10)

    async with api_client(stack, limits=limits) as api:

        async def guarded() -> None:
            async with gate:
                await one_call(api, run)
                progress(len(run.done_s) + len(run.errors))

        began = time.monotonic()
        await asyncio.gather(*(guarded() for _ in range(calls)))
    return time.monotonic() - began, run


async def half_load(stack: BenchStack, rate: float, seconds: float) -> CallRun:
    run, tasks = CallRun(), []
    total = max(1, int(rate * seconds))
    async with api_client(stack, limits=httpx.Limits(max_connections=200)) as api:
        began = time.monotonic()
        for n in range(total):
            await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one_call(api, run, watch=n % 5 == 0)))
        await asyncio.gather(*tasks)
    await vendor_lags(stack, run)
    return run


async def vendor_lags(stack: BenchStack, run: CallRun) -> None:
    """For each watched call, the vendor's bridge and hang-up (the simulator's clock) to the
    record first showing ``conn`` and ``close``: into ``run.lags_ms``."""
    async with httpx.AsyncClient(base_url=stack.sim_url("e9"), timeout=60) as sim:
        vendor = {c["userData"]: c for c in await sim_calls(sim)}
    for call_id, seen in run.seen.items():
        moments = vendor.get(call_id, {})
        for state, moment in (("conn", "bridged_at"), ("close", "ended_at")):
            if state in seen and moments.get(moment):
                run.lags_ms[state].append(seen[state] - moments[moment])


async def sim_calls(sim: httpx.AsyncClient) -> list[dict[str, Any]]:
    answer = await sim.get("/_sim/calls")
    answer.raise_for_status()
    return list(answer.json())


async def bare_run(stack: BenchStack, calls: int, concurrency: int) -> tuple[float, str]:
    """Bare calls per second, and the CPU seconds they cost, per part."""
    start(
        "bare-worker",
        [
            sys.executable,
            "-m",
            "bench.bare",
            "--address",
            stack.settings.temporal_address,
            "--task-queue",
            "bare",
        ],
        stack.children,
        stack.dir,
    )
    client = await Client.connect(stack.settings.temporal_address)
    beats = timeline(CALLER, CALLED, Timing(**TIMING), 3600)
    await bare.run_load(client, "bare", beats, 5, 5)  # the worker is up, its caches warm
    before = cpu_now(stack)
    wall, _ = await bare.run_load(
        client, "bare", beats, calls, concurrency, Progress("bare", calls)
    )
    return calls / wall, cpu_delta(before, cpu_now(stack), ("temporal", "bare-worker"))


def cpu_now(stack: BenchStack) -> dict[str, float]:
    """CPU seconds so far of every part, of this process (the app and the vendor's driver:
    "bench"), and of the whole machine ("machine", from /proc/stat)."""
    parts = {name: cpu for name, (cpu, _) in stack.stats().items()}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    parts["bench"] = usage.ru_utime + usage.ru_stime
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    busy = sum(int(f) for f in fields) - int(fields[3]) - int(fields[4])  # minus idle, iowait
    parts["machine"] = busy / os.sysconf("SC_CLK_TCK")
    return parts


def cpu_delta(
    before: dict[str, float], after: dict[str, float], names: tuple[str, ...] | None = None
) -> str:
    """``name seconds / …`` per part, then the bench process's and the machine's."""
    wanted = [n for n in (names or tuple(after)) if n not in ("bench", "machine")]
    wanted = [n for n in wanted if after[n] - before.get(n, 0.0) >= 0.5] + ["bench", "machine"]
    return " / ".join(f"{n} {after[n] - before.get(n, 0.0):.0f}" for n in wanted)


def table(
    args: argparse.Namespace,
    cc_rate: float,
    bare_rate: float,
    run: CallRun,
    cpu: tuple[str, str],
    half: CallRun,
    half_rate: float,
    rss: dict[str, int],
) -> str:
    lines = [
        "| figure | measured | goal |",
        "| --- | --- | --- |",
        f"| CC end-to-end callbacks/s ({args.calls} calls, {args.concurrency} in flight) "
        f"| {cc_rate:.1f} | |",
        f"| bare workflow, irreducible shape, same server | {bare_rate:.1f} | |",
        f"| ratio CC / bare | **{cc_rate / bare_rate:.2f}×** | ≥ 0.8× |",
        f"| placed → final record, p50 / p95 | {pct(run.done_s, 50):.1f} s / "
        f"{pct(run.done_s, 95):.1f} s | |",
        f"| `POST /v1/calls` at capacity, p50 / p99 | {pct(run.post_ms, 50):.0f} ms / "
        f"{pct(run.post_ms, 99):.0f} ms | |",
        f"| CPU seconds for the CC calls, per part | {cpu[0]} | |",
        f"| CPU seconds for the bare calls, per part | {cpu[1]} | |",
        f"| half load ({half_rate:.1f} calls/s): `POST /v1/calls` p50 / p99 "
        f"| {pct(half.post_ms, 50):.0f} ms / {pct(half.post_ms, 99):.0f} ms | p99 ≤ 100 ms |",
        f"| half load: vendor bridge → `conn` visible, p50 / p95 "
        f"| {pct(half.lags_ms['conn'], 50):.0f} ms / {pct(half.lags_ms['conn'], 95):.0f} ms "
        f"| p95 ≤ 200 ms |",
        f"| half load: vendor hang-up → `close` visible, p50 / p95 "
        f"| {pct(half.lags_ms['close'], 50):.0f} ms / {pct(half.lags_ms['close'], 95):.0f} ms "
        f"| p95 ≤ 200 ms |",
        f"| errors (capacity / half load) | {len(run.errors)} / {len(half.errors)} | 0 |",
        "| resident memory at the end, per part | "
        + " / ".join(f"{name} {size / 2**20:.0f} MiB" for name, size in rss.items())
        + " | |",
    ]
    return "\n".join(lines)


async def measure(stack: BenchStack, args: argparse.Namespace) -> str:
    await setup(stack, args.lines)
    warm = CallRun()
    async with api_client(stack) as api:
        await asyncio.gather(*(one_call(api, warm) for _ in range(5)))
    before = cpu_now(stack)
    wall, run = await capacity(stack, args.calls, args.concurrency)
    cpu = cpu_delta(before, cpu_now(stack))
    cc_rate = len(run.done_s) / wall
    bare_rate, bare_cpu = await bare_run(stack, args.calls, args.concurrency)
    half_rate = cc_rate / 2
    half = await half_load(stack, half_rate, args.half_seconds)
    rss = {name: size for name, (_, size) in stack.stats().items()}
    errors = sorted(set(run.errors + half.errors))
    async with httpx.AsyncClient(base_url=stack.sim_url("e9")) as sim:
        dials = Counter(c["userData"] for c in await sim_calls(sim))
    placed = run.placed + half.placed
    errors += [f"dialled {dials[c]} times: {c}" for c in placed if dials[c] != 1]
    text = table(args, cc_rate, bare_rate, run, (cpu, bare_cpu), half, half_rate, rss)
    text += (
        f"\n| calls the vendor got twice / never (of {len(placed)}) "
        f"| {sum(dials[c] > 1 for c in placed)} / {sum(dials[c] == 0 for c in placed)} "
        "| 0 / 0 |"
    )
    if errors:
        text += "\n\nerrors: " + json.dumps(errors[:10])
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--lines", type=int, default=100, help="extra e9 lines")
    parser.add_argument("--half-seconds", type=float, default=30.0)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--api-processes", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    options = StackOptions(
        database=args.database, workers=args.workers, api_processes=args.api_processes
    )
    with BenchStack(options) as stack:
        print(
            f"stack in {stack.dir} ({args.database}, {args.workers} worker(s), "
            f"{args.api_processes} API process(es))",
            file=sys.stderr,
        )
        text = asyncio.run(measure(stack, args))
    report(text, args.out)


if __name__ == "__main__":
    main()
