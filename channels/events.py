"""The unified shapes every vendor adapter speaks: the call event, a place request and its
answer, an inbound call and CC's answer, and a polled seat's login, context, ring and poll."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from core.types import CloseType, EventKind, InboundAction


class CallEvent(BaseModel):
    """One vendor event, translated to CC's vocabulary."""

    cc_call_id: str | None  # from userData; None when the vendor lost it
    vendor_call_id: str | None = None
    kind: EventKind
    at: int  # epoch ms, UTC
    ch_state: str | None = None  # the vendor's own state string, untranslated
    close_type: CloseType | None = None  # only on hangup
    recording_url: str | None = None
    dedupe_key: str
    inbox_id: int | None = None  # set once the raw event is stored in the inbox
    channel: str | None = None  # which vendor sent it (set by intake)
    # Talk seconds the vendor reported with its hang-up (e9 ``duration``, jy ``CallDuration``):
    # gives conn_time when the bridge event itself was lost.
    duration_s: int | None = None


class InboundCall(BaseModel):
    """A customer calling a tenant's 400 number: the vendor asks CC where to send the call."""

    vendor_call_id: str
    caller: str  # the customer, as the vendor gave it (not yet E.164)
    main_num: str  # the 400 number dialled, as the vendor gave it
    ext_num: str | None = None  # the digits keyed; None until the customer keyed some
    at: int  # epoch ms, UTC
    dedupe_key: str


class InboundAnswer(BaseModel):
    """CC's answer to an ``InboundCall``, in CC's words; each adapter renders it in its
    vendor's (e9: a JSON action, jy: TwiML)."""

    action: InboundAction
    cc_call_id: str | None = None  # dial: the record the call's events belong to
    to: str | None = None  # dial: the agent's phone (E.164)
    display: str | None = None  # dial: what the agent is shown, main_num (E.164)
    record: bool = True
    prompt: str | None = None  # ivr: asks for the extension; reject: says why
    collect: int = 0  # ivr: how many digits to collect


class PlaceCallRequest(BaseModel):
    cc_call_id: str
    caller: str  # leg A, E.164
    called: str  # leg B, E.164
    display_to_a: str  # always the line's number: A never sees the customer
    display_to_b: str  # the agent's own number or the line's number
    agent: str  # the line id (e9: a phone number, hw: a seat id)
    max_duration_s: int
    record: bool = True
    ivr_text: str | None = None
    ivr_url: str | None = None

    def prompt(self, url_field: str, text_field: str) -> dict[str, str]:
        """The IVR prompt under the vendor's own field names: a recording's URL wins over a
        text to speak; nothing when there is neither."""
        if self.ivr_url:
            return {url_field: self.ivr_url}
        if self.ivr_text:
            return {text_field: self.ivr_text}
        return {}


class PlacedCall(BaseModel):
    vendor_call_id: str


class SeatStatus(StrEnum):
    IDLE = "idle"  # signed in, no call
    BUSY = "busy"  # signed in, in a call (its phone or the other party ringing)
    OFFHOOK = "offhook"  # signed in, in a call, its phone off-hook (the agent answered)
    SIGNED_OUT = "signed_out"


class SeatLogin(BaseModel):
    """How a seat signs in; ``password`` "" means the channel's default seat password."""

    seat: str
    password: str
    phonenum: str  # the agent's phone the seat rings (leg A), E.164; sent as national digits


class SeatContext(BaseModel):
    """The parser's memory of the seat's current call, carried from poll to poll (and across
    worker restarts): vendor events name their call only once B is dialled, and a failure's
    leg and cause come from earlier events."""

    vendor_call_id: str | None = None
    offhook: bool = False  # the seat's phone (leg A) answered
    detect: int | None = None  # the failure cause announced (hw OUTBOUND_DETECT_EVENT)
    # The last event's number: strictly increasing, from the receipt clock (epoch ms), so
    # that it stays unique across contexts and restarts; a repeated event keeps it.
    seq: int = 0
    bridged: bool = False  # both legs talked: the seat's phone hanging up ends the call
    # The call's moments seen so far (the seat's phone alerting; B alerting): a later moment
    # proves an earlier one the gateway never showed (lost with a session), see hw_events.
    a_dialled: bool = False
    b_dialled: bool = False
    last: str | None = None  # digest of the last event, to know a repeat of it
    # An inbound call rang the seat: the customer is leg A (already on the line), the seat's
    # phone is leg B, so its alerting, off-hook and failure are B's.
    inbound: bool = False


class SeatRing(BaseModel):
    """A call the vendor's own routing offered one of CC's seats (hw ``AgentEvent_Ringing`` or
    ``AgentEvent_Auto_Answer``): an inbound call unless CC placed it."""

    vendor_call_id: str
    caller: str  # the customer, as the vendor gave it (national digits, not yet E.164)
    called: str  # the number the customer dialled (the 400 main number), as the vendor gave it
    at: int  # epoch ms, UTC


class SeatPoll(BaseModel):
    """One long poll of a seat: its events (``cc_call_id`` None: the poller fills it from the
    seat's lease), the parser's context for the next poll, the vendor's answer as it came,
    and the inbound calls the vendor rang the seat with (for CC to record)."""

    events: list[CallEvent]
    context: SeatContext
    raw: bytes = b""
    rings: list[SeatRing] = []
