"""Inputs and outputs of CallWorkflow, LateEventsWorkflow and their activities."""

from __future__ import annotations

from pydantic import BaseModel

from callflow.policy import CallingWindow, RetryPolicy
from callflow.record import CallRecord
from channels.events import PlaceCallRequest
from contracts.seat import SeatTimers
from core.types import ChannelMode


class LineLease(BaseModel):
    channel: str
    agent: str
    number: str  # the line's own number: always what leg A sees
    token: int  # fencing token of the lease


class CallTimers(BaseModel):
    watchdog_grace_s: int = 120
    hangup_wait_s: int = 15
    late_event_window_s: int = 30
    place_deadline_s: float = 60.0
    place_unknown_wait_s: float = 30.0
    setup_silence_s: float = 45.0
    # A scheduled call that finds no line (busy, no channel, the tenant's limit) when due
    # tries again after this, doubling up to a minute; it gives up after line_wait_max_s.
    line_wait_s: float = 5.0
    line_wait_max_s: float = 3600.0
    connected_check_s: float = 300.0
    save_max_attempts: int = 20


class RecordingTimers(BaseModel):
    """How long a late vendor recording is waited for (the copy's RetryPolicy)."""

    deadline_s: float = 3600.0
    retry_initial_s: float = 2.0
    retry_max_s: float = 60.0


class Routing(BaseModel):
    """What the workflow needs to pick another line if placing the call fails."""

    may_fail_over: bool = False
    user: str | None = None
    channel: str | None = None  # pinned by the request (a scheduled call routes when due)
    allow_fallback: bool = False
    priority: list[str] = []
    modes: dict[str, ChannelMode] = {}


class CallPolicy(BaseModel):
    """A callback's policies (API.md, "Later, and again"), as the request or the tenant's
    defaults gave them; every try of a series carries them."""

    retry: RetryPolicy | None = None
    window: CallingWindow | None = None


class CallInput(BaseModel):
    record: CallRecord  # the record as created by the API (state init, or scheduled)
    line: LineLease | None  # None: a scheduled call, which takes its line when due
    max_duration_s: int
    routing: Routing = Routing()
    record_audio: bool = True
    timers: CallTimers = CallTimers()
    recording: RecordingTimers = RecordingTimers()
    seat: SeatTimers = SeatTimers()  # a polled channel's seats (SeatWorkflow)
    policy: CallPolicy = CallPolicy()


class Attempt(BaseModel):
    channel: str
    agent: str
    at: int
    outcome: str  # placed | placed_unconfirmed | failed | rejected | unknown | expired
    tries: int = 1  # place requests sent to this channel (retried while nothing was placed)
    vendor_call_id: str | None = None
    error: str | None = None


class CopyRecordingInput(BaseModel):
    channel: str
    tenant: str
    cc_call_id: str
    created: int  # the call's creation, epoch ms UTC: it dates the storage key
    url: str  # the vendor's recording URL (the record's ch_audio_url)


class CopyRecordingResult(BaseModel):
    audio_url: str  # the stable reference of CC's copy, e.g. local:<key> or oss://bucket/key
    size: int
    content_type: str


class PlaceCallInput(BaseModel):
    channel: str
    request: PlaceCallRequest


class PlaceCallResult(BaseModel):
    vendor_call_id: str


class HangupInput(BaseModel):
    channel: str
    vendor_call_id: str


class SaveRecordInput(BaseModel):
    record: CallRecord
    attempts: list[Attempt]
    applied_inbox_ids: list[int] = []
    # Events received but not applied, with why (e.g. another vendor call id: a stray call).
    noted_inbox_ids: dict[int, str] = {}
    # Set with the first save of a closed record: the line is freed in the same transaction,
    # so nobody sees a closed call whose line is still busy.
    release_line: LineLease | None = None
    # What this save tells the app (``call.state``, ``call.closed``, ``call.recording``): the
    # record's state moved, or its recording was copied, since the last save.
    state_changed: bool = False
    recording_copied: bool = False


class FailoverInput(BaseModel):
    tenant: str
    cc_call_id: str
    routing: Routing
    tried: list[str]


class TakeLineInput(BaseModel):
    tenant: str
    cc_call_id: str
    routing: Routing
    window: CallingWindow | None = None  # the calling hours the line is taken within
    at: int | None = None  # epoch ms: the workflow's now, the moment the hours are read at


class TakenLine(BaseModel):
    """A due call's line, or why it has none yet (``line_busy``, ``no_channel``,
    ``tenant_limit``; ``window``: the calling hours closed while it waited, and it waits for
    their next opening, ``due_at``)."""

    line: LineLease | None = None
    may_fail_over: bool = False
    wait_reason: str | None = None
    due_at: int | None = None  # epoch ms: ask again then (``window``), not after a pause


class NextTryInput(BaseModel):
    """A try of a series ended as ``record`` says: record and start the next one, if the
    policy calls for it."""

    record: CallRecord  # the try that ended (closed)
    policy: CallPolicy
    routing: Routing


class NextTry(BaseModel):
    cc_call_id: str
    not_before: int  # when it is due (epoch ms)


class ReleaseLineInput(BaseModel):
    cc_call_id: str
    line: LineLease


class ReconcileInput(BaseModel):
    channel: str
    cc_call_id: str
    vendor_call_id: str


class LateEventsInput(BaseModel):
    cc_call_id: str
    recording: RecordingTimers = RecordingTimers()
    quiet_s: float = 30.0  # the workflow ends after this long without a late event


class LateEventsResult(BaseModel):
    """What folding late events into the stored record left to do."""

    found: bool  # the call exists
    to_copy: CopyRecordingInput | None = None  # a recording URL that was never copied


class RecordingOutcome(BaseModel):
    cc_call_id: str
    audio_url: str | None = None
    error: str | None = None
