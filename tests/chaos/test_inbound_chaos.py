"""Scenario 9: inbound 400-number calls on every channel under a worker SIGKILL, then (e9, jy)
under delivery chaos. The simulators play the customers (``POST /_sim/inbound``): e9 and jy
ask CC where to send each call (an extension bound to a line), hw's CEC routes it to a
signed-in seat itself (the keyed digits are the seat's work number; a callback on each seat
signs it in first). Every inbound record must end right (close_type 0, every timestamp), its
line freed, no event lost, as a callback's."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from callflow.inbound import inbound_call_id
from tests.chaos.harness import FATES, SIM_TIMING, Driver, Placed, measure, running
from tests.stack import line_id

MAIN = {"e9": "+864008001001", "jy": "+864008002002", "hw": "+864008003003"}
CUSTOMER = "+86139000{:05d}"  # normal fate: the last two digits stay under 81
AGENT_PHONE = "+86138000{:05d}"
DEAD_S = 10
TALK_MS = 20_000  # every inbound call is still live when the worker dies


async def bind(driver: Driver, channel: str, ext: str, agent: str, k: int) -> None:
    body = {"channel": channel, "agent": agent, "phone": AGENT_PHONE.format(400 + k)}
    put = await driver.request("PUT", f"/v1/extensions/{MAIN[channel]}/{ext}", json=body)
    assert put is not None and put.status_code == 200, put and put.text


async def customer_calls(
    stack: Any, driver: Driver, channel: str, ext: str, k: int
) -> Placed | None:
    """One customer dials the channel's 400 number and keys ``ext``; the record CC makes of
    that call, as the driver's (so the scenario's row checks it like a callback)."""
    body = {"main_num": MAIN[channel], "caller": CUSTOMER.format(k * 10), "ext": ext}
    answer = await stack.sims[channel].post("/_sim/inbound", json=body)
    result: dict[str, Any] = answer.json()
    vendor_id = result.get("call_sid") or result.get("callid")
    routed = result.get("outcome") == "dialled" or result.get("routed") is True
    if answer.status_code != 200 or not routed or not vendor_id:
        driver.refused.append((f"inbound {channel} {ext}", answer.status_code))
        return None
    placed = Placed(inbound_call_id(channel, vendor_id), FATES["normal"], channel)
    driver.placed.append(placed)
    return placed


async def sign_in_seats(driver: Driver, seats: list[str]) -> None:
    """A callback on each hw seat signs it in (it stays signed in and polled for
    CC_HW_SEAT_IDLE_S after the call): CEC routes inbound calls only to such seats."""
    for seat in seats:
        user = f"seat-{seat}"
        bound = await driver.request("PUT", f"/v1/bindings/{user}",
                                     json={"channel": "hw", "agent": seat})  # fmt: skip
        assert bound is not None and bound.status_code == 200, bound
        assert await driver.place(FATES["normal"], user=user) is not None, driver.refused
    await driver.wait_closed(60)


async def inbound_calls(stack: Any, driver: Driver, per_channel: int) -> list[Placed]:
    hw_seats = [line_id("hw", k) for k in range(per_channel)]
    await sign_in_seats(driver, hw_seats)
    for channel in ("e9", "jy"):
        for k in range(per_channel):
            await bind(driver, channel, str(10 + k), line_id(channel, k), k)
    for sim in stack.sims.values():
        await sim.put("/_sim/timing", json={**SIM_TIMING, "talk_ms": TALK_MS})
    calls = [customer_calls(stack, driver, channel, str(10 + k), k)
             for channel in ("e9", "jy") for k in range(per_channel)]  # fmt: skip
    calls += [customer_calls(stack, driver, "hw", seat, 50 + k) for k, seat in enumerate(hw_seats)]
    placed = await asyncio.gather(*calls)
    return [p for p in placed if p is not None]


CHAOS = {"delivery": {"drop": 0.2, "duplicate": 0.3, "reorder": True}, "seed": 7}


@pytest.mark.chaos
@pytest.mark.parametrize("fault", ["worker SIGKILL", "delivery chaos (e9, jy)"])
async def test_inbound_calls_under(chaos_dir: Path, fault: str) -> None:
    per_channel = 4
    started = time.monotonic()
    async with running(chaos_dir, SIM_TIMING, lines_per_channel=per_channel + 2) as stack:
        driver = Driver(stack)
        notes: dict[str, Any] = {"callbacks_signing_seats_in": per_channel}
        try:
            if fault.startswith("delivery"):
                for channel in ("e9", "jy"):
                    answer = await stack.sims[channel].put("/_sim/faults", json=CHAOS)
                    assert answer.status_code == 200, answer.text
            inbound = await inbound_calls(stack, driver, per_channel)
            assert len(inbound) == 3 * per_channel, f"not routed: {driver.refused}"
            if fault.startswith("worker"):
                await driver.wait_state("conn", within=30, at_least=len(driver.placed))
                notes["live_at_kill"] = await driver.live()
                stack.worker.kill()
                await asyncio.sleep(DEAD_S)
                stack.worker.start()
            row = await measure(
                f"9 inbound e9/jy/hw, {fault}, {len(inbound)} calls", stack, driver,
                started=started, close_within=TALK_MS / 1000 + 120, grace=40, notes=notes,
            )  # fmt: skip
        finally:
            await driver.close()
    assert not row.problems(), row.problems()
