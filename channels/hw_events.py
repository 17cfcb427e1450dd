"""Channel hw's polled seat events, translated to unified events (VENDORS.md, hw).

A CC-Gateway seat's events name their call only from B's alerting on (the id key is
``callid``, ``callId`` or the whole ``content``); earlier ones belong to the seat's current
call, and a failure's leg (before or after the seat's phone went off-hook) and cause
(``OUTBOUND_DETECT_EVENT``) come from earlier events: ``SeatContext`` carries that memory
from poll to poll. Events are stamped with ``eventGenTime`` when the gateway sends one, else
at receipt.

A vendor event's dedupe keys hold its ``eventGenTime`` (else its ``seq``, which a repeat of
the event just before keeps), so the repeats the gateway sends map to the same keys. A call's
end (either release event, the seat's phone on-hook after a bridge, either failure event)
has one key per call: the first to come is stored, the others are repeats of it.

An inbound call (CEC's own IVR routed a customer to the seat) shows itself by
``AgentEvent_Ringing`` (then ``AgentEvent_Auto_Answer`` with autoanswer on), each with
``{caller, called, callid}``: leg A is the customer, already answered by CEC's IVR, and the
seat's phone is leg B, dialled now (``ring_of`` gives what CC records of the call). The seat's
phone alerting and going off-hook that follow belong to that call and are B's (B ringing, B
answered), and so is a failure that ends it (close_type 2 or 4).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from channels.events import CallEvent, SeatContext, SeatRing
from channels.helpers import CH_STATE_MAX, DEDUPE_MAX, VENDOR_ID_MAX, fit, int_or_none, path_segment
from core.types import CloseType, EventKind

ROOT = "/agentgateway/resource"

INBOUND_OFFER = (
    EventKind.A_DIALING,
    EventKind.A_ANSWERED,
    EventKind.B_DIALING,
    EventKind.B_RINGING,
)
RINGS = frozenset({"AgentEvent_Ringing", "AgentEvent_Auto_Answer"})
# eventType → the kinds it stands for (ends, failures and recordings are handled apart).
KINDS: dict[str, tuple[EventKind, ...]] = {
    # The seat's phone alerting proves leg A was dialled: it gives a_call_time as well.
    "AgentOther_PhoneAlerting": (EventKind.A_DIALING, EventKind.A_RINGING),
    "AgentOther_PhoneOffhook": (EventKind.A_ANSWERED,),
    # B alerting proves B was dialled (the gateway shows no event of its own for that).
    "AgentEvent_Customer_Alerting": (EventKind.B_DIALING, EventKind.B_RINGING),
    "AgentEvent_Talking": (EventKind.B_ANSWERED, EventKind.BRIDGED),
    # An inbound call offered to the seat: the customer (A) is on the line in CEC's IVR, the
    # seat's phone (B) is being rung.
    "AgentEvent_Ringing": INBOUND_OFFER,
    "AgentEvent_Auto_Answer": INBOUND_OFFER,
}
# On an inbound call the seat's phone is leg B: its own events are B's.
INBOUND_KINDS: dict[str, tuple[EventKind, ...]] = {
    "AgentOther_PhoneAlerting": (EventKind.B_RINGING,),
    "AgentOther_PhoneOffhook": (EventKind.B_ANSWERED,),
}
CALL_START = "AgentOther_PhoneAlerting"  # the seat's phone rings: a new call begins
OFFHOOK = "AgentOther_PhoneOffhook"
TALKING = "AgentEvent_Talking"
RELEASES = frozenset({"AgentEvent_Customer_Release", "AgentEvent_Call_Release"})
FAILURES = frozenset({"AgentEvent_Call_Out_Fail", "AgentEvent_Connect_Fail"})
PHONE_RELEASE = "AgentOther_PhoneRelease"
DETECT = "OUTBOUND_DETECT_EVENT"
RECORD = "AgentMediaEvent_Record"
SEAT_READY = "AgentState_Ready"  # the seat is idle again: its call is over

# OUTBOUND_DETECT_EVENT's detect: 47 user busy and 9 rejected are "busy"; any other cause
# (8 no answer, 10 unreachable, 48 powered off, one not known here) is "unreachable".
BUSY_DETECTS = frozenset({47, 9})
FAILURE_CLOSE = {
    (False, False): CloseType.A_UNREACHABLE,
    (False, True): CloseType.A_BUSY,
    (True, False): CloseType.B_UNREACHABLE,
    (True, True): CloseType.B_BUSY,
}  # (the seat's phone went off-hook, busy) → close type
# eventGenTime values outside this range (epoch ms, 2001..2286) are not trusted.
GEN_TIME_RANGE = range(10**12, 10**13)


def recording_url(base_url: str, seat: str, file_name: str) -> str:
    """Where the gateway serves a recording: the seat's ``recordfile`` with its fileName."""
    query = urlencode({"recordId": file_name})
    return f"{base_url}{ROOT}/recordfile/{path_segment(seat)}?{query}"


def call_id_of(content: object) -> str | None:
    """The call an event names: ``callid`` or ``callId`` in its content, or the content."""
    if isinstance(content, Mapping):
        content = content.get("callid", content.get("callId"))
    if isinstance(content, int | str) and not isinstance(content, bool) and str(content):
        return str(content)
    return None


def ring_of(event: Mapping[str, Any], received_ms: int) -> SeatRing | None:
    """The inbound call an ``AgentEvent_Ringing`` or ``AgentEvent_Auto_Answer`` offers the
    seat (None for any other event, or one without a call id)."""
    content = event.get("content")
    if event.get("eventType") not in RINGS or not isinstance(content, Mapping):
        return None
    call_id = call_id_of(content)
    if call_id is None:
        return None
    caller, called = content.get("caller"), content.get("called")
    return SeatRing(
        vendor_call_id=fit(call_id, VENDOR_ID_MAX),
        caller="" if caller is None else str(caller),
        called="" if called is None else str(called),
        at=_gen_time(event.get("eventGenTime")) or received_ms,
    )


def close_of_failure(context: SeatContext) -> CloseType:
    """A failed leg: A's before the seat's phone went off-hook, B's after; busy or not by
    the cause announced, unreachable when none was."""
    busy = context.detect in BUSY_DETECTS
    return FAILURE_CLOSE[(context.offhook, busy)]


def parse_seat_event(
    seat: str, base_url: str, event: Mapping[str, Any], context: SeatContext, received_ms: int
) -> tuple[list[CallEvent], SeatContext]:
    """One polled event → its unified events (``cc_call_id`` None) and the next context."""
    event_type = event.get("eventType")
    if not isinstance(event_type, str) or not event_type:
        return [], context
    content = event.get("content")
    digest = hashlib.sha256(json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()
    repeat = digest[:16] == context.last
    seq = context.seq if repeat else max(context.seq + 1, received_ms)
    context = _enter(context, event_type, call_id_of(content)).model_copy(
        update={"seq": seq, "last": digest[:16]}
    )
    gen_time = _gen_time(event.get("eventGenTime"))
    if event_type in RINGS:  # A is answered (by CEC's IVR): a failure from now on is B's
        context = context.model_copy(update={"inbound": True, "offhook": True})
    make = _Maker(
        seat,
        event_type,
        context.vendor_call_id,
        gen_time or received_ms,
        f"{gen_time}" if gen_time else f"s{seq}",
    )
    kinds = KINDS.get(event_type, ())
    if context.inbound:
        kinds = INBOUND_KINDS.get(event_type, kinds)
    events: list[CallEvent] = [make(kind) for kind in _unseen(context, event_type)]
    events += [make(kind) for kind in kinds]
    context = _seen(context, event_type)
    if event_type == OFFHOOK:
        context = context.model_copy(update={"offhook": True})
    elif event_type == TALKING:
        context = context.model_copy(update={"offhook": True, "bridged": True})
    elif event_type == DETECT and isinstance(content, Mapping):
        context = context.model_copy(update={"detect": int_or_none(content.get("detect"))})
    elif event_type == RECORD and isinstance(content, Mapping):
        file_name = content.get("fileName")
        if isinstance(file_name, str) and file_name:
            url = recording_url(base_url, seat, file_name)
            events.append(make(EventKind.RECORDING_READY, recording_url=url))
    elif event_type in RELEASES or (event_type == PHONE_RELEASE and context.bridged):
        events.append(make.once(EventKind.HANGUP, close_type=CloseType.NORMAL))
    elif event_type in FAILURES:  # the failed leg was dialled: its time, if none came yet
        failed_leg = EventKind.B_DIALING if context.offhook else EventKind.A_DIALING
        close_type = close_of_failure(context)
        events += [make.once(failed_leg), make.once(EventKind.HANGUP, close_type=close_type)]
    elif event_type == SEAT_READY:
        context = SeatContext(seq=context.seq, last=context.last)
    return events, context


# A callout's moments in order: the seat's phone (A) alerting and off-hook, then B alerting
# (which names the call) and talking, then the recording's start (CEC records the talk: its
# recording event proves the legs were bridged). Each proves those before it happened.
_OUTBOUND_PROOF: dict[str, tuple[EventKind, ...]] = {
    OFFHOOK: (EventKind.A_DIALING,),
    "AgentEvent_Customer_Alerting": (EventKind.A_DIALING, EventKind.A_ANSWERED),
    TALKING: (EventKind.A_DIALING, EventKind.A_ANSWERED, EventKind.B_DIALING),
    RECORD: (
        EventKind.A_DIALING,
        EventKind.A_ANSWERED,
        EventKind.B_DIALING,
        EventKind.B_ANSWERED,
        EventKind.BRIDGED,
    ),
}
# On an inbound call A was answered by CEC's IVR before the seat rang: a recording proves
# only that the seat answered and the legs were bridged.
_INBOUND_PROOF: dict[str, tuple[EventKind, ...]] = {
    RECORD: (EventKind.B_ANSWERED, EventKind.BRIDGED),
}


def _unseen(context: SeatContext, event_type: str) -> list[EventKind]:
    """The earlier moments of a call this event proves and the seat never showed, stamped
    at this event's time: the record keeps the earliest report of a moment, so a real one
    that comes after all still wins. The gateway drops a session's queued events with the
    session (100-006, a failover), and hands each event to one poll only: an answer that
    reached a worker killed before it stored it is gone (a bridge so lost is proved by the
    recording's start, the next event of a recorded call)."""
    proof = _INBOUND_PROOF if context.inbound else _OUTBOUND_PROOF
    seen = {
        EventKind.A_DIALING: context.a_dialled,
        EventKind.A_ANSWERED: context.offhook,
        EventKind.B_DIALING: context.b_dialled,
        EventKind.B_ANSWERED: context.bridged,
        EventKind.BRIDGED: context.bridged,
    }
    return [kind for kind in proof.get(event_type, ()) if not seen[kind]]


def _seen(context: SeatContext, event_type: str) -> SeatContext:
    if event_type == CALL_START or event_type in _OUTBOUND_PROOF:
        context = context.model_copy(update={"a_dialled": True})
    if event_type in ("AgentEvent_Customer_Alerting", TALKING, RECORD):
        context = context.model_copy(update={"b_dialled": True})
    if event_type == RECORD:  # recorded: talking (a release of the seat's phone ends it)
        context = context.model_copy(update={"offhook": True, "bridged": True})
    return context


def _enter(context: SeatContext, event_type: str, call_id: str | None) -> SeatContext:
    """The context an event belongs to: a fresh one when it starts a new call (the seat's
    phone alerting, or an event naming another call than the one remembered)."""
    fresh = SeatContext(seq=context.seq, last=context.last)
    if event_type == CALL_START:
        # The seat's phone alerting for the inbound call that rang it is that call's.
        return context if context.inbound and not context.bridged else fresh
    if call_id is None or call_id == context.vendor_call_id:
        return context
    if context.vendor_call_id is not None:  # a call not seen alerting (leg A failed at once)
        return fresh.model_copy(update={"vendor_call_id": call_id})
    return context.model_copy(update={"vendor_call_id": call_id})


class _Maker:
    """Builds the unified events of one vendor event (ids, times, keys in one place)."""

    def __init__(self, seat: str, event_type: str, call: str | None, at: int, stamp: str) -> None:
        self.seat, self.event_type, self.at, self.stamp = seat, event_type, at, stamp
        self.call = fit(call, VENDOR_ID_MAX) if call else None

    def __call__(self, kind: EventKind, **fields: Any) -> CallEvent:
        key = f"{self.seat}:{self.call or 'seat'}:{self.event_type}:{self.stamp}:{kind.value}"
        return self._event(kind, key, **fields)

    def once(self, kind: EventKind, **fields: Any) -> CallEvent:
        """An event several vendor events of a call report (its end): one key per call,
        whichever reports it first."""
        if self.call is None:
            return self(kind, **fields)
        return self._event(kind, f"{self.seat}:{self.call}:{kind.value}", **fields)

    def _event(self, kind: EventKind, key: str, **fields: Any) -> CallEvent:
        return CallEvent(
            cc_call_id=None,
            vendor_call_id=self.call,
            kind=kind,
            at=self.at,
            ch_state=self.event_type[:CH_STATE_MAX],
            dedupe_key=fit(key, DEDUPE_MAX),
            **fields,
        )


def _gen_time(value: object) -> int | None:
    stamp = int_or_none(value)
    return stamp if stamp is not None and stamp in GEN_TIME_RANGE else None
