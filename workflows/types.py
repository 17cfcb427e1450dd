"""Inputs and outputs of CallWorkflow and its activities: one small model per call."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from temporalio.common import SearchAttributeKey

from callflow.record import CallRecord
from channels.base import PlaceCallRequest
from core.types import ChannelMode

TASK_QUEUE_DEFAULT = "cc-calls"

SA_CALL_STATE = SearchAttributeKey.for_keyword("CallState")
SA_CHANNEL = SearchAttributeKey.for_keyword("Channel")
SA_TENANT = SearchAttributeKey.for_keyword("Tenant")
SEARCH_ATTRIBUTES = (SA_CALL_STATE, SA_CHANNEL, SA_TENANT)
# Signalled by name from intake/, which must not import the workflow module.
VENDOR_EVENT_SIGNAL = "vendor_event"
# The vendor's own limit sits this far above max_duration: CC ends the call on time itself,
# the vendor's limit is only the backstop if CC cannot.
VENDOR_LIMIT_MARGIN_S = 5


def workflow_id(cc_call_id: str) -> str:
    return f"call-{cc_call_id}"


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
    outcome: str  # placed | failed | rejected
    vendor_call_id: str | None = None
    error: str | None = None


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
    already_placed: bool = False  # found at the vendor: a retry did not dial again


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
