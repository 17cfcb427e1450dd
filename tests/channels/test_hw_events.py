"""Channel hw's seat-event parser: ids, times, failures' legs and causes, dedupe keys."""

from __future__ import annotations

from typing import Any

import pytest

from channels.events import CallEvent, SeatContext
from channels.hw_events import call_id_of, parse_seat_event
from core.types import CloseType, EventKind

SEAT, BASE, CALL = "10001", "http://gw", "1700000000-7"
RECEIVED = 1_700_000_000_000


def event(event_type: str, content: Any = None, gen: object = None) -> dict[str, Any]:
    body: dict[str, Any] = {"eventType": event_type, "workNo": SEAT, "content": content}
    if gen is not None:
        body["eventGenTime"] = gen
    return body


def run(
    *events: dict[str, Any], context: SeatContext | None = None
) -> tuple[list[CallEvent], SeatContext]:
    """Parse events in order, each received 1 s after the one before."""
    context, out = context or SeatContext(), []
    for i, body in enumerate(events):
        parsed, context = parse_seat_event(SEAT, BASE, body, context, RECEIVED + i * 1000)
        out += parsed
    return out, context


def ends(events: list[CallEvent]) -> set[tuple[str, CloseType | None]]:
    return {(e.dedupe_key, e.close_type) for e in events if e.kind is EventKind.HANGUP}


ALERTING = event("AgentOther_PhoneAlerting")
OFFHOOK = event("AgentOther_PhoneOffhook", {"type": "main"})
B_ALERTING = event("AgentEvent_Customer_Alerting", {"callid": CALL, "otherPhone": "139"})
TALKING = event("AgentEvent_Talking", {"callid": CALL, "caller": "010", "called": "139"})


@pytest.mark.parametrize("content", [{"callid": CALL}, {"callId": CALL}, CALL])
def test_the_call_id_has_three_spellings(content: Any) -> None:
    assert call_id_of(content) == CALL
    assert call_id_of(None) is None and call_id_of({"phoneState": 2}) is None


def test_events_before_b_carry_the_id_known_after() -> None:
    events, context = run(ALERTING, OFFHOOK, B_ALERTING, TALKING)
    assert [e.kind for e in events] == [
        EventKind.A_DIALING, EventKind.A_RINGING, EventKind.A_ANSWERED, EventKind.B_DIALING,
        EventKind.B_RINGING, EventKind.B_ANSWERED, EventKind.BRIDGED]  # fmt: skip
    assert [e.vendor_call_id for e in events] == [None] * 3 + [CALL] * 4
    assert context.offhook and context.bridged and context.vendor_call_id == CALL
    assert all(e.cc_call_id is None for e in events)
    assert events[2].ch_state == "AgentOther_PhoneOffhook"


def test_event_time_is_event_gen_time_else_receipt() -> None:
    events, _ = run(event("AgentOther_PhoneAlerting", gen=1_699_999_999_123), OFFHOOK)
    assert [e.at for e in events] == [1_699_999_999_123] * 2 + [RECEIVED + 1000]
    events, _ = run(event("AgentOther_PhoneAlerting", gen="junk"))
    assert events[0].at == RECEIVED


def test_a_repeated_event_keeps_its_keys() -> None:
    stamped = event("AgentEvent_Customer_Alerting", {"callid": CALL}, gen=1_700_000_000_500)
    once, _ = run(stamped)
    twice, _ = run(stamped, B_ALERTING, stamped)  # not in a row: its eventGenTime says so
    assert {e.dedupe_key for e in twice} >= {e.dedupe_key for e in once}
    unstamped, _ = run(ALERTING, ALERTING)  # no eventGenTime: a repeat in a row
    assert len({e.dedupe_key for e in unstamped}) == 2
    apart, _ = run(ALERTING, OFFHOOK, ALERTING)  # another call's alerting: new keys
    assert len({e.dedupe_key for e in apart}) == 5


@pytest.mark.parametrize("releases", [
    ["AgentEvent_Customer_Release", "AgentEvent_Call_Release"],
    ["AgentEvent_Call_Release", "AgentEvent_Customer_Release"],
])  # fmt: skip
def test_either_release_order_ends_the_call_once(releases: list[str]) -> None:
    bodies = [event(t, {"callid": CALL, "number": "139"} if "Customer" in t else CALL)
              for t in releases]  # fmt: skip
    events, context = run(ALERTING, OFFHOOK, B_ALERTING, TALKING, *bodies,
                          event("AgentOther_PhoneRelease", {"phoneState": 3}),
                          event("AgentState_Ready"))  # fmt: skip
    assert ends(events) == {(f"{SEAT}:{CALL}:hangup", CloseType.NORMAL)}
    assert len([e for e in events if e.kind is EventKind.HANGUP]) == 3
    assert context == SeatContext(seq=context.seq, last=context.last)  # Ready: afresh


def test_the_phone_on_hook_ends_only_a_bridged_call() -> None:
    events, _ = run(ALERTING, OFFHOOK, event("AgentOther_PhoneRelease", {"phoneState": 2}))
    assert EventKind.HANGUP not in [e.kind for e in events]


def test_the_recording_event_gives_its_url() -> None:
    record = {"callId": CALL, "fileName": "Y:/1/0/20240101/10001/1200001.V3", "locationId": "1"}
    events, _ = run(event("AgentMediaEvent_Record", record))
    [ready] = [e for e in events if e.kind is EventKind.RECORDING_READY]
    assert ready.kind is EventKind.RECORDING_READY and ready.vendor_call_id == CALL
    assert ready.recording_url == (
        f"{BASE}/agentgateway/resource/recordfile/{SEAT}"
        "?recordId=Y%3A%2F1%2F0%2F20240101%2F10001%2F1200001.V3"
    )


FAILS = [event("AgentEvent_Call_Out_Fail", CALL), event("AgentEvent_Connect_Fail", CALL)]


@pytest.mark.parametrize(("detect", "a_close", "b_close"), [
    (47, CloseType.A_BUSY, CloseType.B_BUSY), (9, CloseType.A_BUSY, CloseType.B_BUSY),
    (8, CloseType.A_UNREACHABLE, CloseType.B_UNREACHABLE),
    (10, CloseType.A_UNREACHABLE, CloseType.B_UNREACHABLE),
    (48, CloseType.A_UNREACHABLE, CloseType.B_UNREACHABLE),
    (None, CloseType.A_UNREACHABLE, CloseType.B_UNREACHABLE),
])  # fmt: skip
def test_a_failure_s_leg_and_cause(
    detect: int | None, a_close: CloseType, b_close: CloseType
) -> None:
    announced = event("OUTBOUND_DETECT_EVENT", {"callId": CALL, "detect": detect, "desc": ""})
    cause = [] if detect is None else [announced]
    a_failed, _ = run(*cause, *FAILS)  # before the seat's phone went off-hook
    assert ends(a_failed) == {(f"{SEAT}:{CALL}:hangup", a_close)}
    assert EventKind.A_DIALING in [e.kind for e in a_failed]
    b_failed, _ = run(ALERTING, OFFHOOK, *cause, *FAILS)
    assert ends(b_failed) == {(f"{SEAT}:{CALL}:hangup", b_close)}
    assert [e.kind for e in b_failed].count(EventKind.B_DIALING) == 2  # one key: stored once


def test_a_new_call_forgets_the_last_one_s_failure() -> None:
    first = [event("OUTBOUND_DETECT_EVENT", {"callId": "1-1", "detect": 47}),
             event("AgentEvent_Call_Out_Fail", "1-1")]  # fmt: skip
    _, context = run(*first)  # leg A busy: no Ready follows
    events, _ = run(event("AgentEvent_Call_Out_Fail", "1-2"), context=context)
    assert ends(events) == {(f"{SEAT}:1-2:hangup", CloseType.A_UNREACHABLE)}


def test_seat_events_give_no_call_events() -> None:
    for event_type in ("AgentOther_InService", "AgentState_Busy", "AgentState_Ready",
                       "AgentOther_ShutdownService", "SomethingNew"):  # fmt: skip
        assert run(event(event_type))[0] == []
    assert run({"content": None})[0] == []


def test_moments_a_lost_session_swallowed_are_proved_by_later_ones() -> None:
    """Chaos scenario 8 (issue 19): the gateway drops a session's queued events with the
    session (100-006, a failover) while the call goes on. Talking proves A was dialled and
    answered and B dialled: those moments are stamped at Talking's time (an upper bound the
    record's earliest-wins rule lets a real report replace), never left unset."""
    events, context = run(ALERTING, TALKING)  # A's off-hook and B's alerting were lost
    at_talking = RECEIVED + 1000
    assert [(e.kind, e.at) for e in events] == [
        (EventKind.A_DIALING, RECEIVED), (EventKind.A_RINGING, RECEIVED),
        (EventKind.A_ANSWERED, at_talking), (EventKind.B_DIALING, at_talking),
        (EventKind.B_ANSWERED, at_talking), (EventKind.BRIDGED, at_talking)]  # fmt: skip
    assert len({e.dedupe_key for e in events}) == len(events)
    assert context.a_dialled and context.b_dialled and context.offhook
    # B's alerting after A's off-hook was lost: B's failure is still B's, and B was dialled.
    failed, _ = run(ALERTING, OFFHOOK, event("AgentEvent_Call_Out_Fail", CALL))
    assert {(e.kind, e.close_type) for e in failed if e.kind is EventKind.HANGUP} == {
        (EventKind.HANGUP, CloseType.B_UNREACHABLE)}  # fmt: skip
    assert EventKind.B_DIALING in {e.kind for e in failed}


def test_an_inbound_call_proves_nothing_of_a_callout_s_moments() -> None:
    ring = event("AgentEvent_Ringing", {"callid": CALL, "caller": "139", "called": "400"})
    events, _ = run(ring, event("AgentOther_PhoneOffhook"), TALKING)
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.A_ANSWERED) == 1 and kinds.count(EventKind.B_DIALING) == 1


RECORD = event(
    "AgentMediaEvent_Record", {"callId": CALL, "fileName": "Y:/1/f.V3", "locationId": "1"}
)


def test_a_recording_proves_a_bridge_whose_event_was_lost() -> None:
    """The gateway hands each event to one poll: the talking answer a worker took and was
    killed before storing is gone. The recording's start, the next event of a recorded
    call, proves the legs were bridged (stamped at its time, an upper bound), and the
    seat's phone going on-hook then ends a talked call."""
    events, context = run(ALERTING, OFFHOOK, B_ALERTING, RECORD,
                          event("AgentOther_PhoneRelease", {"phoneState": 2}))  # fmt: skip
    at_record = RECEIVED + 3000
    proved = [(e.kind, e.at) for e in events if e.ch_state == "AgentMediaEvent_Record"]
    assert proved == [(EventKind.B_ANSWERED, at_record), (EventKind.BRIDGED, at_record),
                      (EventKind.RECORDING_READY, at_record)]  # fmt: skip
    assert ends(events) == {(f"{SEAT}:{CALL}:hangup", CloseType.NORMAL)}
    assert context.bridged and len({e.dedupe_key for e in events}) == len(events)


def test_a_recording_after_talking_proves_nothing_new() -> None:
    events, _ = run(ALERTING, OFFHOOK, B_ALERTING, TALKING, RECORD)
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.BRIDGED) == 1 and kinds.count(EventKind.B_ANSWERED) == 1


def test_an_inbound_recording_proves_only_the_seat_s_answer_and_the_bridge() -> None:
    ring = event("AgentEvent_Ringing", {"callid": CALL, "caller": "139", "called": "400"})
    events, _ = run(ring, RECORD)
    proved = [e.kind for e in events if e.ch_state == "AgentMediaEvent_Record"]
    assert proved == [EventKind.B_ANSWERED, EventKind.BRIDGED, EventKind.RECORDING_READY]
