"""Scenario 4: the database stopped for 30 s mid-load (a PostgreSQL of the suite's own).

Webhooks must answer 503 (vendors retry) and never 500; nothing may be lost. The cluster is
made with initdb/pg_ctl in a temp dir on a spare port; the machine's shared PostgreSQL is
never touched.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.chaos.harness import SIM_TIMING, Driver, OwnPostgres, measure, mix, running

# 30 s in the suite; CHAOS_DB_OUTAGE_S measures a longer one (docs/reliability.md, limits).
OUTAGE_S = int(os.environ.get("CHAOS_DB_OUTAGE_S", "30"))


@pytest.mark.chaos
async def test_database_down_30s(chaos_dir: Path) -> None:
    try:
        postgres = OwnPostgres().init()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"no PostgreSQL of our own: {exc} {detail.decode(errors='replace')[:300]}")
    n = 24
    started = time.monotonic()
    timing = {**SIM_TIMING, "talk_ms": 8000}
    try:
        # Vendor retries at 1, 6 and 36 s after the first try (the real schedule): the last
        # one lands after the database is back.
        async with running(chaos_dir, timing, lines_per_channel=n // 3 + 4,
                           database_url=postgres.url, sim_retry_scale=1.0) as stack:  # fmt: skip
            # A bridge webhook answered 503 reaches CC only at the vendor's next try: CC cannot
            # cut such a call at max_duration; its record must tell the real talk time.
            driver = Driver(stack, exact_max=False)
            try:
                placed = await driver.place_many(mix(n), ["e9", "jy", "hw"])
                assert len(placed) == n, f"only {len(placed)} placed: {driver.refused}"
                await driver.wait_state("conn", within=30, at_least=n // 2)
                live = await driver.live()
                await asyncio.to_thread(postgres.stop)
                await asyncio.sleep(OUTAGE_S)
                await asyncio.to_thread(postgres.start)
                row = await measure(
                    f"4 database down {OUTAGE_S} s, {n} calls", stack, driver,
                    started=started, close_within=240 + OUTAGE_S, allow_503=True, grace=40,
                    notes={"live_at_stop": live},
                )  # fmt: skip
            finally:
                await driver.close()
    finally:
        postgres.destroy()
    assert not row.problems(), row.problems()
