"""One contract for every channel: the same scenario gives the same unified record.

Vendor-specific strings (ch_state, vendor ids) differ; close_type, which timestamps are set,
their order, duration and the state machine's outcome do not.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from contracts.ids import workflow_id
from tests.e2e.calls import TIMESTAMPS, place, wait_closed, wait_state
from tests.stack import SOLO_KEY, Stack

A_ONLY = {"a_call_time", "close_time"}
A_ANSWERED = {"a_call_time", "a_offhook_time", "b_call_time", "close_time"}
EVERY = set(TIMESTAMPS)


def timestamps_set(view: dict[str, Any]) -> set[str]:
    return {name for name in TIMESTAMPS if view[name] is not None}


def assert_consistent(view: dict[str, Any]) -> None:
    times = [view[name] for name in TIMESTAMPS if view[name] is not None]
    assert times == sorted(times), view
    expected = (
        0
        if view["conn_time"] is None
        else math.ceil((view["close_time"] - view["conn_time"]) / 1000)
    )
    assert view["duration"] == expected
    assert view["state"] == "close" and view["call_id"] and view["ch_state"]


async def final_view(stack: Stack, call_id: str) -> dict[str, Any]:
    """The record once the workflow has finished (late events folded in)."""
    await stack.client.get_workflow_handle(workflow_id(call_id)).result()
    view: dict[str, Any] = (await stack.api.get(f"/v1/calls/{call_id}")).json()
    return view


SCENARIOS = [
    # id, caller, called, close_type, timestamps set
    ("normal", "+8613800000001", "+8613900000002", 0, EVERY),
    ("a_busy", "+8613800000081", "+8613900000002", 3, A_ONLY),
    ("a_no_answer", "+8613800000082", "+8613900000002", 1, A_ONLY),
    ("a_unreachable", "+8613800000083", "+8613900000002", 1, A_ONLY),
    ("b_busy", "+8613800000001", "+8613900000081", 4, A_ANSWERED),
    ("b_no_answer", "+8613800000001", "+8613900000082", 2, A_ANSWERED),
    ("b_unreachable", "+8613800000001", "+8613900000083", 2, A_ANSWERED),
    ("b_rejects", "+8613800000001", "+8613900000084", 4, A_ANSWERED),
]


@pytest.mark.parametrize(("caller", "called", "close_type", "stamps"),
                         [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])  # fmt: skip
async def test_scenario(
    stack: Stack, channel: str, caller: str, called: str, close_type: int, stamps: set[str]
) -> None:
    call = await place(stack.api, channel=channel, caller=caller, called=called)
    view = await final_view(stack, call["id"])
    assert (view["channel"], view["close_type"]) == (channel, close_type)
    assert timestamps_set(view) == stamps
    assert_consistent(view)


async def test_max_duration(stack: Stack, channel: str) -> None:
    call = await place(stack.api, channel=channel, called="+8613900000085", max_duration=2)
    view = await final_view(stack, call["id"])
    assert view["close_type"] == 5 and view["duration"] == 2
    assert timestamps_set(view) == EVERY
    assert_consistent(view)


async def test_hangup_via_api(stack: Stack, channel: str) -> None:
    async with stack.as_tenant(SOLO_KEY) as solo:
        call = await place(solo, channel=channel, called="+8613900000085", max_duration=600)
        await wait_state(solo, call["id"], "conn")
        second = {"caller": "+8613800000001", "called": "+8613900000002", "channel": channel}
        busy = await solo.post("/v1/calls", json=second)
        assert busy.status_code == 409 and busy.json()["code"] == "line_busy"
        assert (await solo.post(f"/v1/calls/{call['id']}/hangup")).status_code == 202
        view = await wait_closed(solo, call["id"])
        assert view["close_type"] == 0
        assert_consistent(view)
        again = await solo.post(f"/v1/calls/{call['id']}/hangup")
        assert again.status_code == 409 and again.json()["code"] == "already_closed"
        await final_view(stack, call["id"])  # the line is released when the workflow ends
        follow_up = await place(solo, channel=channel)
        await wait_closed(solo, follow_up["id"])


async def test_vendor_5xx_on_placing(
    stack: Stack, channel: str, sim_faults: httpx.AsyncClient
) -> None:
    await stack.sims[channel].put("/_sim/faults", json={"place_call": "http_500"})
    call = await place(stack.api, channel=channel)
    view = await wait_closed(stack.api, call["id"])
    assert view["close_type"] == 6 and view["call_id"] is None and view["duration"] == 0
    # An answered error placed nothing: CC tries again (VENDORS.md), every try fails here.
    assert [(a["outcome"], a["tries"]) for a in view["attempts"]] == [("failed", 3)]
    calls = (await stack.sims[channel].get("/_sim/calls")).json()
    assert all(call["id"] not in (c.get("userData"), c.get("tag")) for c in calls)


async def test_duplicated_and_reordered_delivery(
    stack: Stack, channel: str, sim_faults: httpx.AsyncClient
) -> None:
    faults = {"delivery": {"duplicate": 0.5, "reorder": True}, "seed": 11}
    await stack.sims[channel].put("/_sim/faults", json=faults)
    call = await place(stack.api, channel=channel)
    view = await final_view(stack, call["id"])
    assert view["close_type"] == 0 and timestamps_set(view) == EVERY
    assert_consistent(view)
    events = (await stack.api.get(f"/v1/calls/{call['id']}/events")).json()["items"]
    assert events and all(e["applied"] for e in events)


async def test_a_place_request_whose_outcome_is_unknown_is_never_dialled_twice(
    stack: Stack, channel: str, sim_faults: httpx.AsyncClient
) -> None:
    """The vendor places the call but its answer never comes (VENDORS.md, "Placing a call
    whose outcome is unknown"): CC never places it again, on any channel, and the call closes
    (it goes on if the call's events arrive, else it closes with 7)."""
    await stack.sims[channel].put("/_sim/faults", json={"place_call": "timeout_after_accept"})
    call = await place(stack.api, channel=channel)
    view = await wait_closed(stack.api, call["id"], within=120)
    assert view["close_type"] in (0, 7)
    dialled = [
        vendor_call
        for sim in stack.sims.values()
        for vendor_call in (await sim.get("/_sim/calls")).json()
        if call["id"]
        in (vendor_call.get("userData"), vendor_call.get("tag"), vendor_call.get("callappdata"))
    ]
    assert len(dialled) == 1
