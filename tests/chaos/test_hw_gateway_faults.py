"""Scenario 8: hw's CC-Gateway misbehaving while calls are live, one fault a round:
``guid_expired`` (a call answered 000-003 once), ``signed_out`` (a seat with a call loses its
session, 100-006, while the call goes on), ``failover`` (105-006 for every signed-in seat until
it signs in again). Each round's calls must end with their right record, no seat polled twice
at once (000-007), no line left busy.

A gateway drops the events it held for a seat with the seat's session, and those that come
before the seat signs in again (the simulator logs them ``lost``). What only such an event
showed cannot be known: a moment no later one proves, the busy cause of a failure, the bridge
of a call CC should have cut at max_duration (the watchdog ends it then). A call the gateway
dropped events of must still close, consistent, with no moment its fate does not have, its
line freed and every event CC was given applied; every other call, exactly its fate.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from core.types import CloseType
from tests.chaos.harness import SIM_TIMING, ChaosStack, Driver, measure, mix, running

FAULTS = ("guid_expired", "signed_out", "failover")
TALK_MS = 8_000  # long enough that every fault meets calls in every state


@pytest.mark.chaos
async def test_hw_gateway_faults_with_live_calls(chaos_dir: Path) -> None:
    n = 9  # calls per round
    started = time.monotonic()
    timing = {**SIM_TIMING, "talk_ms": TALK_MS}
    async with running(chaos_dir, timing, lines_per_channel=n + 2) as stack:
        hw = stack.sims["hw"]
        driver = Driver(stack, long_max_duration=TALK_MS // 1000 - 2)
        failures: list[str] = []
        try:
            for fault in FAULTS:
                placed = await driver.place_many(mix(n, long_every=4), ["hw"])
                if len(placed) != n:
                    failures.append(f"{fault}: {len(placed)} of {n} placed: {driver.refused}")
                await driver.wait_state("conn", within=30, at_least=n // 3)
                answer = await hw.put("/_sim/faults", json={"gateway": fault})
                assert answer.status_code == 200, answer.text
                views = await driver.wait_closed(TALK_MS / 1000 + 90)
                await hw.put("/_sim/faults", json={})
                still_open = [i for i, v in views.items() if (v or {}).get("state") != "close"]
                if still_open:
                    failures.append(f"{fault}: {len(still_open)} calls not closed in time")
            lost = await moments_lost(stack, driver)
            row = await measure(
                f"8 hw gateway faults ({', '.join(FAULTS)}), {n} calls each", stack, driver,
                started=started, close_within=60,
                notes={"hw_events_dropped_with_sessions": sum(lost.values()),
                       "calls_with_dropped_events": sum(1 for n in lost.values() if n)},
            )  # fmt: skip
            row.failures += failures
        finally:
            await driver.close()
    assert not row.problems(), row.problems()


ANY_CLOSE = frozenset(int(close_type) for close_type in CloseType)


async def moments_lost(stack: ChaosStack, driver: Driver) -> dict[str, int]:
    """Per call, the events the gateway logged ``lost`` for its seat while the call was on
    it; such a call is held to what can be known of it (see the module)."""
    log = (await stack.sims["hw"].get("/_sim/log")).json()["events"]
    views = await driver.views(p.id for p in driver.placed)
    lost = {p.id: 0 for p in driver.placed}
    for entry in log:
        if entry["status"] != "lost":
            continue
        seat = entry["url"].rsplit("/", 1)[-1]
        for call_id, view in views.items():
            if view and view["agent"] == seat and _during(view, entry["at"]):
                lost[call_id] += 1
    for placed in driver.placed:
        if lost[placed.id]:
            placed.close_types, placed.stamps = ANY_CLOSE, placed.fate.stamps
            placed.may_miss = placed.fate.stamps
    return lost


def _during(view: dict[str, Any], at: int) -> bool:
    return bool(view["created"] <= at <= (view.get("close_time") or at) + 1000)
