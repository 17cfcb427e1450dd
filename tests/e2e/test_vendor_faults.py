"""Faults on channel e9: duplicated and reordered webhooks, silent or failing vendors,
lost signals, retried dials."""

from __future__ import annotations

import json
import math
from datetime import datetime

import httpx

from channels.e9_events import BEIJING
from channels.events import CallEvent
from contracts.ids import late_workflow_id, workflow_id
from core.types import CloseType, EventKind
from store import inbox
from store.db import make_engine, now_ms, session_scope
from tests.e2e.calls import callback_requests, place, wait_closed, wait_state
from tests.stack import Stack
from tests.support import wait_for

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


async def test_a_vendor_whose_webhooks_never_arrive_is_asked_what_became_of_the_call(
    stack: Stack, sim_faults: httpx.AsyncClient
) -> None:
    """Every webhook lost for good (a wrong public URL, a vendor that gave up): after
    CC_SETUP_SILENCE_S CC asks e9's CallResult and closes the call with the vendor's own word,
    its bridge derived from the hang-up's duration: the line is not held for an hour."""
    await sim_faults.put("/_sim/faults", json={"delivery": {"drop": 1.0}})
    call = await place(stack.api)
    view = await wait_closed(stack.api, call["id"], within=30)
    assert (view["close_type"], view["ch_state"]) == (0, "hangup:1")
    assert view["conn_time"] and view["duration"] > 0 and view["a_call_time"]
    log = (await sim_faults.get("/_sim/log")).json()["requests"]
    asked = [r for r in log if "/CallResult" in r["path"] and view["call_id"] in r["query"]]
    assert asked
    events = (await stack.api.get(f"/v1/calls/{call['id']}/events")).json()["items"]
    assert events and all(e["applied"] for e in events)


async def test_vendor_5xx_on_placing_closes_with_6(
    stack: Stack, sim_faults: httpx.AsyncClient
) -> None:
    await sim_faults.put("/_sim/faults", json={"place_call": "http_500"})
    call = await place(stack.api, channel="e9")  # pinned: no failover
    view = await wait_closed(stack.api, call["id"])
    assert view["close_type"] == 6 and view["call_id"] is None
    assert [(a["outcome"], a["tries"]) for a in view["attempts"]] == [("failed", 3)]
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


async def test_a_place_request_whose_answer_timed_out_is_never_placed_again(
    stack: Stack, sim_faults: httpx.AsyncClient
) -> None:
    """e9 takes the call but its answer never comes: the outcome is unknown, so CC neither
    retries nor fails over (routing would allow it); the call's own events show it was
    placed and it is followed to the end."""
    await sim_faults.put("/_sim/faults", json={"place_call": "timeout_after_accept"})
    call = await place(stack.api)  # automatic routing: failover allowed
    view = await wait_closed(stack.api, call["id"], within=40)
    assert len(await callback_requests(stack.sim, call["id"])) == 1
    assert [(a["channel"], a["outcome"]) for a in view["attempts"]] == [
        ("e9", "placed_unconfirmed")]  # fmt: skip
    assert (view["close_type"], view["channel"]) == (0, "e9") and view["call_id"]


async def test_the_vendors_late_word_corrects_a_255_close(stack: Stack) -> None:
    """An operator terminates a live call's workflow: the lease reconciler frees the line,
    asks e9 to hang up and closes the record with 255. e9's hang-up then reaches a finished
    workflow, a late event: LateEventsWorkflow folds it in and the vendor's reason stands."""
    call = await place(stack.api, called="+8613900000085", max_duration=600)
    await wait_state(stack.api, call["id"], "conn")
    await stack.client.get_workflow_handle(workflow_id(call["id"])).terminate("operator")

    async def corrected() -> dict[str, object] | None:
        view: dict[str, object] = (await stack.api.get(f"/v1/calls/{call['id']}")).json()
        return view if view["state"] == "close" and view["close_type"] == 0 else None

    view = await wait_for(corrected, 40, "the vendor's hang-up to replace CC's 255")
    assert view["ch_state"] == "hangup:-9" and view["conn_time"]
    late = stack.client.get_workflow_handle(late_workflow_id(call["id"]))
    assert (await late.describe()).workflow_type == "LateEventsWorkflow"
