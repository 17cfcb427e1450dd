"""Inputs and outputs of CallWorkflow and its activities: one small model per call."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from temporalio.common import SearchAttributeKey

from callflow.record import CallRecord
from channels.base import PlaceCallRequest
from core.config import Settings
from core.types import ChannelMode

TASK_QUEUE_DEFAULT = "cc-calls"

SA_CALL_STATE = SearchAttributeKey.for_keyword("CallState")
SA_CHANNEL = SearchAttributeKey.for_keyword("Channel")
SA_TENANT = SearchAttributeKey.for_keyword("Tenant")
SEARCH_ATTRIBUTES = (SA_CALL_STATE, SA_CHANNEL, SA_TENANT)
# Signalled by name from intake/, which must not import the workflow module.
VENDOR_EVENT_SIGNAL = "vendor_event"
# Events for a call whose CallWorkflow has finished go to its LateEventsWorkflow.
LATE_EVENTS_WORKFLOW = "LateEventsWorkflow"
LATE_EVENT_SIGNAL = "late_event"
# The one workflow that signals again the inbox events whose signal failed.
INBOX_WORKFLOW_ID = "inbox-redelivery"
INBOX_CONFIGURE_SIGNAL = "configure"
# The vendor's own limit sits this far above max_duration: CC ends the call on time itself,
# the vendor's limit is only the backstop if CC cannot.
VENDOR_LIMIT_MARGIN_S = 5


def workflow_id(cc_call_id: str) -> str:
    return f"call-{cc_call_id}"


def late_workflow_id(cc_call_id: str) -> str:
    return f"late-{cc_call_id}"


class LineLease(BaseModel):
    channel: str
    agent: str
    number: str  # the line's own number: always what leg A sees
    token: int  # fencing token of the lease


def lease_of(line: Any) -> LineLease:
    """The lease a freshly leased ``store.models.AgentLine`` row stands for."""
    return LineLease(channel=line.channel, agent=line.agent, number=line.number,
                     token=line.lease_token)  # fmt: skip


class CallTimers(BaseModel):
    watchdog_grace_s: int = 120
    hangup_wait_s: int = 15
    late_event_window_s: int = 30
    place_deadline_s: float = 60.0
    place_unknown_wait_s: float = 30.0
    setup_silence_s: float = 45.0
    connected_check_s: float = 300.0
    save_max_attempts: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> CallTimers:
        return cls(
            watchdog_grace_s=settings.watchdog_grace_s,
            hangup_wait_s=settings.watchdog_hangup_wait_s,
            late_event_window_s=settings.late_event_window_s,
            place_deadline_s=settings.place_deadline_s,
            place_unknown_wait_s=settings.place_unknown_wait_s,
            setup_silence_s=settings.setup_silence_s,
            connected_check_s=settings.connected_check_s,
            save_max_attempts=settings.save_max_attempts,
        )


class PollTimers(BaseModel):
    interval_s: float = 1.0
    max_interval_s: float = 5.0
    unreachable_after_s: float = 60.0
    after_close_s: float = 10.0


class RecordingTimers(BaseModel):
    """How long a late vendor recording is waited for (the copy's RetryPolicy)."""

    deadline_s: float = 3600.0
    retry_initial_s: float = 2.0
    retry_max_s: float = 60.0


class Routing(BaseModel):
    """What the workflow needs to pick another line if placing the call fails."""

    may_fail_over: bool = False
    user: str | None = None
    allow_fallback: bool = False
    priority: list[str] = []
    modes: dict[str, ChannelMode] = {}


class CallInput(BaseModel):
    record: CallRecord  # the record as created by the API (state init)
    line: LineLease
    max_duration_s: int
    routing: Routing = Routing()
    record_audio: bool = True
    timers: CallTimers = CallTimers()
    poll: PollTimers = PollTimers()
    recording: RecordingTimers = RecordingTimers()


class Attempt(BaseModel):
    channel: str
    agent: str
    at: int
    outcome: str  # placed | placed_unconfirmed | failed | rejected | unknown | expired
    tries: int = 1  # place requests sent to this channel (retried while nothing was placed)
    vendor_call_id: str | None = None
    error: str | None = None


# Error types of the vendor activities, read by the workflow (kept as strings across the
# boundary). A rejection is about the call (bad number); server and network errors mean the
# vendor did not take it; an unknown outcome may have placed it (never placed again).
REJECTED = "VendorRejected"
SERVER_ERROR = "VendorServerError"
NETWORK_ERROR = "VendorNetworkError"
OUTCOME_UNKNOWN = "VendorOutcomeUnknown"

# Error types of the recording copy that no retry can mend (the RetryPolicy's list).
RECORDING_UNAVAILABLE = "RecordingUnavailable"  # expired, forbidden, gone, unsupported
UNKNOWN_CHANNEL = "UnknownChannel"
NON_RETRYABLE_RECORDING_ERRORS = (RECORDING_UNAVAILABLE, UNKNOWN_CHANNEL)


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


class PollInput(BaseModel):
    channel: str
    cc_call_id: str
    vendor_call_id: str
    timers: PollTimers


class PollOutcome(BaseModel):
    final: bool = False  # the vendor's last word (CDR) was read
    unreachable: bool = False  # the vendor stayed unreachable past the limit


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


class FailoverInput(BaseModel):
    tenant: str
    cc_call_id: str
    routing: Routing
    tried: list[str]


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


class RedeliveryConfig(BaseModel):
    every_s: float = 5.0
    unsent_after_s: float = 10.0
    budget_s: float = 1.0
    retry_initial_s: float = 5.0
    retry_max_s: float = 300.0
    task_queue: str = TASK_QUEUE_DEFAULT

    @classmethod
    def from_settings(cls, settings: Settings) -> RedeliveryConfig:
        return cls(
            every_s=settings.inbox_redeliver_every_s,
            unsent_after_s=settings.inbox_redeliver_after_s,
            budget_s=settings.webhook_signal_budget_s,
            retry_initial_s=settings.inbox_retry_initial_s,
            retry_max_s=settings.inbox_retry_max_s,
            task_queue=settings.task_queue,
        )
