"""Scenario 1: the worker SIGKILLed with N live calls, restarted 10 s later."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.chaos.harness import SIM_TIMING, Driver, measure, mix, running

DEAD_S = 10


async def worker_kill(chaos_dir: Path, n: int) -> None:
    started = time.monotonic()
    talk_ms = 15_000 + 200 * n  # every call is still live when the worker dies
    timing = {**SIM_TIMING, "talk_ms": talk_ms}
    async with running(chaos_dir, timing, lines_per_channel=n // 3 + 4) as stack:
        driver = Driver(stack, long_max_duration=talk_ms // 1000)
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
        finally:
            await driver.close()
    assert not row.problems(), row.problems()


async def test_worker_sigkill_short(chaos_dir: Path) -> None:
    await worker_kill(chaos_dir, 10)


@pytest.mark.chaos
async def test_worker_sigkill(chaos_dir: Path) -> None:
    await worker_kill(chaos_dir, 100)
