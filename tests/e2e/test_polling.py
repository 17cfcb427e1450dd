"""Channel hw on the live stack: a CC-Gateway seat signed in for its calls, one long poll per
seat (SeatWorkflow), events inbox first, guids rotating, a session lost mid-call, and a seat
signed out once idle (CC_HW_SEAT_IDLE_S)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

from contracts.ids import workflow_id
from contracts.seat import seat_workflow_id
from tests.e2e.calls import TIMESTAMPS, place, wait_closed
from tests.stack import SOLO_KEY, SOLO_LINE, Stack
from tests.support import wait_for

SEAT = SOLO_LINE["hw"]  # the solo tenant's one hw line: every call of theirs takes it


@pytest.fixture
async def gateway(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The hw simulator's control API; its gateway timers and faults are reset afterwards."""
    sim = stack.sims["hw"]
    defaults = (await sim.get("/_sim/gateway")).json()["config"]
    yield sim
    await sim.put("/_sim/faults", json={})
    await sim.put("/_sim/gateway", json=defaults)


async def seat_view(sim: httpx.AsyncClient, seat: str) -> dict[str, Any]:
    view = (await sim.get("/_sim/gateway")).json()
    found: dict[str, Any] = next(s for s in view["seats"] if s["workno"] == seat)
    return found


async def refused_polls(sim: httpx.AsyncClient) -> int:
    return int((await sim.get("/_sim/gateway")).json()["concurrent_polls_refused"])


def requests_to(log: dict[str, Any], method: str, path_end: str) -> list[dict[str, Any]]:
    return [r for r in log["requests"] if r["method"] == method and r["path"].endswith(path_end)]


async def test_a_call_on_a_seat_closes_with_every_timestamp(
    stack: Stack, gateway: httpx.AsyncClient
) -> None:
    call = await place(stack.api, channel="hw")
    view = await wait_closed(stack.api, call["id"])
    assert view["close_type"] == 0
    assert re.fullmatch(r"\d+-\d+", view["call_id"])  # CC-Gateway's "<epoch s>-<seq>"
    times = [view[name] for name in TIMESTAMPS]
    assert None not in times, view
    assert times == sorted(times)
    await stack.client.get_workflow_handle(workflow_id(call["id"])).result()
    view = (await stack.api.get(f"/v1/calls/{call['id']}")).json()
    assert view["audio_url"]
    log = (await gateway.get("/_sim/log")).json()
    callouts = requests_to(log, "PUT", "/callout")
    assert [r for r in callouts if call["id"] in str(r["body"])]  # callappdata: CC's id
    assert await refused_polls(gateway) == 0


async def test_polled_events_are_kept_raw_in_the_inbox(stack: Stack) -> None:
    call = await place(stack.api, channel="hw")
    await stack.client.get_workflow_handle(workflow_id(call["id"])).result()
    events = (await stack.api.get(f"/v1/calls/{call['id']}/events")).json()["items"]
    assert {"a_ringing", "bridged", "hangup"} <= {e["kind"] for e in events}
    assert all(e["applied"] and '"retcode"' in e["body"] for e in events)


async def test_two_calls_in_a_row_on_one_seat_share_its_sign_in(
    stack: Stack, gateway: httpx.AsyncClient
) -> None:
    await gateway.delete("/_sim/log")  # count this test's sign-ins only
    async with stack.as_tenant(SOLO_KEY) as solo:
        first = await place(solo, channel="hw")
        assert (await wait_closed(solo, first["id"]))["close_type"] == 0
        second = await place(solo, channel="hw")
        assert (await wait_closed(solo, second["id"]))["close_type"] == 0
    log = (await gateway.get("/_sim/log")).json()
    sign_ins = [r for r in requests_to(log, "PUT", f"/onlineagent/{SEAT}")]
    assert len(sign_ins) == 1  # the seat stayed signed in with the same agent phone
    assert await refused_polls(gateway) == 0


async def test_a_guid_rotating_mid_call_is_followed(
    stack: Stack, gateway: httpx.AsyncClient
) -> None:
    await gateway.put("/_sim/gateway", json={"guid_interval_ms": 200})
    call = await place(stack.api, channel="hw", called="+8613900000002")
    view = await wait_closed(stack.api, call["id"])
    assert view["close_type"] == 0 and view["conn_time"] is not None
    assert await refused_polls(gateway) == 0


async def test_a_session_lost_mid_call_is_signed_in_again_and_the_call_followed(
    stack: Stack, gateway: httpx.AsyncClient
) -> None:
    await gateway.put("/_sim/timing", json={"talk_ms": 4000})
    call = await place(stack.api, channel="hw")
    await wait_for(lambda: _state_is(stack, call["id"], "conn"), 30, "the call bridged")
    await gateway.put("/_sim/faults", json={"gateway": "signed_out"})
    view = await wait_closed(stack.api, call["id"], within=60)
    assert view["close_type"] == 0  # it talked: followed to its end, by its events or reconciled
    assert view["conn_time"] is not None
    assert await refused_polls(gateway) == 0
    await gateway.put("/_sim/timing", json={"talk_ms": 1500})


async def _state_is(stack: Stack, call_id: str, state: str) -> bool:
    return bool((await stack.api.get(f"/v1/calls/{call_id}")).json()["state"] == state)


async def test_an_idle_seat_is_signed_out(stack: Stack, gateway: httpx.AsyncClient) -> None:
    async with stack.as_tenant(SOLO_KEY) as solo:
        call = await place(solo, channel="hw")
        await wait_closed(solo, call["id"])
    handle = stack.client.get_workflow_handle(seat_workflow_id("hw", SEAT))

    async def ended() -> bool:
        status = (await handle.describe()).status
        return status == WorkflowExecutionStatus.COMPLETED

    await wait_for(ended, 60, "the idle seat's workflow to end")
    assert (await seat_view(gateway, SEAT))["signed_in"] is False
