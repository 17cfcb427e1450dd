"""Faults on channel e9: duplicated and reordered webhooks, silent or failing vendors,
lost signals, retried dials."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime

import httpx
from temporalio.testing import ActivityEnvironment

from activities.channels import ChannelActivities
from channels.base import CallEvent, PlaceCallRequest
from channels.e9 import BEIJING
from channels.registry import build_channels
from core.types import CloseType, EventKind
from store import inbox
from store.db import make_engine, now_ms, session_scope
from tests.e2e.calls import callback_requests, place, wait_closed, wait_state
from tests.stack import Stack
from workflows.types import PlaceCallInput, workflow_id

# e9 event name → the record timestamp it sets (read from VENDORS.md, independently of the
# adapter's own table)
E9_TIMESTAMP_OF = {
    "callA": "a_call_time", "answerA": "a_offhook_time", "callB": "b_call_time",
    "answerB": "b_offhook_time", "bridge": "conn_time", "hangup": "close_time",
}  # fmt: skip


def e9_ms(stamp: str) -> int:
    return int(datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING).timestamp() * 1000)


async def sent_events(sim: httpx.AsyncClient, cc_call_id: str) -> list[dict[str, object]]:
    log = (await sim.get("/_sim/log")).json()["events"]
    events = [json.loads(e["body"]) for e in log]
    return [e for e in events if e["userData"] == cc_call_id]


async def test_duplicated_and_reordered_webhooks_give_the_clean_record(
    stack: Stack, sim_faults: httpx.AsyncClient
) -> None:
    await sim_faults.put("/_sim/faults", json={"delivery": {"duplicate": 0.5, "reorder": True},
                                               "seed": 7})  # fmt: skip
    call = await place(stack.api)
    # with reordering, events can follow the hangup: the record is final when the workflow is
    await stack.client.get_workflow_handle(workflow_id(call["id"])).result()
    view = (await stack.api.get(f"/v1/calls/{call['id']}")).json()
    sent = await sent_events(sim_faults, call["id"])
    assert len(sent) > len({e["eventId"] for e in sent})  # some really were sent twice
    stored = (await stack.api.get(f"/v1/calls/{call['id']}/events")).json()["items"]
    arrival = list(dict.fromkeys(e["kind"] for e in sorted(stored, key=lambda e: e["id"])))
    emitted = [kind.value for kind in EventKind if kind is not EventKind.RECORDING_READY]
    assert sorted(arrival) == sorted(emitted) and arrival != emitted  # arrived out of order
    expected = {E9_TIMESTAMP_OF[str(e["event"])]: e9_ms(str(e["timestamp"]))
                for e in sent if e["event"] in E9_TIMESTAMP_OF}  # fmt: skip
    assert {name: view[name] for name in expected} == expected
    assert view["duration"] == math.ceil((view["close_time"] - view["conn_time"]) / 1000)
    assert (view["close_type"], view["ch_state"], view["state"]) == (0, "hangup:1", "close")


async def test_silent_vendor_is_closed_by_the_watchdog(
    stack: Stack, sim_faults: httpx.AsyncClient
) -> None:
    await sim_faults.put("/_sim/faults", json={"delivery": {"drop": 1.0}})
    call = await place(stack.api, max_duration=1)
    view = await wait_closed(stack.api, call["id"], within=60)
    assert view["close_type"] == 255
    assert view["call_id"]  # placed; the vendor just never reported
    log = (await sim_faults.get("/_sim/log")).json()["requests"]
    assert any(
        r["path"].endswith("/Calls/CallCancel") and view["call_id"] in r["body"] for r in log
    )


async def test_vendor_5xx_on_placing_closes_with_6(
    stack: Stack, sim_faults: httpx.AsyncClient
) -> None:
    await sim_faults.put("/_sim/faults", json={"place_call": "http_500"})
    call = await place(stack.api, channel="e9")  # pinned: no failover
    view = await wait_closed(stack.api, call["id"])
    assert view["close_type"] == 6 and view["call_id"] is None
    assert [a["outcome"] for a in view["attempts"]] == ["failed"]
    assert "HTTP 500" in view["attempts"][0]["error"]


async def test_vendor_not_answering_closes_with_7(
    stack: Stack, sim_faults: httpx.AsyncClient
) -> None:
    await sim_faults.put("/_sim/faults", json={"place_call": "timeout"})
    call = await place(stack.api, channel="e9")  # pinned: no failover
    view = await wait_closed(stack.api, call["id"], within=60)
    assert view["close_type"] == 7


async def test_a_stored_event_whose_signal_was_lost_is_delivered_later(stack: Stack) -> None:
    call = await place(stack.api, called="+8613900000085", max_duration=600)
    live = await wait_state(stack.api, call["id"], "conn")
    lost = CallEvent(cc_call_id=call["id"], vendor_call_id=live["call_id"], kind=EventKind.HANGUP,
                     at=now_ms(), ch_state="hangup:0", close_type=CloseType.NORMAL,
                     dedupe_key=f"lost-{call['id']}")  # fmt: skip
    engine = make_engine(stack.settings.database_url)
    with session_scope(engine) as s:  # stored as the webhook route would, never signalled
        inbox.store_event(s, "e9", lost, b"{}", "application/json")
    engine.dispose()
    view = await wait_closed(stack.api, call["id"], within=30)
    assert (view["close_type"], view["ch_state"]) == (0, "hangup:0")
    events = (await stack.api.get(f"/v1/calls/{call['id']}/events")).json()["items"]
    assert all(e["applied"] for e in events if e["kind"] == "hangup")


async def test_a_retried_dial_finds_the_call_instead_of_dialling_again(stack: Stack) -> None:
    channels = build_channels(stack.settings)
    engine = make_engine(stack.settings.database_url)
    activities = ChannelActivities(channels, engine)
    request = PlaceCallRequest(cc_call_id=f"retry-{now_ms()}", caller="+8613800000001",
                               called="+8613900000002", display_to_a="+861088000000",
                               display_to_b="+8613800000001", agent="+861088000000",
                               max_duration_s=60)  # fmt: skip
    inp = PlaceCallInput(channel="e9", request=request)
    first = ActivityEnvironment()
    placed = await first.run(activities.place_call, inp)
    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(retry.info, attempt=2)
    again = await retry.run(activities.place_call, inp)
    assert again.vendor_call_id == placed.vendor_call_id and again.already_placed
    assert len(await callback_requests(stack.sim, request.cc_call_id)) == 1
    for channel in channels.values():
        await channel.aclose()
    engine.dispose()
