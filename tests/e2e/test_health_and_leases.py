"""Health and leases on the live stack: a failing vendor leaves routing by itself and comes
back by itself; lines carry one call at a time under concurrency; a terminated workflow's
line is freed by the reconciler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlmodel import select

from contracts.ids import HEALTH_WORKFLOW_ID, workflow_id
from store.db import make_engine, now_ms, session_scope
from store.lines import ensure_line
from store.models import AgentLine, CallRecordRow
from store.tenants import add_api_key, ensure_tenant
from tests.e2e.calls import place, wait_closed, wait_state
from tests.stack import Stack
from tests.support import wait_for


async def channel(stack: Stack, name: str) -> dict[str, Any]:
    channels = (await stack.api.get("/v1/channels")).json()
    found: dict[str, Any] = next(c for c in channels if c["name"] == name)
    return found


async def test_failing_vendor_leaves_routing_and_comes_back_by_itself(
    stack: Stack, sim_faults: httpx.AsyncClient
) -> None:
    await stack.sims["e9"].put("/_sim/faults", json={"place_call": "http_500"})
    # Two calls whose requests to e9 all fail open its circuit (K = 3; one call counts 2).
    first, second = await asyncio.gather(place(stack.api), place(stack.api))

    async def e9_out() -> dict[str, Any] | None:
        e9 = await channel(stack, "e9")
        return e9 if not e9["enabled"] else None

    e9 = await wait_for(e9_out, 30, "e9 out of routing")
    assert e9["healthy"] is False and "placing calls fails" in e9["reason"]
    # While e9 is out (an 8 s cool-down here), calls no longer try it.
    skipped = await place(stack.api)
    assert skipped["channel"] == "hw"
    assert [a["channel"] for a in (await wait_closed(stack.api, skipped["id"]))["attempts"]] == [
        "hw"
    ]
    for call in (first, second):
        view = await wait_closed(stack.api, call["id"], within=60)
        assert [a["channel"] for a in view["attempts"]] == ["e9", "hw"]

    await stack.sims["e9"].put("/_sim/faults", json={})

    async def e9_back() -> dict[str, Any] | None:
        e9 = await channel(stack, "e9")
        return e9 if e9["healthy"] and e9["enabled"] else None

    await wait_for(e9_back, 30, "e9 back in routing")
    again = await place(stack.api)
    assert again["channel"] == "e9"
    assert (await wait_closed(stack.api, again["id"]))["close_type"] == 0
    health = await stack.client.get_workflow_handle(HEALTH_WORKFLOW_ID).query("health")
    assert health["e9"]["state"] in ("closed", "half_open")


@pytest.fixture
async def five_lines(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A tenant with five lines on e9 and five on hw, and nothing else."""
    engine = make_engine(stack.settings.database_url)
    with session_scope(engine) as s:
        ensure_tenant(s, "five")
        add_api_key(s, "five", "test-key-five")
        for c, name in enumerate(("e9", "hw")):
            for i in range(5):
                # hw lines are CC-Gateway seats: ids no other test tenant has
                agent = str(10060 + i) if name == "hw" else f"five-{name}-{i}"
                ensure_line(s, "five", name, agent, f"+86108{c}70000{i}")
    engine.dispose()
    async with stack.as_tenant("test-key-five") as api:
        yield api


async def test_concurrent_calls_never_share_a_line(
    stack: Stack, five_lines: httpx.AsyncClient
) -> None:
    body = {"caller": "+8613800000001", "called": "+8613900000002"}
    answers = await asyncio.gather(*(five_lines.post("/v1/calls", json=body) for _ in range(20)))
    accepted = [a.json() for a in answers if a.status_code == 201]
    refused = [a.json() for a in answers if a.status_code != 201]
    assert len(accepted) == 10 and all(r["code"] == "line_busy" for r in refused)
    lines = {(c["channel"], c["agent"]) for c in accepted}
    assert len(lines) == 10  # all ten live at once, each on its own line
    assert sorted(channel for channel, _ in lines) == ["e9"] * 5 + ["hw"] * 5

    for call in accepted:
        assert (await wait_closed(five_lines, call["id"]))["close_type"] == 0
    page = (await five_lines.get("/v1/lines", params={"limit": 50})).json()
    assert len(page["items"]) == 10 and not any(line["busy"] for line in page["items"])


async def test_terminated_workflow_frees_its_line(stack: Stack) -> None:
    call = await place(stack.api, channel="jy", called="+8613900000085", max_duration=600)
    await wait_state(stack.api, call["id"], "conn")
    handle = stack.client.get_workflow_handle(workflow_id(call["id"]))
    await handle.terminate(reason="operator test")
    engine = make_engine(stack.settings.database_url)

    def line_free() -> bool:
        with session_scope(engine) as s:
            line = s.exec(
                select(AgentLine).where(
                    AgentLine.channel == call["channel"], AgentLine.agent == call["agent"]
                )
            ).one()
            return line.lease_call_id is None

    async def freed() -> bool:
        return await asyncio.to_thread(line_free)

    # One reconciler period here is 2 s, after a lease is at least 2 s old.
    await wait_for(freed, 15, "the terminated call's line to be freed")
    view = (await stack.api.get(f"/v1/calls/{call['id']}")).json()
    # 255 from the reconciler, until the vendor's own hang-up (a late event) corrects it
    assert view["state"] == "close" and view["close_type"] in (255, 0)
    log = (await stack.sims["jy"].get("/_sim/log")).json()["requests"]
    hangups = [r for r in log if r["method"] == "POST" and view["call_id"] in r["path"]]
    assert hangups  # the vendor was told to end the call nobody watches any more
    with session_scope(engine) as s:
        row = s.exec(select(CallRecordRow).where(CallRecordRow.cc_call_id == call["id"])).one()
        assert row.close_time is not None and row.duration >= 0
    engine.dispose()


async def test_a_lease_without_a_workflow_is_freed_only_once_old(stack: Stack) -> None:
    """The API leases, then starts the workflow: a young lease with no workflow may be a call
    being started; an old one is lost. Both are looked at in the same reconciler round."""
    engine = make_engine(stack.settings.database_url)
    old = now_ms() - int(stack.settings.lease_min_age_s * 1000) - 5_000
    with session_scope(engine) as s:
        for name, leased_at in (("ghost-young", now_ms()), ("ghost-old", old)):
            line = ensure_line(s, "tenant-a", "e9", name, "+861089990001")
            line.lease_call_id, line.lease_token, line.leased_at = name, 7, leased_at
            s.add(line)

    def holder(agent: str) -> str | None:
        with session_scope(engine) as s:
            found = s.exec(select(AgentLine).where(AgentLine.agent == agent)).one()
            return found.lease_call_id

    async def old_freed() -> bool:
        return await asyncio.to_thread(holder, "ghost-old") is None

    await wait_for(old_freed, 15, "the old orphaned lease to be freed")
    assert await asyncio.to_thread(holder, "ghost-young") == "ghost-young"
    with session_scope(engine) as s:
        for name in ("ghost-young", "ghost-old"):
            s.delete(s.exec(select(AgentLine).where(AgentLine.agent == name)).one())
    engine.dispose()
