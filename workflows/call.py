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
import contextlib
from collections.abc import Sequence
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

from workflows import steps
from workflows.closing import Closing
from workflows.host import CallHost
from workflows.placing import Placing

with workflow.unsafe.imports_passed_through():
    from callflow.record import CallRecord, apply_event, past_max_duration
    from callflow.summary import current_details
    from channels.events import CallEvent
    from contracts.call import (
        Attempt,
        CallInput,
        HangupInput,
        LineLease,
        ReconcileInput,
        ReleaseLineInput,
        SaveRecordInput,
    )
    from contracts.errors import ALREADY_CLOSED
    from contracts.ids import (
        CALL_WORKFLOW,
        HANGUP_UPDATE,
        SA_CALL_STATE,
        STATUS_QUERY,
        VENDOR_EVENT_SIGNAL,
    )
    from core.types import CallState, ChannelMode, CloseType, Direction, EventKind


# Rounds of the bounded save tried at the end before the workflow gives up on the record
# (the store refused it all along: logged, the line long freed).
FINAL_SAVE_ROUNDS = 3
# A lean call's follow timer is kept while the moment it waits for moves later by less than
# this; the connected check's interval doubles at most this many times.
TIMER_SLACK_MS = 30_000
MAX_CHECK_DOUBLINGS = 3


@workflow.defn(name=CALL_WORKFLOW)
class CallWorkflow(Placing, Closing):
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
        self._wake = False  # a handler changed what the follow loop waits for
        self._lean = True  # set by run (steps.lean)
        self._timer: asyncio.Task[None] | None = None  # a lean call's one follow timer
        self._timer_due = 0
        self._quiet_checks = 0  # reconciliations in a row that brought nothing new

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
        if self._closed:
            raise ApplicationError("call already closed", type=ALREADY_CLOSED)

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
        if inbound or await self._place():
            self._placed_ms = self._last_heard_ms = max(self._last_heard_ms, self._now_ms())
            await self._follow_until_closed()
        await self._save()
        await self._release_seat()
        await self._release_line()
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

    def _next_check_ms(self) -> int:
        """When the vendor's silence is long enough to ask it what became of the call. A lean
        call asks a bridged call's vendor less often each time it answers "still talking"
        (2×, 4×, 8× ``connected_check_s``): thousands of long calls are not asked about every
        few minutes each."""
        timers = self._inp.timers
        bridged = self.record.conn_time is not None
        quiet_s = timers.connected_check_s if bridged else timers.setup_silence_s
        if bridged and self._lean:
            quiet_s *= 2 ** min(self._quiet_checks, MAX_CHECK_DOUBLINGS)
        return self._last_heard_ms + int(quiet_s * 1000)

    async def _follow_until_closed(self) -> None:
        """Fold events until close; end the call at max_duration (counted from the bridge);
        ask a silent vendor; close a set-up the vendor forgot with the watchdog."""
        timers = self._inp.timers
        max_ms = self._inp.max_duration_s * 1000
        # Set-up is watched from the placement: a call placed late (after an outage) is not
        # cut the moment it rings.
        watchdog_at = self._placed_ms + max_ms + timers.watchdog_grace_s * 1000
        while not self._closed:
            await self._hang_up_strays()
            conn_time = self.record.conn_time
            limit = watchdog_at if conn_time is None else conn_time + max_ms
            check_at = self._next_check_ms()
            hangup_at = (self._hangup_asked_ms or 2**62) + timers.hangup_wait_s * 1000
            now = self._now_ms()
            due = min(limit, check_at, hangup_at)
            self._wake = False
            if due > now:
                why = self._timer_label(due, hangup_at, check_at, conn_time)
                await self._wait_for_news(due, now, why)
                await self._save()
            elif due == hangup_at:
                self._close_by_cc(CloseType.NORMAL, "cc:hangup")
            elif due == check_at:
                await self._reconcile()
            elif conn_time is None:
                await self._watchdog()
            else:
                # CC enforces max_duration itself, to the second, on every channel.
                self._close_by_cc(CloseType.MAX_DURATION, "cc:max_duration", conn_time + max_ms)
                await self._save()
                with contextlib.suppress(ActivityError):
                    await self._ask_vendor_to_hang_up()
        if self._timer is not None:
            self._timer.cancel()
        self._note_max_duration_passed()
        await self._hang_up_strays()

    @staticmethod
    def _timer_label(due: int, hangup_at: int, check_at: int, conn_time: int | None) -> str:
        """What the follow loop's timer waits for, as the UI lists it (the loop's own order)."""
        if due == hangup_at:
            return "hang-up wait"
        if due == check_at:
            return "connected check" if conn_time is not None else "set-up silence check"
        return "set-up watchdog" if conn_time is None else "max duration"

    async def _wait_for_news(self, due: int, now: int, why: str) -> None:
        """Wait for an event, a stray, a hang-up, or ``due``. A lean call keeps one timer
        while ``due`` only moves later (each event moves the silence check on): it fires at
        the older moment, and the loop then waits again (one timer per call, not per event)."""
        news = lambda: self._dirty or bool(self._strays) or self._wake  # noqa: E731
        if not self._lean:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    news, timeout=timedelta(milliseconds=due - now), timeout_summary=why
                )
            return
        timer = self._timer
        # A timer due well before the new moment (the bridge moved the check from set-up
        # silence to connected_check_s) is replaced: it would only wake the call for nothing.
        early = due - self._timer_due > TIMER_SLACK_MS
        if timer is None or timer.done() or self._timer_due > due or early:
            if timer is not None:
                timer.cancel()
            self._timer_due = due
            timer = self._timer = asyncio.create_task(
                workflow.sleep((due - now) / 1000, summary=why)
            )
        await workflow.wait_condition(lambda: news() or timer.done())

    def _note_max_duration_passed(self) -> None:
        """CC could not cut the call at max_duration (Temporal was down, the bridge event came
        late): the vendor's backstop ended it, and the record says so (5)."""
        checked = past_max_duration(self.record, self._inp.max_duration_s * 1000)
        if checked != self.record:
            self.record, self._dirty = checked, True

    async def _reconcile(self) -> None:
        """Ask the vendor what became of the call and apply its answer as events."""
        self._last_heard_ms = self._now_ms()  # next check a full period on, whatever it says
        if self.record.vendor_call_id is None:
            return
        # Back to 0 if the answer changes the record; a vendor that cannot answer is asked
        # less often too (thousands of long calls must not all keep asking through its outage).
        self._quiet_checks += 1
        try:
            events = await steps.reconcile_call(
                ReconcileInput(
                    channel=self.record.channel,
                    cc_call_id=self.record.cc_call_id,
                    vendor_call_id=self.record.vendor_call_id,
                )
            )
        except (ActivityError, ApplicationError, TemporalTimeoutError) as err:
            cause = err.cause if isinstance(err, ActivityError) else err  # a local one's: bare
            workflow.logger.warning(
                "reconciliation failed call=%s: %s", self.record.cc_call_id, cause
            )
            return
        for event in events:
            self.vendor_event(event)
        await self._save()

    async def _hang_up_strays(self) -> None:
        while self._strays:
            stray = self._strays.pop()
            if stray in self._strays_hung_up:
                continue
            self._strays_hung_up.add(stray)
            workflow.logger.warning(
                "stray vendor call %s/%s for call %s: hanging it up",
                stray[0],
                stray[1],
                self.record.cc_call_id,
            )
            with contextlib.suppress(ActivityError):
                await steps.hang_up(HangupInput(channel=stray[0], vendor_call_id=stray[1]))

    async def _ask_vendor_to_hang_up(self) -> None:
        if self.record.vendor_call_id is None:
            return
        await steps.hang_up(
            HangupInput(channel=self.record.channel, vendor_call_id=self.record.vendor_call_id)
        )

    async def _watchdog(self) -> None:
        """A set-up the vendor went silent on past max duration: ask it to hang up, then
        close ourselves (255, which the vendor's own later word may still correct)."""
        workflow.logger.warning("watchdog: call %s still open", self.record.cc_call_id)
        if self.record.vendor_call_id is not None:
            try:
                await self._ask_vendor_to_hang_up()
            except ActivityError:
                workflow.logger.warning("watchdog: vendor hang-up failed")
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._closed,
                    timeout=timedelta(seconds=self._inp.timers.hangup_wait_s),
                    timeout_summary="watchdog: hang-up wait",
                )
        if not self._closed:
            self._close_by_cc(CloseType.OTHER, "cc:watchdog")

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
