"""Failover before dialling: a vendor fault moves an unpinned call to the next channel."""

from __future__ import annotations

import httpx

from tests.e2e.calls import callback_requests, place, wait_closed
from tests.stack import Stack


async def test_failing_channel_is_skipped_and_listed_in_attempts(
    stack: Stack, sim_faults: httpx.AsyncClient
) -> None:
    await stack.sims["e9"].put("/_sim/faults", json={"place_call": "http_500"})
    call = await place(stack.api)
    assert call["channel"] == "e9"  # first choice by priority
    view = await wait_closed(stack.api, call["id"])
    assert view["channel"] == "hw" and view["close_type"] == 0
    assert [(a["channel"], a["outcome"]) for a in view["attempts"]] == [
        ("e9", "failed"),
        ("hw", "placed"),
    ]
    assert len(await callback_requests(stack.sims["e9"], call["id"])) == 3  # refused, retried
    assert view["attempts"][0]["tries"] == 3
    e9_calls = (await stack.sims["e9"].get("/_sim/calls")).json()
    assert all(c["userData"] != call["id"] for c in e9_calls)  # but e9 never dialled


async def test_every_channel_failing_closes_with_6(
    stack: Stack, sim_faults: httpx.AsyncClient
) -> None:
    for sim in stack.sims.values():
        await sim.put("/_sim/faults", json={"place_call": "http_500"})
    call = await place(stack.api)
    view = await wait_closed(stack.api, call["id"], within=90)
    assert view["close_type"] == 6 and view["call_id"] is None
    assert [a["channel"] for a in view["attempts"]] == ["e9", "hw", "jy"]
    assert all(a["outcome"] == "failed" for a in view["attempts"])


async def test_a_rejected_call_does_not_fail_over(
    stack: Stack, sim_faults: httpx.AsyncClient
) -> None:
    await stack.sims["e9"].put("/_sim/faults", json={"place_call": "auth_reject"})
    call = await place(stack.api)
    view = await wait_closed(stack.api, call["id"])
    assert view["close_type"] == 255
    assert [(a["channel"], a["outcome"]) for a in view["attempts"]] == [("e9", "rejected")]
