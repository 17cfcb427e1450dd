"""The unified call record: its columns, declared once, and its state machine.

``CallRecordBase`` declares RECORD.md's columns once for every shape of the record: the table
(``store.models.CallRecordRow``), the live record the workflow keeps (``CallRecord`` below)
and the call view (``store.views.CallPublic``). A new column is one field there plus one
migration.

``apply_event(record, event)`` folds one vendor event into the record: a pure function, no
I/O, no clock. It is built so that the final record depends only on the *set* of events, not
on their order or repetition:

- the state only moves forward (init → conn → close) and close is final;
- each timestamp is set once: a repeat of the same event changes nothing, and if two
  sources report the same moment (e.g. a live event and the vendor's CDR), the earliest wins;
- the close (close_time, close_type) is the earliest close reported; at the same instant a
  specific reason (busy, max duration, ...) beats a plain hang-up, which beats "other";
  a close with a real reason beats any "other" (255) whatever the times, so a vendor's own
  late word corrects CC's watchdog close (RECORD.md);
- a hang-up that reports its talk seconds implies when the bridge was: conn_time is
  derived from it only while no bridge event is known (a lost ``bridge`` is recovered);
- "latest" fields (ch_state, ch_audio_url) are chosen by event time, ties broken by value;
- the moments happen in order (A dialled, A answered, B dialled, B answered, bridged, closed):
  a time stamped at receipt is only an upper bound of its moment, so each is kept no later
  than the next one known (the same for any order of the events: taking the earliest report
  and this bound commute);
- duration is derived from conn_time and close_time, never accumulated.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import AliasChoices
from sqlalchemy import BigInteger, Text
from sqlmodel import Field, SQLModel
from sqlmodel.sql.sqltypes import AutoString

from channels.events import CallEvent
from core.types import CallState, CloseType, Direction, DisplayPolicy, EventKind


def _chars(length: int, **column: Any) -> Any:
    """A varchar(length) column. The size is the column's, not a validation limit: the live
    record may hold a longer vendor string, which is fitted to its column when saved."""
    return Field(sa_type=AutoString(length=length), **column)


def _ms() -> Any:
    """An epoch-ms time (bigint), unset until it happens."""
    return Field(default=None, sa_type=BigInteger)


class CallRecordBase(SQLModel):
    """The record's columns (RECORD.md, with CC's call id first) that every shape of it holds.

    ``state``, ``close_type`` and ``display`` are declared as the table stores them (text);
    the live record holds them as their enums. The row's own columns (its surrogate key, its
    clock ``updated``, how the app asked for the call, CC's bookkeeping) are not here: the
    live record never carries them (``store.models``).
    """

    cc_call_id: str = _chars(32, unique=True)  # CC's call id: the ``id`` apps see
    tenant: str = _chars(32)
    main_num: str | None = _chars(16, default=None)
    ext_num: str | None = _chars(8, default=None)
    agent: str = _chars(64)
    # The vendor's id for the call. Named apart from CC's own call id in code; its column,
    # the API's field and the record as Temporal's histories hold it keep RECORD.md's word,
    # ``call_id`` (a history written before the rename still reads).
    vendor_call_id: str | None = _chars(
        64,
        default=None,
        index=True,
        sa_column_kwargs={"name": "call_id"},
        validation_alias=AliasChoices("vendor_call_id", "call_id"),  # type: ignore[arg-type]
        serialization_alias="call_id",
    )
    caller: str = _chars(16)
    called: str = _chars(16)
    biz_data: str | None = Field(default=None, sa_type=Text)
    channel: str = _chars(8)
    ch_state: str | None = _chars(32, default=None)
    # RECORD.md's varchar(8) grown to 16: its own later state ``scheduled`` has 9 letters.
    state: str = _chars(16, default=CallState.INIT.value)
    a_call_time: int | None = _ms()
    b_call_time: int | None = _ms()
    a_offhook_time: int | None = _ms()
    b_offhook_time: int | None = _ms()
    conn_time: int | None = _ms()
    close_time: int | None = _ms()
    duration: int = 0
    ch_audio_url: str | None = _chars(512, default=None)
    audio_url: str | None = _chars(512, default=None)
    ivr_url: str | None = _chars(512, default=None)
    ivr_text: str | None = Field(default=None, sa_type=Text)
    close_type: str | None = _chars(32, default=None)
    created: int = Field(sa_type=BigInteger)
    display: str = _chars(16)
    # Why the recording could not be copied to our storage (set by CC, not by events).
    recording_error: str | None = _chars(255, default=None)
    # conn_time was derived from the hang-up's duration (its bridge event was lost).
    conn_time_implied: bool = False
    # ``out``: a callback CC placed; ``in``: a customer who called a 400 number (leg A is
    # then the customer, ``caller``; leg B the agent, ``called``).
    direction: str = _chars(8, default=Direction.OUT.value)
    # A call that waits to be placed (state ``scheduled``): when it is due (epoch ms; None:
    # at once), and why it waits now (``not_before``, ``window``, ``retry``, ``line_busy``,
    # ``no_channel``, ``tenant_limit``); None once it has a line.
    not_before: int | None = _ms()
    wait_reason: str | None = _chars(32, default=None)
    # The tries of one callback under a retry policy: the first try's CC call id (None on the
    # first try itself) and this try's number, 1, 2, ...
    parent: str | None = _chars(32, default=None)
    try_number: int = Field(  # type: ignore[call-overload]
        default=1,
        sa_column_kwargs={"name": "try"},
        validation_alias=AliasChoices("try_number", "try"),
        serialization_alias="try",
    )


# Which record timestamp each event kind sets.
_TIMESTAMP_OF: dict[EventKind, str] = {
    EventKind.A_DIALING: "a_call_time",
    EventKind.A_ANSWERED: "a_offhook_time",
    EventKind.B_DIALING: "b_call_time",
    EventKind.B_ANSWERED: "b_offhook_time",
    EventKind.BRIDGED: "conn_time",
}
# The timestamps events set, each once (the earliest report of its moment stands).
SET_ONCE_TIMES = tuple(_TIMESTAMP_OF.values())

_KIND_ORDER = {kind: i for i, kind in enumerate(EventKind)}


class CallRecord(CallRecordBase):
    """The live unified record: what CallWorkflow keeps, and every change goes through
    ``apply_event``. Its state, close type and display are the domain's enums."""

    state: CallState = CallState.INIT
    display: DisplayPolicy
    close_type: CloseType | None = None  # type: ignore[assignment]  # stored as its code's text
    # Tie-breakers that make "latest" fields order-independent; not persisted as columns.
    ch_state_rank: tuple[int, int, str] | None = None
    ch_audio_rank: tuple[int, str] | None = None


def _earliest(current: int | None, candidate: int) -> int:
    return candidate if current is None else min(current, candidate)


def _later_state(current: CallState, candidate: CallState) -> CallState:
    return candidate if candidate.rank > current.rank else current


def _implied_state(kind: EventKind) -> CallState:
    if kind is EventKind.HANGUP:
        return CallState.CLOSE
    if kind is EventKind.BRIDGED:
        return CallState.CONN
    return CallState.INIT


def _close_rank(close_type: CloseType) -> int:
    if close_type is CloseType.OTHER:
        return 2
    return 1 if close_type is CloseType.NORMAL else 0


def _close_key(at: int, close_type: CloseType) -> tuple[bool, int, int, int]:
    """Smaller wins: any real reason before "other", then the earliest, then the specific."""
    return (close_type is CloseType.OTHER, at, _close_rank(close_type), int(close_type))


def _conn_update(record: CallRecord, event: CallEvent) -> dict[str, object]:
    """conn_time from a bridge event, or implied by a hang-up's talk seconds."""
    if event.kind is EventKind.BRIDGED:
        if record.conn_time is None or record.conn_time_implied:
            return {"conn_time": event.at, "conn_time_implied": False}
        return {"conn_time": min(record.conn_time, event.at)}
    if event.kind is EventKind.HANGUP and event.duration_s and event.duration_s > 0:
        implied = event.at - event.duration_s * 1000
        if record.conn_time is None:
            return {"conn_time": implied, "conn_time_implied": True}
        if record.conn_time_implied:
            return {"conn_time": min(record.conn_time, implied)}
    return {}


def talk_seconds(conn_time: int | None, close_time: int | None) -> int:
    if conn_time is None or close_time is None:
        return 0
    return max(0, math.ceil((close_time - conn_time) / 1000))


def apply_event(record: CallRecord, event: CallEvent) -> CallRecord:
    """Return the record with ``event`` folded in (``record`` itself is not changed)."""
    update: dict[str, object] = {}
    if record.vendor_call_id is None and event.vendor_call_id:
        update["vendor_call_id"] = event.vendor_call_id

    field = _TIMESTAMP_OF.get(event.kind)
    if field is not None and field != "conn_time":
        update[field] = _earliest(getattr(record, field), event.at)
    update.update(_conn_update(record, event))

    if event.kind is EventKind.HANGUP:
        close_type = event.close_type if event.close_type is not None else CloseType.OTHER
        current = (
            _close_key(record.close_time, record.close_type)
            if record.close_time is not None and record.close_type is not None
            else None
        )
        if current is None or _close_key(event.at, close_type) < current:
            update["close_time"] = event.at
            update["close_type"] = close_type

    update["state"] = _later_state(record.state, _implied_state(event.kind))

    if event.ch_state:
        rank = (event.at, _KIND_ORDER[event.kind], event.ch_state)
        if record.ch_state_rank is None or rank > record.ch_state_rank:
            update["ch_state"] = event.ch_state
            update["ch_state_rank"] = rank

    if event.recording_url:
        audio_rank = (event.at, event.recording_url)
        if record.ch_audio_rank is None or audio_rank > record.ch_audio_rank:
            update["ch_audio_url"] = event.recording_url
            update["ch_audio_rank"] = audio_rank

    merged = record.model_copy(update=update)
    merged = merged.model_copy(update=_in_order(merged))
    merged.duration = talk_seconds(merged.conn_time, merged.close_time)
    return merged


# The moments of a call, in the order they happen (close_time bounds them all).
_MOMENTS = ("a_call_time", "a_offhook_time", "b_call_time", "b_offhook_time", "conn_time")


def _in_order(record: CallRecord) -> dict[str, int]:
    """Each moment no later than the next one known. Only times that never rise bound the
    earlier ones (so bounding commutes with taking the earliest report): not a close CC
    made with 255 (a vendor's own later word replaces it), not a conn_time implied by a
    duration (a bridge event replaces it)."""
    real_close = record.close_type is not None and record.close_type is not CloseType.OTHER
    bound, update = record.close_time if real_close else None, {}
    for field in reversed(_MOMENTS):
        at = getattr(record, field)
        if at is None or (field == "conn_time" and record.conn_time_implied):
            continue
        if bound is not None and at > bound:
            update[field] = at = bound
        bound = at
    return update


_A_FAILED = (CloseType.A_UNREACHABLE, CloseType.A_BUSY)
_B_FAILED = (CloseType.B_UNREACHABLE, CloseType.B_BUSY)


def implied_times(record: CallRecord) -> tuple[str, ...]:
    """The timestamps a closed record must have, given how it closed: a missing one means
    an event was lost (and the vendor can be asked)."""
    if record.close_type in _A_FAILED:
        return ("a_call_time",)
    if record.close_type in _B_FAILED:
        return ("a_call_time", "a_offhook_time", "b_call_time")
    if record.conn_time is not None or record.duration > 0:
        return SET_ONCE_TIMES  # a call that talked went through every moment
    return ("a_call_time",)


def past_max_duration(record: CallRecord, max_duration_ms: int) -> CallRecord:
    """A call that talked past its max_duration was ended by the vendor's backstop limit
    (CC could not cut it: it learnt of the bridge too late), which some vendors report as a
    plain hang-up: its close says 5, at the vendor's own close time."""
    conn, close = record.conn_time, record.close_time
    plain = record.close_type in (CloseType.NORMAL, CloseType.OTHER)
    if conn is None or close is None or not plain or close - conn <= max_duration_ms:
        return record
    cut = CallEvent(
        cc_call_id=record.cc_call_id,
        kind=EventKind.HANGUP,
        at=close,
        close_type=CloseType.MAX_DURATION,
        dedupe_key="cc:max_duration_passed",
    )
    return apply_event(record, cut)


def apply_events(record: CallRecord, events: list[CallEvent]) -> CallRecord:
    for event in events:
        record = apply_event(record, event)
    return record
