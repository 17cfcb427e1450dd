"""Callback calls end to end on channel e9: real API, worker, Temporal and simulator."""

from __future__ import annotations

import math

from temporalio.worker import Replayer

from contracts.ids import workflow_id
from tests.e2e.calls import TIMESTAMPS, callback_requests, place, wait_closed
from tests.stack import SOLO_KEY, Stack
from tests.support import wait_for
from workflows.call import CallWorkflow


async def test_normal_call_closes_with_every_timestamp(stack: Stack) -> None:
    call = await place(stack.api, biz_data="order-42")
    assert call["state"] == "init" and call["channel"] == "e9" and call["display"] == "passthrough"
    view = await wait_closed(stack.api, call["id"])
    times = [view[name] for name in TIMESTAMPS]
    assert None not in times, view
    assert times == sorted(times)
    assert view["close_type"] == 0
    assert view["duration"] == math.ceil((view["close_time"] - view["conn_time"]) / 1000)
    assert view["call_id"] and view["ch_state"] == "hangup:1"
    assert view["biz_data"] == "order-42"
    assert view["ch_audio_url"].endswith(".wav")
    assert [a["outcome"] for a in view["attempts"]] == ["placed"]
    events = (await stack.api.get(f"/v1/calls/{call['id']}/events")).json()["items"]
    assert [e["kind"] for e in events][-1] == "hangup"
    assert all(e["applied"] for e in events)


async def test_workflow_is_searchable_by_call_state(stack: Stack) -> None:
    call = await place(stack.api)
    await wait_closed(stack.api, call["id"])

    async def listed() -> bool:
        query = f"CallState = 'close' AND WorkflowId = '{workflow_id(call['id'])}'"
        return any([wf async for wf in stack.client.list_workflows(query)])

    assert await wait_for(listed, 20, "visibility to index CallState")


async def test_same_idempotency_key_places_one_call(stack: Stack) -> None:
    body = {"caller": "+8613800000001", "called": "+8613900000002"}
    headers = {"Idempotency-Key": "order-7-attempt"}
    first = await stack.api.post("/v1/calls", json=body, headers=headers)
    second = await stack.api.post("/v1/calls", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    other = await stack.api.post(
        "/v1/calls", json={**body, "called": "+8613900000003"}, headers=headers
    )
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"
    await wait_closed(stack.api, first.json()["id"])
    assert len(await callback_requests(stack.sim, first.json()["id"])) == 1


async def test_other_tenant_sees_404(stack: Stack) -> None:
    call = await place(stack.api)
    async with stack.as_tenant(SOLO_KEY) as solo:
        response = await solo.get(f"/v1/calls/{call['id']}")
    assert response.status_code == 404
    await wait_closed(stack.api, call["id"])


async def test_replay_of_a_finished_call_is_deterministic(stack: Stack) -> None:
    call = await place(stack.api)
    await wait_closed(stack.api, call["id"])
    handle = stack.client.get_workflow_handle(workflow_id(call["id"]))
    await handle.result()
    history = await handle.fetch_history()
    replayer = Replayer(workflows=[CallWorkflow], data_converter=stack.client.data_converter)
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
