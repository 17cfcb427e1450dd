"""Channel hw's inbound calls: ``AgentEvent_Ringing`` and ``AgentEvent_Auto_Answer`` parsed
to unified events and to the ring CC records, alone and from the simulator's gateway."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from callflow.record import CallRecord, apply_events
from channels.events import CallEvent, SeatContext, SeatLogin, SeatPoll, SeatRing
from channels.hw import HwChannel
from channels.hw_events import parse_seat_event, ring_of
from channels.protocols import MemorySessions
from core.types import CallState, CloseType, DisplayPolicy, EventKind
from tests.simulators.hw_support import BASE, PASSWORD, hw_simulator

SEAT, CALL = "10001", "1700000000-9"
RECEIVED = 1_700_000_000_000
OFFER = {"caller": "13900000002", "called": "4001234567", "callid": CALL}
INBOUND = [  # what the seat sees of a customer CEC's IVR routed to it
    ("AgentEvent_Ringing", OFFER), ("AgentEvent_Auto_Answer", OFFER),
    ("AgentOther_PhoneAlerting", None), ("AgentOther_PhoneOffhook", {"type": "main"}),
    ("AgentState_Busy", None),
    ("AgentEvent_Talking", {**OFFER, "feature": "0"}),
    ("AgentMediaEvent_Record", {"callId": CALL, "fileName": "Y:/1/f.V3", "locationId": "1"}),
    ("AgentEvent_Customer_Release", {"callid": CALL, "number": "13900000002"}),
    ("AgentEvent_Call_Release", CALL), ("AgentOther_PhoneRelease", {"phoneState": 2}),
    ("AgentState_Ready", None),
]  # fmt: skip


def event(event_type: str, content: Any = None, gen: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"eventType": event_type, "workNo": SEAT, "content": content}
    if gen is not None:
        body["eventGenTime"] = gen
    return body


def parse(*events: dict[str, Any]) -> list[CallEvent]:
    context, out = SeatContext(), []
    for i, body in enumerate(events):
        parsed, context = parse_seat_event(SEAT, BASE, body, context, RECEIVED + i * 1000)
        out += parsed
    return out


@pytest.mark.parametrize("event_type", ["AgentEvent_Ringing", "AgentEvent_Auto_Answer"])
def test_a_ring_offers_the_seat_an_inbound_call(event_type: str) -> None:
    events = parse(event(event_type, OFFER))
    assert [e.kind for e in events] == [EventKind.A_DIALING, EventKind.A_ANSWERED,
                                        EventKind.B_DIALING, EventKind.B_RINGING]  # fmt: skip
    assert {e.vendor_call_id for e in events} == {CALL}
    assert {e.ch_state for e in events} == {event_type}
    assert len({e.dedupe_key for e in events}) == 4
    ring = ring_of(event(event_type, OFFER, gen=RECEIVED - 500), RECEIVED)
    assert ring == SeatRing(vendor_call_id=CALL, caller="13900000002", called="4001234567",
                            at=RECEIVED - 500)  # fmt: skip


def test_a_repeated_ring_keeps_its_dedupe_keys() -> None:
    ring = event("AgentEvent_Ringing", OFFER)
    once, twice = parse(ring), parse(ring, ring)
    assert {e.dedupe_key for e in twice} == {e.dedupe_key for e in once}


@pytest.mark.parametrize(
    "body",
    [
        event("AgentEvent_Talking", OFFER),  # not a ring
        event("AgentEvent_Ringing", {"caller": "139", "called": "400"}),  # no call id
        event("AgentEvent_Ringing", CALL),  # no numbers: not the documented shape
    ],
)
def test_only_a_ring_with_its_call_id_is_a_ring(body: dict[str, Any]) -> None:
    assert ring_of(body, RECEIVED) is None


def test_an_inbound_call_s_events_set_every_time_and_close_it_once_normally() -> None:
    events = parse(*(event(t, c) for t, c in INBOUND))
    record = CallRecord(cc_call_id="in1", tenant="t", agent=SEAT, vendor_call_id=CALL, caller="c",
                        called="a", channel="hw", created=RECEIVED,
                        display=DisplayPolicy.PLATFORM, direction="in")  # fmt: skip
    record = apply_events(record, events)
    assert record.state is CallState.CLOSE and record.close_type is CloseType.NORMAL
    times = [record.a_call_time, record.a_offhook_time, record.b_call_time,
             record.b_offhook_time, record.conn_time, record.close_time]  # fmt: skip
    assert None not in times and times == sorted(times)  # type: ignore[type-var]
    assert record.ch_audio_url and record.ch_audio_url.startswith(f"{BASE}/agentgateway/")
    assert len({e.dedupe_key for e in events if e.kind is EventKind.HANGUP}) == 1
    # every event of the call names it, the seat's phone's own included
    assert {e.vendor_call_id for e in events} == {CALL}
    phone = ("AgentOther_PhoneAlerting", "AgentOther_PhoneOffhook")
    kinds = {e.ch_state: e.kind for e in events if e.ch_state in phone}
    assert kinds == {"AgentOther_PhoneAlerting": EventKind.B_RINGING,
                     "AgentOther_PhoneOffhook": EventKind.B_ANSWERED}  # fmt: skip


@pytest.mark.parametrize(("detect", "close_type"), [(8, CloseType.B_UNREACHABLE),
                                                    (47, CloseType.B_BUSY)])  # fmt: skip
def test_an_agent_phone_that_fails_an_inbound_call_closes_it_on_leg_b(
    detect: int, close_type: CloseType
) -> None:
    """The customer (A) is on the line in CEC's IVR; the seat's phone (B) does not answer or
    is busy: close_type 2 or 4, never A's 1 or 3."""
    failed = [("AgentEvent_Ringing", OFFER), ("AgentOther_PhoneAlerting", None),
              ("OUTBOUND_DETECT_EVENT", {"callId": CALL, "detect": detect, "desc": "x"}),
              ("AgentEvent_Call_Out_Fail", CALL), ("AgentEvent_Connect_Fail", CALL)]  # fmt: skip
    hangups = [e for e in parse(*(event(t, c) for t, c in failed))
               if e.kind is EventKind.HANGUP]  # fmt: skip
    assert len({e.dedupe_key for e in hangups}) == 1  # both failure events: one end
    assert {e.close_type for e in hangups} == {close_type}


# -- against the simulator's gateway ---------------------------------------------------------


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[httpx.AsyncClient, HwChannel]]:
    timing = {"ring_ms": 40, "talk_ms": 200, "recording_delay_ms": 300}
    async with hw_simulator(timing) as (control, transport):
        await control.put("/_sim/gateway", json={"poll_hold_ms": 200})
        hw = HwChannel(BASE, PASSWORD, MemorySessions(), transport=transport)
        yield control, hw
        await hw.aclose()


async def test_the_channel_s_poll_says_which_call_rang_the_seat(
    gateway: tuple[httpx.AsyncClient, HwChannel],
) -> None:
    control, hw = gateway
    login = SeatLogin(seat=SEAT, password="", phonenum="+8613800000001")
    await hw.sign_in(login)
    context = SeatContext()
    for _ in ("AgentOther_InService", "AgentState_Ready"):
        context = (await hw.poll_seat(login, context)).context
    customer = {"main_num": "+864001234567", "caller": "+8613900000002", "ext": SEAT}
    answer = await control.post("/_sim/inbound", json=customer)
    call_id = answer.json()["callid"]
    rings: list[SeatRing] = []
    events: list[CallEvent] = []
    types: list[str] = []
    deadline = time.monotonic() + 10
    while "AgentState_Ready" not in types:
        assert time.monotonic() < deadline, types
        polled = await hw.poll_seat(login, context)
        assert isinstance(polled, SeatPoll)
        context, rings, events = polled.context, rings + polled.rings, events + polled.events
        if body := json.loads(polled.raw)["event"]:
            types.append(body["eventType"])
    assert [(r.vendor_call_id, r.caller, r.called) for r in rings] == [
        (call_id, "13900000002", "4001234567")
    ] * 2  # Ringing, then Auto_Answer (the seat signed in with autoanswer)
    kinds = {e.kind for e in events}
    assert {EventKind.BRIDGED, EventKind.RECORDING_READY, EventKind.HANGUP} <= kinds
    assert {e.close_type for e in events if e.kind is EventKind.HANGUP} == {CloseType.NORMAL}


async def test_an_inbound_call_can_be_hung_up_by_its_call_id(
    gateway: tuple[httpx.AsyncClient, HwChannel],
) -> None:
    control, hw = gateway
    await control.put("/_sim/timing", json={"talk_ms": 60_000})
    login = SeatLogin(seat=SEAT, password="", phonenum="+8613800000001")
    await hw.sign_in(login)
    customer = {"main_num": "+864001234567", "caller": "+8613900000002", "ext": SEAT}
    call_id = (await control.post("/_sim/inbound", json=customer)).json()["callid"]
    context, types = SeatContext(), []
    deadline = time.monotonic() + 10
    while "AgentEvent_Talking" not in types:
        assert time.monotonic() < deadline, types
        polled = await hw.poll_seat(login, context)
        context = polled.context
        if body := json.loads(polled.raw)["event"]:
            types.append(body["eventType"])
    await hw.hangup(call_id)  # the ring told the channel which seat the call is on
    [call] = (await control.get("/_sim/calls")).json()
    assert call["callid"] == call_id and call["ended_at"] and call["reason"] == "cancelled"
