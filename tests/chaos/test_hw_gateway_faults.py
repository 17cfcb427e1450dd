"""Scenario 8: hw's CC-Gateway misbehaving while calls are live, one fault a round:
``guid_expired`` (a call answered 000-003 once), ``signed_out`` (a seat with a call loses its
session, 100-006, while the call goes on), ``failover`` (105-006 for every signed-in seat until
it signs in again). Each round's calls must end with their right record, no seat polled twice
at once (000-007), no line left busy.

A gateway drops the events it held for a seat with the seat's session, and those that come
before the seat signs in again (the simulator logs them ``lost``): a moment only such an event
showed, and no later one proves, cannot be known. Those, and only those, a record may lack.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from channels.hw_events import KINDS
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
                notes={"hw_events_lost_with_sessions": sum(map(len, lost.values())),
                       "calls_missing_a_lost_moment": sum(1 for m in lost.values() if m)},
            )  # fmt: skip
            row.failures += failures
        finally:
            await driver.close()
    assert not row.problems(), row.problems()


TIMESTAMP_OF = {"a_dialing": "a_call_time", "a_answered": "a_offhook_time",
                "b_dialing": "b_call_time", "b_answered": "b_offhook_time",
                "bridged": "conn_time"}  # fmt: skip


async def moments_lost(stack: ChaosStack, driver: Driver) -> dict[str, frozenset[str]]:
    """Per call, the record timestamps of the events the gateway logged ``lost`` for its
    seat while the call was on it; set on the driver's calls as what they may lack."""
    log = (await stack.sims["hw"].get("/_sim/log")).json()["events"]
    views = await driver.views(p.id for p in driver.placed)
    lost: dict[str, set[str]] = {p.id: set() for p in driver.placed}
    for entry in log:
        if entry["status"] != "lost":
            continue
        seat = entry["url"].rsplit("/", 1)[-1]
        kinds = KINDS.get(_event_type(entry["body"]), ())
        for call_id, view in views.items():
            if view and view["agent"] == seat and _during(view, entry["at"]):
                lost[call_id] |= {TIMESTAMP_OF[k.value] for k in kinds if k.value in TIMESTAMP_OF}
    for placed in driver.placed:
        placed.may_miss = frozenset(lost[placed.id])
    return {call_id: frozenset(moments) for call_id, moments in lost.items()}


def _event_type(body: str) -> str:
    event: dict[str, Any] = json.loads(body)
    return str(event.get("eventType", ""))


def _during(view: dict[str, Any], at: int) -> bool:
    return bool(view["created"] <= at <= (view.get("close_time") or at) + 1000)
