"""Many live calls on one worker: its memory, and whether events are still applied in time.

    .venv/bin/python -m bench.live_calls [--calls 10000] [--rate 20]

Starts the stack (``bench/stack.py``), adds one e9 line per call, and places ``--calls``
callbacks whose customer never hangs up (scenario ``85``, max_duration 4 h), at most
``--rate`` a second, each then live (bridged) for the rest of the run. Every
``--every`` calls it reads the resident memory of the worker (and of the other parts). With
all of them live, it places ``--probe`` ordinary calls (1 s of talk) one after another and
measures, as bench/e2e.py does, the vendor's bridge and hang-up to the record showing
``conn`` and ``close``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import httpx

from bench.e2e import CALLER, TIMING, CallRun, Progress, one_call, pct, sim_calls, vendor_lags
from bench.stack import BenchStack, StackOptions, api_client, post_once, report
from store.db import make_engine, session_scope
from store.lines import ensure_line

NEVER_HANGS_UP = "+8613900000085"


def add_lines(stack: BenchStack, count: int) -> None:
    engine = make_engine(stack.settings.database_url)
    with session_scope(engine) as session:
        for i in range(count):
            number = f"+86136{i:06d}10"
            ensure_line(session, stack.settings.demo_tenant, "e9", number, number)
    engine.dispose()


def rss_mib(stack: BenchStack) -> dict[str, float]:
    return {name: rss / 2**20 for name, (_, rss) in stack.stats().items()}


async def place_live(stack: BenchStack, calls: int, rate: float, every: int) -> list[str]:
    """Place the live calls; one line of memory figures every ``every`` calls."""
    rows: list[str] = []
    progress, gate = Progress("live", calls), asyncio.Semaphore(50)
    done = 0
    body = {"caller": CALLER, "called": NEVER_HANGS_UP, "channel": "e9", "max_duration": 14400}
    async with api_client(stack, limits=httpx.Limits(max_connections=60)) as api:

        async def place() -> None:
            nonlocal done
            async with gate:
                answer = await post_once(api, body)
                if answer.status_code != 201:
                    print(f"\nPOST {answer.status_code}: {answer.text[:200]}", file=sys.stderr)
                done += 1
                progress(done)
                if done % every == 0 or done == calls:
                    worker = rss_mib(stack)["worker-0"]
                    rows.append(
                        f"| {done} | {worker:.0f} MiB | "
                        + " / ".join(f"{n} {m:.0f}" for n, m in rss_mib(stack).items())
                        + " |"
                    )
                    print(f"\n{rows[-1]}", file=sys.stderr)  # a run cut short keeps these

        began, tasks = time.monotonic(), []
        for n in range(calls):
            await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(place()))
        await asyncio.gather(*tasks)
    return rows


async def wait_all_bridged(stack: BenchStack, calls: int, timeout_s: float = 120) -> int:
    """Until the vendor has bridged every live call (or the time is up): how many it has."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=stack.sim_url("e9"), timeout=60) as sim:
        while True:
            bridged = sum(1 for c in await sim_calls(sim) if c.get("bridged_at"))
            if bridged >= calls or time.monotonic() > deadline:
                return bridged
            await asyncio.sleep(2)


async def probe(stack: BenchStack, count: int) -> CallRun:
    run = CallRun()
    async with api_client(stack) as api:
        for _ in range(count):
            await one_call(api, run, watch=True)
    await vendor_lags(stack, run)
    return run


async def measure(stack: BenchStack, args: argparse.Namespace) -> str:
    add_lines(stack, args.calls + 10)
    async with httpx.AsyncClient(base_url=stack.sim_url("e9")) as sim:
        (await sim.put("/_sim/timing", json=TIMING)).raise_for_status()
    rows = await place_live(stack, args.calls, args.rate, args.every)
    bridged = await wait_all_bridged(stack, args.calls)
    run = await probe(stack, args.probe)
    memory = rss_mib(stack)
    lags = run.lags_ms
    return "\n".join(
        [
            f"{bridged} of {args.calls} live calls bridged at the vendor",
            "",
            "| live calls placed | worker RSS | every part (MiB) |",
            "| --- | --- | --- |",
            *rows,
            f"| all live, after the probe calls | {memory['worker-0']:.0f} MiB | "
            + " / ".join(f"{n} {m:.0f}" for n, m in memory.items())
            + " |",
            "",
            f"With them live, {args.probe} more calls: vendor bridge → `conn` visible p50 "
            f"{pct(lags['conn'], 50):.0f} ms / p95 {pct(lags['conn'], 95):.0f} ms; hang-up → "
            f"`close` p50 {pct(lags['close'], 50):.0f} ms / p95 {pct(lags['close'], 95):.0f} ms; "
            f"errors {len(run.errors)}.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--probe", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with BenchStack(StackOptions()) as stack:
        text = asyncio.run(measure(stack, args))
    report(text, args.out)


if __name__ == "__main__":
    main()
