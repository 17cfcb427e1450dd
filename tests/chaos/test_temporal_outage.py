"""Scenario 2: the Temporal server SIGKILLed and kept down while the vendors keep posting.

Webhooks must be answered 2xx within 3 s throughout (the simulators' delivery timeout is 3 s,
so a slower answer shows in their log as a ReadTimeout), every event must be applied once
Temporal is back, and no call's workflow may be signalled more than its events + 2 times.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.chaos.harness import SIM_TIMING, Driver, measure, mix, running


async def temporal_outage(chaos_dir: Path, n: int, outage_s: float) -> None:
    started = time.monotonic()
    # Calls end (and their vendors post the hang-ups) while Temporal is down.
    talk_ms = int(outage_s * 1000 / 2)
    timing = {**SIM_TIMING, "talk_ms": talk_ms}
    async with running(chaos_dir, timing, lines_per_channel=n // 3 + 4) as stack:
        # CC cannot cut a call at max_duration while Temporal is down: such a call's record
        # must tell its real talk time (>= max_duration), not the planned one.
        driver = Driver(stack, long_max_duration=max(2, talk_ms // 2000), exact_max=False)
        try:
            placed = await driver.place_many(mix(n), ["e9", "jy", "hw"])
            assert len(placed) == n, f"only {len(placed)} of {n} calls placed: {driver.refused}"
            await driver.wait_state("conn", within=30, at_least=n // 2)
            live = await driver.live()
            stack.temporal.kill()
            await asyncio.sleep(outage_s)
            await stack.start_temporal()
            row = await measure(
                f"2 Temporal down {outage_s:.0f} s, {n} calls", stack, driver, started=started,
                close_within=180, allow_503=True, signal_slack=2, webhooks_must_answer=True,
                notes={"live_at_kill": live},
            )  # fmt: skip
        finally:
            await driver.close()
    assert not row.problems(), row.problems()


@pytest.mark.chaos
async def test_temporal_down_60s(chaos_dir: Path) -> None:
    await temporal_outage(chaos_dir, 30, 60)
