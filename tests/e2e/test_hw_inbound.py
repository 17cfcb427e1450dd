"""Channel hw's inbound 400 calls on the live stack: CEC's own IVR routes a customer to one
of CC's seats; CC records what the seat sees (VENDORS.md, hw and "Inbound calls to a 400
number"), follows the call to its end and copies its recording, and the seat's phone is
shown the 400 number, never the customer's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

from callflow.inbound import inbound_call_id
from contracts.ids import workflow_id
from contracts.seat import seat_workflow_id
from tests.e2e.calls import TIMESTAMPS, place, wait_closed
from tests.stack import SOLO_KEY, SOLO_LINE, Stack
from tests.support import wait_for

SEAT = SOLO_LINE["hw"]  # the solo tenant's one hw line: its callback signs this seat in
AGENT = "+8613800000001"  # the callback's agent phone: the seat is signed in with it
MAIN, CUSTOMER = "+864001234567", "+8613900000002"


@pytest.fixture
async def solo(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.as_tenant(SOLO_KEY) as client:
        yield client


async def hw_routable(stack: Stack) -> None:
    """Until routing takes hw: on a loaded machine a probe may time out and open its circuit
    for a moment (the health tests' own business, not this test's)."""

    async def routable() -> dict[str, Any] | None:
        channels = (await stack.api.get("/v1/channels")).json()
        hw: dict[str, Any] = next(c for c in channels if c["name"] == "hw")
        return hw if hw["healthy"] and hw["enabled"] else None

    await wait_for(routable, 90, "channel hw routable")


async def test_an_inbound_call_routed_to_a_seat_is_recorded_and_followed(
    stack: Stack, solo: httpx.AsyncClient
) -> None:
    gateway = stack.sims["hw"]
    await hw_routable(stack)
    # An inbound call needs a signed-in seat: a callback on the seat's line signs it in, and
    # it stays signed in (and polled) for CC_HW_SEAT_IDLE_S after the call.
    callback = await place(solo, channel="hw", caller=AGENT)
    await wait_closed(solo, callback["id"])
    answer = await gateway.post("/_sim/inbound", json={"main_num": MAIN, "caller": CUSTOMER,
                                                       "ext": SEAT})  # fmt: skip
    assert answer.status_code == 200, answer.text
    routed = answer.json()
    assert routed["routed"] is True, routed
    cc_call_id = inbound_call_id("hw", routed["callid"])

    view = await _closed(solo, cc_call_id)
    assert (view["direction"], view["main_num"], view["agent"]) == ("in", MAIN, SEAT)
    assert (view["call_id"], view["called"], view["channel"]) == (routed["callid"], AGENT, "hw")
    assert view["ext_num"] == SEAT and view["close_type"] == 0
    times = [view[name] for name in TIMESTAMPS]
    assert None not in times, view
    assert view["duration"] >= 1

    await stack.client.get_workflow_handle(workflow_id(cc_call_id)).result()
    view = (await solo.get(f"/v1/calls/{cc_call_id}")).json()
    assert view["audio_url"], view  # the recording, copied to CC's storage

    [call] = [c for c in (await gateway.get("/_sim/calls")).json()
              if c["callid"] == routed["callid"]]  # fmt: skip
    assert call["direction"] == "in" and call["phonenum"] == AGENT.removeprefix("+86")
    assert call["shown_to_b"] == MAIN.removeprefix("+86")  # the seat's phone saw main_num...
    assert call["shown_to_a"] is None  # ...and the customer nothing
    assert CUSTOMER.removeprefix("+86") not in (call["shown_to_a"], call["shown_to_b"])

    # the call's end released the seat: signed out once idle, like after a callback
    seat = stack.client.get_workflow_handle(seat_workflow_id("hw", SEAT))

    async def seat_ended() -> bool:
        return (await seat.describe()).status == WorkflowExecutionStatus.COMPLETED

    await wait_for(seat_ended, 60, "the idle seat's workflow to end")


async def _closed(api: httpx.AsyncClient, cc_call_id: str) -> dict[str, Any]:
    async def closed() -> dict[str, Any] | None:
        answer = await api.get(f"/v1/calls/{cc_call_id}")
        view: dict[str, Any] = answer.json()
        return view if answer.status_code == 200 and view["state"] == "close" else None

    return await wait_for(closed, 40, f"inbound call {cc_call_id} to close")
