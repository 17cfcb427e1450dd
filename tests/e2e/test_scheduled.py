"""Scheduled callbacks end to end (issue 24): real API, worker, Temporal and the e9 simulator."""

from __future__ import annotations

import time

from tests.e2e.calls import callback_requests, place, wait_closed
from tests.stack import Stack

AHEAD_MS = 3_000


async def test_a_scheduled_call_is_placed_when_due(stack: Stack) -> None:
    due = int(time.time() * 1000) + AHEAD_MS
    call = await place(stack.api, channel="e9", not_before=due)
    assert call["state"] == "scheduled" and call["channel"] == ""
    assert await callback_requests(stack.sim, call["id"]) == []  # nothing dialled yet
    view = await wait_closed(stack.api, call["id"], within=40 + AHEAD_MS / 1000)
    assert view["close_type"] == 0 and view["channel"] == "e9" and view["wait_reason"] is None
    assert view["a_call_time"] >= due - 1_000  # e9 stamps its events to the second
    [dialled] = await callback_requests(stack.sim, call["id"])
    assert dialled["at"] >= due


async def test_a_cancelled_scheduled_call_is_never_dialled(stack: Stack) -> None:
    due = int(time.time() * 1000) + AHEAD_MS
    call = await place(stack.api, channel="e9", not_before=due)
    cancel = await stack.api.post(f"/v1/calls/{call['id']}/hangup")
    assert cancel.status_code == 202, cancel.text
    view = await wait_closed(stack.api, call["id"])
    assert (view["close_type"], view["a_call_time"], view["call_id"]) == (0, None, None)
    again = await stack.api.post(f"/v1/calls/{call['id']}/hangup")
    assert again.status_code == 409 and again.json()["code"] == "already_closed"
    assert await callback_requests(stack.sim, call["id"]) == []
