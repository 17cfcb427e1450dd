"""What a CC-Gateway seat sees of its calls: the polled events of each beat, and the recording.

Shapes follow Huawei CEC's agent events (VENDORS.md, hw): events before B is dialled carry no
call id; the id key is ``callid`` on most events, ``callId`` on ``AgentMediaEvent_Record`` and
``OUTBOUND_DETECT_EVENT``, and the whole ``content`` on ``AgentEvent_Call_Release``,
``AgentEvent_Call_Out_Fail`` and ``AgentEvent_Connect_Fail``. A failure before A went off-hook
is leg A's, after it leg B's. Recordings are G.711 A-law WAV files, as the gateway serves them.

An inbound call (a customer CEC's own IVR routed to the seat) is offered to the seat first:
``AgentEvent_Ringing {caller, called, callid}`` (the customer's number and the 400 number
dialled), then ``AgentEvent_Auto_Answer`` with the same content when the seat signed in with
autoanswer; the seat's phone then alerts and goes off-hook like a callout's, and the call
talks and ends like one. Its leg A is the customer, its leg B the seat's phone.
"""

from __future__ import annotations

import asyncio
import io
import struct
import wave
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from core.types import Direction
from simulators.common import now_ms, tone_wav
from simulators.scenario import Beat, Reason, Step

BEIJING = timezone(timedelta(hours=8))
Events = list[tuple[str, Any]]  # (eventType, content)

# hangup reason → the leg that failed
FAILED_LEG = {
    Reason.A_BUSY: "a",
    Reason.A_NO_ANSWER: "a",
    Reason.A_UNREACHABLE: "a",
    Reason.B_BUSY: "b",
    Reason.B_NO_ANSWER: "b",
    Reason.B_UNREACHABLE: "b",
}
# OUTBOUND_DETECT_EVENT causes: detect code and description
BUSY, NO_ANSWER, REJECTED = (47, "user busy"), (8, "no answer"), (9, "call rejected")
UNREACHABLE = ((10, "number unreachable"), (48, "powered off or out of service"))
DETECT_BY_REASON = {
    Reason.A_BUSY: BUSY,
    Reason.B_BUSY: BUSY,
    Reason.A_NO_ANSWER: NO_ANSWER,
    Reason.B_NO_ANSWER: NO_ANSWER,
}
PHONE_RELEASED_BY_AGENT, PHONE_RELEASED_BY_PLATFORM = 2, 3


@dataclass
class HwCall:
    """One call of a seat. A callout: leg A is the seat's phone, leg B the ``called`` number,
    shown ``caller``. An inbound call (``direction`` in): leg A is the customer ``caller``,
    who dialled the 400 number ``called``; leg B the seat's phone, shown ``called``."""

    call_id: str
    seq: int
    seat: str
    phonenum: str  # the seat's phone
    called: str
    caller: str
    callappdata: str
    created: int
    direction: Direction = Direction.OUT
    autoanswer: bool = True  # the seat signed in with autoanswer (inbound calls' Auto_Answer)
    a_alerted: bool = False  # the seat's phone alerted (whichever leg it is)
    a_answered_at: int | None = None  # the seat's phone went off-hook
    b_dialled_at: int | None = None
    bridged_at: int | None = None
    ended_at: int | None = None
    reason: Reason | None = None
    record_file: str = ""
    cancel: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def talking(self) -> bool:
        """The seat's phone is off-hook in this call (the agent state is talking)."""
        return self.a_answered_at is not None and self.ended_at is None

    @property
    def inbound(self) -> bool:
        return self.direction is Direction.IN

    @property
    def shown_to_a(self) -> str | None:
        """A callout shows the seat's phone nothing of its own; a customer is shown nothing."""
        return None

    @property
    def shown_to_b(self) -> str | None:
        """What B's phone is shown: a callout's ``caller``; the seat's phone in an inbound
        call, the 400 number dialled, never the customer's number."""
        return self.called if self.inbound else self.caller or None

    def view(self) -> dict[str, Any]:
        return {
            "callid": self.call_id,
            "seat": self.seat,
            "callappdata": self.callappdata,
            "direction": self.direction.value,
            "shown_to_a": self.shown_to_a,
            "shown_to_b": self.shown_to_b,
            "phonenum": self.phonenum,
            "called": self.called,
            "caller": self.caller,
            "created": self.created,
            "a_answered_at": self.a_answered_at,
            "b_dialled_at": self.b_dialled_at,
            "bridged_at": self.bridged_at,
            "ended_at": self.ended_at,
            "reason": self.reason,
            "recordFile": self.record_file,
        }


def polled_event(workno: str, event_type: str, content: Any, made: int) -> dict[str, Any]:
    """One polled event; ``eventGenTime`` (ms) rides on two events of every three, as gateways
    of different versions mix events with and without it."""
    event: dict[str, Any] = {"eventType": event_type, "workNo": workno, "content": content}
    if made % 3 != 2:
        event["eventGenTime"] = now_ms()
    return event


def call_events(call: HwCall, beat: Beat, at: int, record: bool) -> Events:
    """The events one beat of the scenario shows the seat (and the call's times it sets)."""
    if call.inbound:
        return _inbound_events(call, beat, at, record)
    step = beat.step
    if step is Step.A_RINGING:
        return _phone_alerting(call)
    if step is Step.A_ANSWERED:
        return _phone_offhook(call, at)
    if step is Step.B_DIALING:
        call.b_dialled_at = at
    if step is Step.B_RINGING:
        alerting = {
            "callid": call.call_id,
            "otherPhoneWorkno": "",
            "otherPhone": call.called,
            "type": "main",
        }
        return [("AgentEvent_Customer_Alerting", alerting)]
    if step is Step.BRIDGED:
        return _talking(call, at, record, call.caller or call.phonenum, feature="7")
    if step is Step.HANGUP:
        _ended(call, beat, at)
        return _failure(call) if call.reason in FAILED_LEG else _release(call)
    return []  # A dialling and B answering show the seat nothing


def _inbound_events(call: HwCall, beat: Beat, at: int, record: bool) -> Events:
    """An inbound call's beats (``scenario.inbound_timeline``): the customer is in CEC's IVR
    (A dialled and answered show the seat nothing); the seat is offered the call as its phone
    (B) is dialled, which then alerts and goes off-hook."""
    step = beat.step
    if step is Step.B_DIALING:
        call.b_dialled_at = at
        offer = {"caller": call.caller, "called": call.called, "callid": call.call_id}
        offered: Events = [("AgentEvent_Ringing", offer)]
        return offered + ([("AgentEvent_Auto_Answer", dict(offer))] if call.autoanswer else [])
    if step is Step.B_RINGING:
        return _phone_alerting(call)
    if step is Step.B_ANSWERED:
        return _phone_offhook(call, at)
    if step is Step.BRIDGED:
        return _talking(call, at, record, call.caller, feature="0")
    if step is Step.HANGUP:
        _ended(call, beat, at)
        return _inbound_release(call)
    return []


def _phone_alerting(call: HwCall) -> Events:
    """The seat's phone alerts (leg A of a callout, leg B of an inbound call)."""
    call.a_alerted = True
    return [("AgentOther_PhoneAlerting", None)]


def _phone_offhook(call: HwCall, at: int) -> Events:
    """The seat's phone goes off-hook: the seat is busy."""
    call.a_answered_at = at
    return [("AgentOther_PhoneOffhook", {"type": "main"}), ("AgentState_Busy", None)]


def _talking(call: HwCall, at: int, record: bool, caller: str, feature: str) -> Events:
    """The legs are bridged: talking (and the recording's start when the call is recorded)."""
    call.bridged_at = at
    talking = {
        "caller": caller,
        "callid": call.call_id,
        "called": call.called,
        "feature": feature,
        "type": "main",
        "mediaAbility": "1",
    }
    return [("AgentEvent_Talking", talking)] + (_recording(call, at) if record else [])


def _ended(call: HwCall, beat: Beat, at: int) -> None:
    """The call's end and its reason (a hang-up without one is the vendor's error)."""
    call.ended_at, call.reason = at, beat.reason or Reason.VENDOR_ERROR


def _inbound_release(call: HwCall) -> Events:
    """An inbound call ends: the call's release, and the customer's when they were bridged
    (a seat whose phone failed hands the customer back to CEC's IVR), then the seat's phone
    on-hook and the seat idle again."""
    customer = call.caller if call.bridged_at is not None else None
    return _released(call, customer, seat_hung_up=Reason.B_HUNG_UP)


def _recording(call: HwCall, at: int) -> Events:
    moment = datetime.fromtimestamp(at / 1000, BEIJING)
    day, clock = moment.strftime("%Y%m%d"), moment.strftime("%H%M%S")
    call.record_file = f"Y:/1/0/{day}/{call.seat}/{clock}{call.seq}.V3"
    return [
        (
            "AgentMediaEvent_Record",
            {
                "taskId": 5000 + call.seq,
                "caller": call.caller or call.phonenum,
                "recordID": f"Yc1v1a{call.seat}d{day}t{clock}{call.seq}",
                "called": call.called,
                "locationId": "1",
                "fileName": call.record_file,
                "fileMediaType": "1",
                "callId": call.call_id,
            },
        )
    ]


def _failure(call: HwCall) -> Events:
    """A leg failed: the optional cause (shown on three failures of four), both failure events,
    then the seat's phone goes on-hook (if it rang) and the seat idle (if it was busy)."""
    events: Events = []
    if call.seq % 4 != 3:
        detect, desc = _detect(call)
        events.append(
            ("OUTBOUND_DETECT_EVENT", {"callId": call.call_id, "detect": detect, "desc": desc})
        )
    events += [
        ("AgentEvent_Call_Out_Fail", call.call_id),
        ("AgentEvent_Connect_Fail", call.call_id),
    ]
    return events + _seat_freed(call, PHONE_RELEASED_BY_PLATFORM)


def _detect(call: HwCall) -> tuple[int, str]:
    assert call.reason is not None
    number = call.phonenum if FAILED_LEG[call.reason] == "a" else call.called
    if number.endswith("84"):
        return REJECTED
    return DETECT_BY_REASON.get(call.reason, UNREACHABLE[call.seq % 2])


def _release(call: HwCall) -> Events:
    """The call ends: B's and the call's release (in either order, alternating by call), the
    seat's phone on-hook, the seat idle again."""
    b_leg = call.called if call.b_dialled_at is not None else None
    return _released(call, b_leg, seat_hung_up=Reason.A_HUNG_UP)


def _released(call: HwCall, other: str | None, seat_hung_up: Reason) -> Events:
    """The call's release and, when the other party (number ``other``) was reached, its release
    (in either order, alternating by call); then the seat's phone on-hook (by the agent when
    the call ended as ``seat_hung_up``, else by the platform) and the seat idle again."""
    releases: Events = [("AgentEvent_Call_Release", call.call_id)]
    if other is not None:
        releases.append(("AgentEvent_Customer_Release", {"callid": call.call_id, "number": other}))
    if call.seq % 2:
        releases.reverse()
    by = PHONE_RELEASED_BY_AGENT if call.reason is seat_hung_up else PHONE_RELEASED_BY_PLATFORM
    return releases + _seat_freed(call, by)


def _seat_freed(call: HwCall, phone_state: int) -> Events:
    events: Events = []
    if call.a_alerted or call.a_answered_at is not None:
        events.append(("AgentOther_PhoneRelease", {"phoneState": phone_state}))
    if call.a_answered_at is not None:
        events.append(("AgentState_Ready", None))
    return events


# -- the recording: G.711 A-law, 8 kHz mono, in a WAV file (format tag 6) ------------------
_SEGMENT_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
WAVE_FORMAT_ALAW = 6


def alaw_byte(sample: int) -> int:
    """The A-law code of one 16-bit linear sample (ITU-T G.711's reference algorithm)."""
    pcm = sample >> 3
    mask = 0xD5 if pcm >= 0 else 0x55
    if pcm < 0:
        pcm = -pcm - 1
    segment = next((i for i, end in enumerate(_SEGMENT_ENDS) if pcm <= end), len(_SEGMENT_ENDS))
    if segment == len(_SEGMENT_ENDS):
        return 0x7F ^ mask
    return ((segment << 4) | ((pcm >> max(segment, 1)) & 0x0F)) ^ mask


@lru_cache(maxsize=1)
def alaw_wav() -> bytes:
    """The shared test tone, A-law encoded, as the gateway's recording download serves it."""
    with wave.open(io.BytesIO(tone_wav())) as pcm:
        rate, frames = pcm.getframerate(), pcm.readframes(pcm.getnframes())
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    data = bytes(alaw_byte(sample) for sample in samples)
    fmt = struct.pack("<HHIIHHH", WAVE_FORMAT_ALAW, 1, rate, rate, 1, 8, 0)
    chunks = (
        b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"fact"
        + struct.pack("<II", 4, len(data))  # non-PCM WAVs carry their sample count
        + b"data"
        + struct.pack("<I", len(data))
        + data
        + b"\0" * (len(data) % 2)
    )
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks
