"""activities/seats.py (with seat_rings.py): an inbound call that rings a seat CC polls (hw:
CEC's own IVR routed it) becomes one record and one CallWorkflow, however often its ring is
polled; the seat is held for it and released by its hang-up; its events, the id-less ones
too, go to it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine
from sqlmodel import select
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.testing import ActivityEnvironment

from activities.seats import SeatActivities
from callflow.inbound import inbound_call_id
from channels.errors import SeatSignedOut
from channels.events import SeatContext, SeatLogin, SeatPoll
from channels.hw_events import parse_seat_event, ring_of
from channels.registry import Settings
from contracts.call import CallInput
from contracts.ids import CALL_WORKFLOW, VENDOR_EVENT_SIGNAL, workflow_id
from contracts.seat import (
    INBOUND_CALL_SIGNAL,
    RELEASE_SEAT_SIGNAL,
    PollSeatInput,
    SeatClaim,
    seat_workflow_id,
)
from core.types import ChannelMode, DisplayPolicy
from store.db import session_scope
from store.lines import find_line, lease_line
from store.models import CallRecordRow, VendorEvent
from tests.activities.seat_support import FailingGateway, FakeTemporal, seat_store
from tests.notify.support import deliveries, subscribe

SEAT, PHONE, CALL = "10001", "+8613800000001", "1700000000-9"
OFFER = {"caller": "13900000002", "called": "4001234567", "callid": CALL}
CC_ID = inbound_call_id("hw", CALL)
SEAT_WF = seat_workflow_id("hw", SEAT)


def polled(event_type: str, content: Any = None, made: int = 0) -> dict[str, Any]:
    return {"eventType": event_type, "workNo": SEAT, "content": content,
            "eventGenTime": 1_700_000_000_000 + made}  # fmt: skip


RING = polled("AgentEvent_Ringing", OFFER, 1)
CALL_EVENTS = [
    RING, RING,  # the same poll answer twice: a gateway's repeat
    polled("AgentEvent_Auto_Answer", OFFER, 2), polled("AgentOther_PhoneAlerting", None, 3),
    polled("AgentOther_PhoneOffhook", {"type": "main"}, 4),
    polled("AgentEvent_Talking", {**OFFER, "feature": "0"}, 5),
    polled("AgentEvent_Call_Release", CALL, 6),
]  # fmt: skip


@dataclass
class RingingGateway(FailingGateway):
    """A polled channel answering ``bodies`` one per poll (parsed as channels/hw.py does),
    then losing the session (which ends the poll activity)."""

    bodies: list[dict[str, Any]] = field(default_factory=list)

    async def poll_seat(self, login: SeatLogin, context: SeatContext) -> SeatPoll:
        if not self.bodies:
            raise SeatSignedOut("100-006")
        body = self.bodies.pop(0)
        events, context = parse_seat_event(login.seat, "http://gw", body, context, 1)
        ring = ring_of(body, 1)
        return SeatPoll(events=events, context=context, raw=b"{}",
                               rings=[ring] if ring else [])  # fmt: skip


@dataclass
class StartingTemporal(FakeTemporal):
    """Signals and starts as Temporal takes them: a workflow id is started once."""

    started: dict[str, tuple[str, Any, dict[str, Any]]] = field(default_factory=dict)
    start_attempts: int = 0

    async def start_workflow(self, workflow: str, arg: Any, *, id: str, **options: Any) -> None:
        self.start_attempts += 1
        if id in self.started:
            raise WorkflowAlreadyStartedError(id, workflow)
        self.started[id] = (workflow, arg, options)

    def to_seat(self, name: str) -> list[Any]:
        return [arg for wf, n, arg in self.signals if (wf, n) == (SEAT_WF, name)]


async def poll(engine: Engine, bodies: list[dict[str, Any]]) -> StartingTemporal:
    """One poll activity of the seat that takes ``bodies``, one per poll."""
    gateway, temporal = RingingGateway(0, bodies=list(bodies)), StartingTemporal()
    activities = SeatActivities({"hw": cast(Any, gateway)}, engine, "", Settings())
    inp = PollSeatInput(channel="hw", seat=SEAT, phonenum=PHONE, run_s=600, context=SeatContext())
    await ActivityEnvironment(client=cast(Client, temporal)).run(activities.poll_seat, inp)
    return temporal


def rows(engine: Engine) -> list[CallRecordRow]:
    with session_scope(engine) as s:
        return list(s.exec(select(CallRecordRow)).all())


async def test_a_ring_polled_twice_makes_one_record_and_one_workflow(tmp_path: Path) -> None:
    engine = seat_store(tmp_path, SEAT)
    temporal = await poll(engine, CALL_EVENTS)
    [row] = rows(engine)
    assert (row.cc_call_id, row.direction, row.channel, row.agent) == (CC_ID, "in", "hw", SEAT)
    assert (row.vendor_call_id, row.tenant) == (CALL, "t1")
    assert (row.caller, row.called, row.main_num, row.ext_num) == (
        "+8613900000002", PHONE, "+864001234567", SEAT)  # fmt: skip
    assert row.display == DisplayPolicy.PLATFORM.value and row.created == RING["eventGenTime"]
    # one workflow, started once (each ring tries: the repeats find it started)
    assert list(temporal.started) == [workflow_id(CC_ID)] and temporal.start_attempts == 3
    workflow, call, options = temporal.started[workflow_id(CC_ID)]
    assert workflow == CALL_WORKFLOW and isinstance(call, CallInput)
    assert call.record.cc_call_id == CC_ID and call.record.direction == "in"
    assert (call.line.channel, call.line.agent, call.line.token) == ("hw", SEAT, row.lease_token)
    assert call.routing.modes == {"hw": ChannelMode.POLL} and not call.routing.may_fail_over
    assert options["task_queue"] == Settings().task_queue
    # the seat is held for the call, then let go by its hang-up
    claims = temporal.to_seat(INBOUND_CALL_SIGNAL)
    assert claims and all(c == SeatClaim(cc_call_id=CC_ID, phonenum=PHONE) for c in claims)
    assert temporal.to_seat(RELEASE_SEAT_SIGNAL) == [CC_ID]
    # every event of the call went to it, the phone's id-less ones by the seat's lease
    with session_scope(engine) as s:
        stored = s.exec(select(VendorEvent)).all()
        assert stored and {e.cc_call_id for e in stored} == {CC_ID}
        line = find_line(s, "hw", SEAT)
        assert line is not None and line.lease_call_id == CC_ID  # the workflow frees it
    signalled = {wf for wf, name, _ in temporal.signals if name.startswith(VENDOR_EVENT_SIGNAL)}
    assert signalled == {workflow_id(CC_ID)}
    engine.dispose()


async def test_a_ring_polled_again_in_a_later_poll_activity_changes_nothing(
    tmp_path: Path,
) -> None:
    engine = seat_store(tmp_path, SEAT)
    await poll(engine, [RING])
    again = await poll(engine, [RING])
    assert len(rows(engine)) == 1
    # asked to start again (its first start may have been lost), and told it is started
    assert again.start_attempts == 1
    engine.dispose()


async def test_a_ring_on_a_seat_busy_with_a_cc_call_is_not_an_inbound_call(
    tmp_path: Path,
) -> None:
    engine = seat_store(tmp_path, SEAT)
    with session_scope(engine) as s:
        assert lease_line(s, "t1", "hw", "cc-out-1") is not None
    temporal = await poll(engine, [RING])
    assert rows(engine) == [] and temporal.start_attempts == 0
    assert temporal.to_seat(INBOUND_CALL_SIGNAL) == []
    engine.dispose()


async def test_a_ring_of_a_closed_call_starts_nothing(tmp_path: Path) -> None:
    engine = seat_store(tmp_path, SEAT)
    await poll(engine, CALL_EVENTS)
    with session_scope(engine) as s:  # the call closed: its workflow freed the line
        line = find_line(s, "hw", SEAT)
        assert line is not None
        line.lease_call_id = None
    late = await poll(engine, [RING])
    assert late.start_attempts == 0 and late.to_seat(INBOUND_CALL_SIGNAL) == []
    assert len(rows(engine)) == 1
    engine.dispose()


async def test_a_seat_cc_does_not_have_records_nothing(tmp_path: Path) -> None:
    engine = seat_store(tmp_path, "10002")  # not this seat
    temporal = await poll(engine, [RING])
    assert rows(engine) == [] and temporal.start_attempts == 0
    engine.dispose()


async def test_an_hw_inbound_call_tells_the_app_it_was_born(tmp_path: Path) -> None:
    """Issue 23: the three ways a call is born built it three times, and this one never
    queued the app's ``call.state`` init. They share one path now (contracts/start.py)."""
    engine = seat_store(tmp_path, SEAT)
    subscribe(engine, "https://hooks.example/cc", tenant="t1")
    await poll(engine, [RING])
    [told] = deliveries(engine, CC_ID)
    assert (told.event_type, told.tenant) == ("call.state", "t1")
    assert json.loads(told.call_json)["state"] == "init"
    assert json.loads(told.call_json)["direction"] == "in"
    engine.dispose()
