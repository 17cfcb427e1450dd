"""Scenario 3: the API SIGKILLed and restarted mid-load; the vendors' retries deliver."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.chaos.harness import SIM_TIMING, Driver, measure, mix, running

DOWN_S = 4


async def api_kill(chaos_dir: Path, n: int) -> None:
    started = time.monotonic()
    timing = {**SIM_TIMING, "talk_ms": 4000}
    # Vendor retries at 0.5, 3 and 18 s after the first try: they span the API's restart.
    async with running(chaos_dir, timing, lines_per_channel=n // 3 + 4,
                       sim_retry_scale=0.6) as stack:  # fmt: skip
        driver = Driver(stack)
        try:
            # ~3 calls a second for n/3 seconds; the API dies a third of the way in
            load = asyncio.create_task(
                driver.place_many(mix(n), ["e9", "jy", "hw"], per_second=3.0)
            )
            await asyncio.sleep(n / 9)
            live = await driver.live()
            stack.api_proc.kill()
            await asyncio.sleep(DOWN_S)
            await stack.start_api()
            placed = await asyncio.wait_for(load, timeout=120)
            assert len(placed) == n, f"only {len(placed)} of {n} calls placed: {driver.refused}"
            row = await measure(
                f"3 API SIGKILL mid-load, {n} calls", stack, driver, started=started,
                close_within=120, notes={"live_at_kill": live},
            )  # fmt: skip
        finally:
            await driver.close()
    assert not row.problems(), row.problems()


@pytest.mark.chaos
async def test_api_sigkill(chaos_dir: Path) -> None:
    await api_kill(chaos_dir, 45)
