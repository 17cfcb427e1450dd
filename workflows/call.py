"""CallWorkflow: one durable workflow per callback call, id ``call-<CC call id>``.

place the call (``workflows/placing.py``) → fold vendor events (signals) into the record
through init → conn → close, saving each change → on close free the line and finalise.
A call whose vendor goes quiet is reconciled with the vendor (its call-result query) rather
than waited out; CC ends a call at max_duration itself, and a watchdog closes a set-up the
vendor forgets about. Workflow code is deterministic: the clock is ``workflow.now()``, all I/O
is in activities, and the record logic is the pure ``callflow.record.apply_event``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import steps
from workflows.closing import Closing
from workflows.following import Following
from workflows.host import CallHost
from workflows.placing import Placing
from workflows.scheduling import Scheduling

with workflow.unsafe.imports_passed_through():
    from callflow.record import CallRecord, apply_event
    from callflow.summary import current_details
    from channels.events import CallEvent
    from contracts.call import (
        Attempt,
        CallInput,
        LineLease,
        NextTry,
        ReleaseLineInput,
        SaveRecordInput,
    )
    from contracts.errors import ALREADY_CLOSED
    from contracts.ids import (
        CALL_WORKFLOW,
        CANCEL_SCHEDULED_SIGNAL,
        HANGUP_UPDATE,
        SA_CALL_STATE,
        STATUS_QUERY,
        VENDOR_EVENT_SIGNAL,
    )
    from core.types import CallState, ChannelMode, CloseType, Direction, EventKind


# Rounds of the bounded save tried at the end before the workflow gives up on the record
# (the store refused it all along: logged, the line long freed).
FINAL_SAVE_ROUNDS = 3


@workflow.defn(name=CALL_WORKFLOW)
class CallWorkflow(Scheduling, Placing, Following, Closing):
    @workflow.init
    def __init__(self, inp: CallInput) -> None:
        self._inp = inp
        self.record: CallRecord = inp.record
        self.attempts: list[Attempt] = []
        self._unsaved_inbox_ids: list[int] = []
        self._noted_inbox_ids: dict[int, str] = {}
        self._strays: list[tuple[str, str]] = []  # (channel, vendor call id) to hang up
        self._strays_hung_up: set[tuple[str, str]] = set()
        self._dirty = False
        self._saved_state = inp.record.state
        self._saved_audio = inp.record.audio_url is not None
        self._line: LineLease | None = inp.line  # the lease held now; None once released
        self._seat: LineLease | None = None  # the seat claimed for the call (polled channels)
        self._events_seen = 0
        self._last_heard_ms = inp.record.created  # the vendor's last word (or placement)
        self._hangup_asked_ms: int | None = None
        self._placed_ms = inp.record.created  # when the vendor took the call
        self._place_from_ms = inp.record.created  # when placing began (a scheduled call: due)
        self._wake = False  # a handler changed what the follow loop waits for
        self._lean = True  # set by run (steps.lean)
        self._timer: asyncio.Task[None] | None = None  # a lean call's one follow timer
        self._timer_due = 0
        self._quiet_checks = 0  # reconciliations in a row that brought nothing new
        self._series_cancelled = False  # the app hung up: no further try of the series
        self._next_try: NextTry | None = None  # the series' next try, once made

    # -- handlers: touch workflow state only -------------------------------------------
    @workflow.signal(name=VENDOR_EVENT_SIGNAL)
    def vendor_event(self, event: CallEvent) -> None:
        if event.cc_call_id not in (None, self.record.cc_call_id):
            return
        self._dirty = True
        if self._is_stray(event):
            if event.inbox_id is not None:
                self._noted_inbox_ids[event.inbox_id] = "stray_vendor_call"
            if event.channel and event.vendor_call_id:
                self._strays.append((event.channel, event.vendor_call_id))
            return
        before = self.record
        self.record = apply_event(self.record, event)
        self._events_seen += 1
        self._last_heard_ms = self._now_ms()
        if self.record != before:
            self._quiet_checks = 0  # news from the vendor: its checks start afresh
        if event.inbox_id is not None:
            self._unsaved_inbox_ids.append(event.inbox_id)

    @workflow.signal(dynamic=True)
    def vendor_event_of_kind(self, name: str, args: Sequence[RawValue]) -> None:
        """``vendor_event.<kind>`` (``contracts.ids.vendor_event_signal``): the same event,
        named by its kind for the UI. Any other unknown signal is ignored."""
        if name.startswith(f"{VENDOR_EVENT_SIGNAL}.") and len(args) == 1:
            converter = workflow.payload_converter()
            self.vendor_event(converter.from_payload(args[0].payload, CallEvent))

    @workflow.query(name=STATUS_QUERY)
    def status(self) -> CallRecord:
        return self.record

    @workflow.update(name=HANGUP_UPDATE)
    async def hangup(self) -> CallRecord:
        """End the call. One in set-up ends at once, whether or not the vendor then reports;
        a bridged one ends with the vendor's hang-up, or after ``hangup_wait_s`` regardless."""
        self._series_cancelled = True  # the app ends this try: and any further one
        if self._closed:  # a series whose next try is being made: that one is cancelled
            return self.record
        if self.record.state is CallState.SCHEDULED:  # not placed yet: cancelled at once
            self._close_by_cc(CloseType.NORMAL, "cc:hangup")
            return self.record
        await workflow.wait_condition(
            lambda: self._closed or self.record.vendor_call_id is not None
        )
        if self._closed:
            return self.record
        try:
            await self._ask_vendor_to_hang_up()
        except ActivityError:
            # The vendor may still be ringing or talking: keep following the call (the
            # reconciliation, max_duration and the watchdog still hold), never free its line.
            workflow.logger.warning("vendor hang-up failed: call %s", self.record.cc_call_id)
            return self.record
        self._hangup_asked_ms = self._hangup_asked_ms or self._now_ms()
        self._wake = True
        if self.record.state is CallState.INIT:
            self._close_by_cc(CloseType.NORMAL, "cc:hangup")
        return self.record

    @hangup.validator
    def _validate_hangup(self) -> None:
        if self._closed and not self._retry_pending():
            raise ApplicationError("call already closed", type=ALREADY_CLOSED)

    @workflow.signal(name=CANCEL_SCHEDULED_SIGNAL)
    def cancel_scheduled(self) -> None:
        """The series this try belongs to was cancelled while this try was being made: it
        ends now if it waits still (a placed try is the app's to hang up)."""
        self._series_cancelled = True
        if self.record.state is CallState.SCHEDULED:
            self._close_by_cc(CloseType.NORMAL, "cc:hangup")

    # -- the process ----------------------------------------------------------------------
    @workflow.run
    async def run(self, inp: CallInput) -> CallRecord:
        self._lean = steps.lean()  # first thing: the call's shape, for its whole life
        workflow.set_current_details(current_details(self.record))  # the UI's view of it
        # An inbound call (a customer who dialled a 400 number) is the vendor's already: CC
        # only follows it. A callback is placed first.
        inbound = self.record.direction == Direction.IN.value
        if inbound and inp.routing.modes.get(self.record.channel) is ChannelMode.POLL:
            self._seat = inp.line  # rung on a seat CC keeps (hw): freed at the end as ever
        placed = inbound
        if not inbound:  # a scheduled call takes its line when due
            has_line = self._line is not None or await self._take_line_when_due()
            placed = has_line and await self._place()
        if placed:
            self._placed_ms = self._last_heard_ms = max(self._last_heard_ms, self._now_ms())
            await self._follow_until_closed()
        await self._save()
        await self._release_seat()
        await self._release_line()
        await self._start_next_try()
        await self._fill_missing_facts()
        await self._copy_recording()
        await self._accept_late_events()
        await self._hang_up_strays()
        await workflow.wait_condition(workflow.all_handlers_finished)
        for _ in range(FINAL_SAVE_ROUNDS):  # what the last handlers (or a failed save) left
            if not self._dirty:
                break
            await self._save()
        return self.record

    @property
    def _closed(self) -> bool:
        return self.record.state is CallState.CLOSE

    async def _release_line(self) -> None:
        line, self._line = self._line, None
        if line is not None:
            await steps.release_line(ReleaseLineInput(cc_call_id=self.record.cc_call_id, line=line))

    def _now_ms(self) -> int:
        return int(workflow.now().timestamp() * 1000)

    def _close_by_cc(self, close_type: CloseType, reason: str, at: int | None = None) -> None:
        event = CallEvent(
            cc_call_id=self.record.cc_call_id,
            kind=EventKind.HANGUP,
            at=self._now_ms() if at is None else at,
            close_type=close_type,
            dedupe_key=reason,
        )
        self.record = apply_event(self.record, event)
        self._dirty = True

    async def _save(self) -> None:
        if not self._dirty:
            return
        inbox_ids, self._unsaved_inbox_ids = self._unsaved_inbox_ids, []
        noted, self._noted_inbox_ids = self._noted_inbox_ids, {}
        self._dirty = False
        saved_before = (self._saved_state, self._saved_audio)
        state_changed = self.record.state is not self._saved_state
        if state_changed:
            self._saved_state = self.record.state
            workflow.upsert_search_attributes([SA_CALL_STATE.value_set(self.record.state.value)])
        copied = self.record.audio_url is not None and not self._saved_audio
        self._saved_audio = self.record.audio_url is not None
        release = self._line if self._closed else None
        save = SaveRecordInput(
            record=self.record,
            attempts=self.attempts,
            applied_inbox_ids=inbox_ids,
            noted_inbox_ids=noted,
            release_line=release,
            state_changed=state_changed,
            recording_copied=copied,
        )
        try:
            await steps.save_record(save, self._inp.timers.save_max_attempts)
        except (ActivityError, ApplicationError):  # a local activity's failure comes bare
            # The store keeps refusing this record: never hold the line for it, and keep what
            # was not saved for the next save (the last one, at the end, retries until it works).
            workflow.logger.error("record not saved call=%s", self.record.cc_call_id)
            self._dirty = True
            self._unsaved_inbox_ids = inbox_ids + self._unsaved_inbox_ids
            self._noted_inbox_ids = {**noted, **self._noted_inbox_ids}
            self._saved_state, self._saved_audio = saved_before  # told with the next save
            if release is not None:
                await self._release_line()
            return
        workflow.set_current_details(current_details(self.record))
        if release is not None:
            self._line = None


# CallWorkflow provides everything its parts use of it (mypy checks this line).
_HOSTS_ITS_PARTS: type[CallHost] = CallWorkflow
