"""Activities that write the store: the live record and the line lease."""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy import Engine
from temporalio import activity

from channels.events import CallEvent
from contracts.call import (
    CopyRecordingInput,
    FailoverInput,
    LateEventsResult,
    LineLease,
    RecordingOutcome,
    ReleaseLineInput,
    SaveRecordInput,
    TakeLineInput,
    TakenLine,
)
from core.logs import redact
from store import calls, inbox, lines, notifications, placement
from store.db import now_ms, session_scope
from store.quotas import QuotaExceeded, Quotas
from store.routing import LineBusy, NoChannel, RouteRequest, choose_line

log = logging.getLogger("cc.activities.records")


# Why a due call has no line yet, by what the store raised.
WAIT_REASONS: dict[type[Exception], str] = {
    LineBusy: "line_busy",
    NoChannel: "no_channel",
    QuotaExceeded: "tenant_limit",
}


class RecordActivities:
    def __init__(self, engine: Engine, quota_defaults: Quotas | None = None) -> None:
        self._engine = engine
        self._quota_defaults = quota_defaults

    @activity.defn
    def save_record(self, inp: SaveRecordInput) -> None:
        """Idempotent: writes the whole live record and marks the folded events applied."""
        with session_scope(self._engine) as session:
            attempts = [a.model_dump() for a in inp.attempts]
            if not calls.save_record(session, inp.record, attempts):
                log.error("no row for call=%s", inp.record.cc_call_id)
            notifications.enqueue_saved(session, inp)  # told at least once, if committed
            inbox.mark_applied(session, inp.applied_inbox_ids)
            for inbox_id, note in inp.noted_inbox_ids.items():
                inbox.note_unapplied(session, inbox_id, note)
            if (line := inp.release_line) is not None:
                lines.release_line(
                    session, line.channel, line.agent, inp.record.cc_call_id, line.token
                )

    @activity.defn
    def release_line(self, inp: ReleaseLineInput) -> bool:
        with session_scope(self._engine) as session:
            freed = lines.release_line(
                session, inp.line.channel, inp.line.agent, inp.cc_call_id, inp.line.token
            )
        if not freed:
            # An e9 line id is a phone number: never logged in full.
            log.warning(
                "line %s/%s not held by call=%s (token %s)",
                inp.line.channel,
                redact(inp.line.agent),
                inp.cc_call_id,
                inp.line.token,
            )
        return freed

    @activity.defn
    def take_failover_line(self, inp: FailoverInput) -> LineLease | None:
        """Lease a line on a channel not yet tried for this call; None when none can take it."""
        routing = inp.routing
        request = replace(
            RouteRequest.for_call(inp.tenant, inp.cc_call_id, routing),
            allow_fallback=True,
            exclude=frozenset(inp.tried),
        )
        try:
            with session_scope(self._engine) as session:
                return lines.lease_of(choose_line(session, request).line)
        except (NoChannel, LineBusy) as exc:
            log.warning("no failover for call=%s after %s: %s", inp.cc_call_id, inp.tried, exc)
            return None

    @activity.defn
    def take_due_line(self, inp: TakeLineInput) -> TakenLine:
        """A scheduled call is due: lease its line (routed as it was asked), or say why it
        must wait (the line busy, no channel, the tenant's live-call quota reached, or its
        calling hours closed while it waited for one of those: then until they open)."""
        now = now_ms() if inp.at is None else inp.at
        if inp.window is not None and not inp.window.contains(now):
            opens = inp.window.next_opening(now)
            log.info("due call=%s waits for its calling hours: %d", inp.cc_call_id, opens)
            return TakenLine(wait_reason="window", due_at=opens)
        try:
            with session_scope(self._engine) as session:
                route = placement.take_due_line(
                    session, inp.tenant, inp.cc_call_id, inp.routing, self._quota_defaults
                )
                return TakenLine(line=lines.lease_of(route.line), may_fail_over=route.may_fail_over)
        except (NoChannel, LineBusy, QuotaExceeded) as exc:
            log.info("due call=%s waits: %s", inp.cc_call_id, exc)
            return TakenLine(wait_reason=WAIT_REASONS[type(exc)])

    @activity.defn
    def apply_late_events(self, events: list[CallEvent]) -> LateEventsResult:
        """Fold events that came after the call's workflow finished into its stored record."""
        with session_scope(self._engine) as session:
            record = calls.apply_late_events(session, events)
            ids = [e.inbox_id for e in events if e.inbox_id is not None]
            if record is None:
                for inbox_id in ids:
                    inbox.note_unapplied(session, inbox_id, "unknown_call")
                return LateEventsResult(found=False)
            inbox.mark_applied(session, ids)
            row = calls.get_call_any_tenant(session, record.cc_call_id)
            wants_copy = row is not None and row.record_audio
        log.info("late events applied call=%s count=%d", record.cc_call_id, len(events))
        if not wants_copy or record.conn_time is None or record.audio_url is not None:
            return LateEventsResult(found=True)
        if record.ch_audio_url is None:
            return LateEventsResult(found=True)
        return LateEventsResult(
            found=True,
            to_copy=CopyRecordingInput(
                channel=record.channel,
                tenant=record.tenant,
                cc_call_id=record.cc_call_id,
                created=record.created,
                url=record.ch_audio_url,
            ),
        )

    @activity.defn
    def placed_call_id(self, cc_call_id: str) -> str | None:
        """The vendor's id a place activity wrote down though its answer was lost."""
        with session_scope(self._engine) as session:
            return calls.placed_call_id(session, cc_call_id)

    @activity.defn
    def unapplied_events(self, cc_call_id: str) -> list[CallEvent]:
        """The call's events CC stored but its workflow never got: the process that stored
        them died before signalling, and redelivery has not come yet."""
        with session_scope(self._engine) as session:
            return inbox.unapplied_for_call(session, cc_call_id)

    @activity.defn
    def note_recording(self, inp: RecordingOutcome) -> None:
        """Write the outcome of a late recording copy onto the stored record."""
        with session_scope(self._engine) as session:
            calls.set_recording(session, inp.cc_call_id, inp.audio_url, inp.error)
            if inp.audio_url:
                notifications.enqueue_recording(session, inp.cc_call_id)
