"""Scenario 1: the worker SIGKILLed with N live calls, restarted 10 s later; and the worker
SIGKILLed while hw holds the answer to a callout it took."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.chaos.harness import (
    FATES,
    SIM_TIMING,
    ChaosStack,
    Driver,
    measure,
    mix,
    running,
    sim_calls,
    vendor_accepted,
)
from tests.stack import line_id

DEAD_S = 10
POLL_EVERY_S = 11  # a polled seat's poll is held at most 10 s, then asked again within 0.5 s


async def seats_left_behind(stack: ChaosStack, seats: list[str], since_ms: int) -> list[str]:
    """The seats that carried calls must stay signed in across the kill (the poll is their
    keep-alive) and be polled again by the restarted worker: those that are not, once a
    poll's time is up."""
    await asyncio.sleep(POLL_EVERY_S)
    gateway = stack.sims["hw"]
    log = (await gateway.get("/_sim/log")).json()["requests"]
    polled = {r["path"].rsplit("/", 1)[-1] for r in log
              if "/agentevent/" in r["path"] and r["at"] >= since_ms}  # fmt: skip
    state = {s["workno"]: s for s in (await gateway.get("/_sim/gateway")).json()["seats"]}
    return [seat for seat in seats if not state[seat]["signed_in"] or seat not in polled]


async def worker_kill(chaos_dir: Path, n: int) -> None:
    started = time.monotonic()
    talk_ms = 15_000 + 200 * n  # every call is still live when the worker dies
    timing = {**SIM_TIMING, "talk_ms": talk_ms}
    async with running(chaos_dir, timing, lines_per_channel=n // 3 + 4) as stack:
        driver = Driver(stack, long_max_duration=talk_ms // 1000)
        driver.kills_placements = True
        try:
            placed = await driver.place_many(mix(n), ["e9", "hw", "jy"])
            assert len(placed) == n, f"only {len(placed)} of {n} calls placed: {driver.refused}"
            await asyncio.sleep(2)  # some ringing, some talking
            live = await driver.live()
            stack.worker.kill()
            await asyncio.sleep(DEAD_S)
            stack.worker.start()
            row = await measure(
                f"1 worker SIGKILL, {n} live calls", stack, driver, started=started,
                close_within=talk_ms / 1000 + 120, notes={"live_at_kill": live},
            )  # fmt: skip
            views = await driver.views(p.id for p in placed)
            seats = sorted({v["agent"] for v in views.values() if v and v["channel"] == "hw"})
            since_ms = int(time.time() * 1000)
            if lost := await seats_left_behind(stack, seats, since_ms):
                row.failures.append(f"hw seats signed out or not polled after the kill: {lost}")
            row.notes["hw_seats_kept"] = len(seats) - len(lost)
        finally:
            await driver.close()
    assert not row.problems(), row.problems()


async def test_worker_sigkill_short(chaos_dir: Path) -> None:
    await worker_kill(chaos_dir, 10)


@pytest.mark.chaos
async def test_worker_sigkill(chaos_dir: Path) -> None:
    await worker_kill(chaos_dir, 100)


@pytest.mark.chaos
async def test_worker_sigkill_with_an_hw_callout_out(chaos_dir: Path) -> None:
    """hw took the callout but holds its answer; the worker dies meanwhile, and the seat's
    poll with it. The place request's outcome is unknown (never placed again), and the
    call's events reach CC only once Temporal starts the seat's poll again, up to its
    heartbeat timeout later: the call must be followed from them, not closed 7 before."""
    started = time.monotonic()
    # The adapter waits 10 s for the answer: the worker dies while the request is out.
    async with running(chaos_dir, lines_per_channel=1, vendor_timeout_s=10.0) as stack:
        driver = Driver(stack)
        try:
            line = {"channel": "hw", "agent": line_id("hw", 0)}
            bound = await driver.request("PUT", "/v1/bindings/u-hw", json=line)
            assert bound is not None and bound.status_code == 200, bound
            hw = stack.sims["hw"]
            await hw.put("/_sim/faults", json={"place_call": "timeout_after_accept"})
            placed = await driver.place(FATES["normal"], user="u-hw")
            assert placed is not None, driver.refused
            for _ in range(300):  # the simulator takes it within a second or so
                if vendor_accepted(await sim_calls(stack))[placed.id]:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("hw never took the callout")
            stack.worker.kill()
            await hw.put("/_sim/faults", json={})
            await asyncio.sleep(DEAD_S)
            stack.worker.start()
            row = await measure(
                "1b worker SIGKILL, an hw callout out", stack, driver, started=started
            )
        finally:
            await driver.close()
    assert not row.problems(), row.problems()
