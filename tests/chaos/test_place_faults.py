"""Scenario 5: every simulator place fault on every channel; failover only where allowed.

A vendor that answered with an error (5xx, an unreadable gateway page) did not take the call:
CC may fail over. A 429 is back-pressure: the same vendor again after its Retry-After, and a
failover only once the wait would pass the placement deadline. A rejection (auth) or an
unknown outcome (no answer in time, or the vendor took the call and its answer timed out) must
never fail over, and no customer may be dialled twice (place requests per CC call id across
every simulator's log).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from channels.registry import CHANNELS
from tests.chaos.harness import (
    EVERY,
    FATES,
    Driver,
    measure,
    place_requests,
    running,
    sim_logs,
)
from tests.stack import line_id

# fault → (may fail over, close types the call may end with, timestamps it must have)
EXPECTED: dict[str, tuple[bool, frozenset[int], frozenset[str] | None]] = {
    "http_500": (True, frozenset({0}), EVERY),
    "rate_limit": (True, frozenset({0}), EVERY),
    "malformed": (True, frozenset({0}), EVERY),
    "auth_reject": (False, frozenset({6, 255}), None),
    "timeout": (False, frozenset({7}), None),
    "timeout_after_accept": (False, frozenset({0}), EVERY),
}


async def place_faults(chaos_dir: Path, name: str, channels: list[str], faults: list[str]) -> None:
    started = time.monotonic()
    async with running(
        chaos_dir,
        lines_per_channel=len(faults) + 2,
        health_failures_to_open=1_000_000,  # every case must meet its fault, not an open circuit
        place_unknown_wait_s=5.0,
        vendor_timeout_s=2.0,
        # A vendor that keeps answering 429 is waited out on the same line until its wait
        # would pass the placement deadline, then failed over: within each case's 60 s.
        place_deadline_s=20.0,
    ) as stack:
        driver = Driver(stack)
        failures: list[str] = []
        cases: list[tuple[str, str, str]] = []  # (call id, channel, fault)
        try:
            for channel in channels:
                for k, fault in enumerate(faults):
                    user = f"u-{channel}-{k}"
                    line = {"channel": channel, "agent": line_id(channel, k)}
                    bound = await driver.request("PUT", f"/v1/bindings/{user}", json=line)
                    assert bound is not None and bound.status_code == 200, bound
                    answer = await stack.sims[channel].put(
                        "/_sim/faults", json={"place_call": fault}
                    )
                    if answer.status_code != 200:
                        failures.append(f"{channel} simulator has no fault {fault}")
                        continue
                    placed = await driver.place(FATES["normal"], user=user, fallback=True)
                    if placed is None:
                        failures.append(f"{channel}/{fault}: not placed {driver.refused[-1:]}")
                        await stack.sims[channel].put("/_sim/faults", json={})
                        continue
                    may_move, close_types, stamps = EXPECTED[fault]
                    others = frozenset(CHANNELS) - {channel}
                    placed.allowed_channels = others if may_move else frozenset({channel})
                    placed.close_types, placed.stamps = close_types, stamps
                    cases.append((placed.id, channel, fault))
                    # one case at a time: the fault must be gone before the next channel is tried
                    view = await driver.wait_closed(60)
                    await stack.sims[channel].put("/_sim/faults", json={})
                    if (view.get(placed.id) or {}).get("state") != "close":
                        failures.append(f"{channel}/{fault}: not closed within 60 s")
            row = await measure(name, stack, driver, started=started, close_within=60)
            requests = place_requests(await sim_logs(stack))
            for call_id, channel, fault in cases:
                elsewhere = {
                    c: n for (i, c), n in requests.items() if i == call_id and c != channel
                }
                if elsewhere and not EXPECTED[fault][0]:
                    failures.append(f"{channel}/{fault}: failed over to {elsewhere}")
            row.failures += failures
        finally:
            await driver.close()
    assert not row.problems(), row.problems()


async def test_place_faults_short(chaos_dir: Path) -> None:
    await place_faults(chaos_dir, "5 place faults (e9: 500, auth, timeout)", ["e9"],
                       ["http_500", "auth_reject", "timeout"])  # fmt: skip


@pytest.mark.chaos
async def test_place_faults(chaos_dir: Path) -> None:
    await place_faults(chaos_dir, "5 place faults, every fault x every channel", list(CHANNELS),
                       list(EXPECTED))  # fmt: skip
