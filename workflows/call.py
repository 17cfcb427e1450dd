"""CallWorkflow: one durable workflow per callback call, id ``call-<CC call id>``.

place the call → fold vendor events (signals) into the record through init → conn → close,
saving each change → on close free the line and finalise. A watchdog closes calls the
vendor forgets about. Workflow code is deterministic: the clock is ``workflow.now()``, all
I/O is in activities, and the record logic is the pure ``callflow.record.apply_event``.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from workflows import steps

with workflow.unsafe.imports_passed_through():
    from activities.channels import NETWORK_ERROR, REJECTED
    from callflow.record import CallRecord, apply_event
    from channels.base import CallEvent, PlaceCallRequest
    from core.types import CallState, ChannelMode, CloseType, DisplayPolicy, EventKind
    from workflows.health_types import PlacementOutcome
    from workflows.types import (
        SA_CALL_STATE,
        SA_CHANNEL,
        VENDOR_EVENT_SIGNAL,
        VENDOR_LIMIT_MARGIN_S,
        Attempt,
        CallInput,
        CopyRecordingInput,
        FailoverInput,
        HangupInput,
        LineLease,
        PlaceCallInput,
        PollInput,
        PollOutcome,
        ReleaseLineInput,
        SaveRecordInput,
    )


@workflow.defn
class CallWorkflow:
    @workflow.init
    def __init__(self, inp: CallInput) -> None:
        self._inp = inp
        self.record: CallRecord = inp.record
        self.attempts: list[Attempt] = []
        self._unsaved_inbox_ids: list[int] = []
        self._dirty = False
        self._saved_state = inp.record.state
        self._poller: asyncio.Task[PollOutcome] | None = None
        self._line: LineLease | None = inp.line  # the lease held now; None once released

    # -- handlers: touch workflow state only -------------------------------------------
    @workflow.signal(name=VENDOR_EVENT_SIGNAL)
    def vendor_event(self, event: CallEvent) -> None:
        if event.cc_call_id not in (None, self.record.cc_call_id):
            return
        self.record = apply_event(self.record, event)
        if event.inbox_id is not None:
            self._unsaved_inbox_ids.append(event.inbox_id)
        self._dirty = True

    @workflow.query
    def status(self) -> CallRecord:
        return self.record

    @workflow.update
    async def hangup(self) -> CallRecord:
        # The vendor can only hang up a call it has accepted: wait for that (or for the end).
        await workflow.wait_condition(lambda: self._closed or self.record.call_id is not None)
        if not self._closed:
            await self._ask_vendor_to_hang_up()
        return self.record

    @hangup.validator
    def _validate_hangup(self) -> None:
        if self._closed:
            raise ApplicationError("call already closed", type="AlreadyClosed")

    # -- the process ----------------------------------------------------------------------
    @workflow.run
    async def run(self, inp: CallInput) -> CallRecord:
        if await self._place():
            if inp.routing.modes.get(self.record.channel) is ChannelMode.POLL:
                self._poller = asyncio.ensure_future(self._poll())
            await self._follow_until_closed()
        await self._save()
        await self._stop_polling()
        await self._save()
        await self._release_line()
        await self._copy_recording()
        await self._accept_late_events()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.record

    @property
    def _closed(self) -> bool:
        return self.record.state is CallState.CLOSE

    def _now_ms(self) -> int:
        return int(workflow.now().timestamp() * 1000)

    async def _release_line(self) -> None:
        line, self._line = self._line, None
        if line is not None:
            await steps.release_line(ReleaseLineInput(cc_call_id=self.record.cc_call_id, line=line))

    def _place_request(self, line: LineLease) -> PlaceCallRequest:
        rec = self.record
        shown_to_b = rec.caller if rec.display is DisplayPolicy.PASSTHROUGH else line.number
        return PlaceCallRequest(
            cc_call_id=rec.cc_call_id,
            caller=rec.caller,
            called=rec.called,
            display_to_a=line.number,  # A never sees the customer's number
            display_to_b=shown_to_b,
            agent=line.agent,
            max_duration_s=self._inp.max_duration_s + VENDOR_LIMIT_MARGIN_S,
            record=self._inp.record_audio,
            ivr_text=rec.ivr_text,
            ivr_url=rec.ivr_url,
        )

    async def _place(self) -> bool:
        """Place the call; on a vendor fault, fail over to the next channel before any dial.

        Only faults that mean the vendor did not take the call (5xx, timeouts, network, 429
        after retries) move on; a rejection (bad number, auth) does not, and nothing moves
        once a vendor has accepted the call, so a call is never dialled twice.
        """
        tried: list[str] = []
        error_type: str | None = None
        while self._line is not None:
            line = self._line
            error_type = await self._try_place(line)
            if error_type is None:
                return True
            tried.append(line.channel)
            if error_type == REJECTED or not self._inp.routing.may_fail_over:
                break
            await self._release_line()
            self._line = await steps.take_failover_line(
                FailoverInput(
                    tenant=self.record.tenant,
                    cc_call_id=self.record.cc_call_id,
                    routing=self._inp.routing,
                    tried=tried,
                )  # fmt: skip
            )
            if self._line is not None:
                self.record = self.record.model_copy(
                    update={"channel": self._line.channel, "agent": self._line.agent}
                )
                workflow.upsert_search_attributes([SA_CHANNEL.value_set(self._line.channel)])
        close_type = {REJECTED: CloseType.OTHER, NETWORK_ERROR: CloseType.CHANNEL_NETWORK_ERROR}
        self._close_by_cc(close_type.get(error_type or "", CloseType.CHANNEL_SERVER_ERROR),
                          "cc:place_failed")  # fmt: skip
        return False

    async def _try_place(self, line: LineLease) -> str | None:
        """One channel's attempt (with its own retries). Returns the error type, or None."""
        attempt = Attempt(
            channel=line.channel, agent=line.agent, at=self._now_ms(), outcome="placed"
        )
        try:
            placed = await steps.place_call(
                PlaceCallInput(channel=line.channel, request=self._place_request(line))
            )
        except ActivityError as err:
            cause = err.cause
            error_type = cause.type if isinstance(cause, ApplicationError) else None
            attempt.outcome = "rejected" if error_type == REJECTED else "failed"
            attempt.error = str(cause or err)[:300]
            self.attempts.append(attempt)
            self._dirty = True
            # A rejection is about this call (a bad number), not the vendor's health. Report
            # how many requests failed; health decides how much one call may weigh.
            if error_type != REJECTED:
                tries = steps.VENDOR_RETRY.maximum_attempts
                if err.retry_state is not RetryState.MAXIMUM_ATTEMPTS_REACHED:
                    tries = 1
                await steps.report_placement(PlacementOutcome(
                    channel=line.channel, ok=False, reason=attempt.error, tries=tries))  # fmt: skip
            return error_type or "unknown"
        attempt.vendor_call_id = placed.vendor_call_id
        self.attempts.append(attempt)
        self.record = self.record.model_copy(update={"call_id": placed.vendor_call_id})
        self._dirty = True
        await steps.report_placement(PlacementOutcome(channel=line.channel, ok=True))
        return None

    async def _follow_until_closed(self) -> None:
        """Fold events until close; end the call at max_duration; watch for a silent vendor."""
        timers = self._inp.timers
        max_ms = self._inp.max_duration_s * 1000
        watchdog_at = self.record.created + max_ms + timers.watchdog_grace_s * 1000
        while not self._closed:
            conn_time = self.record.conn_time
            deadline = watchdog_at if conn_time is None else min(watchdog_at, conn_time + max_ms)
            remaining_ms = deadline - self._now_ms()
            if remaining_ms > 0:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: self._dirty, timeout=timedelta(milliseconds=remaining_ms)
                    )
                await self._save()
            elif deadline == watchdog_at:
                await self._watchdog()
            else:
                # CC enforces max_duration itself, to the second, on every channel.
                assert conn_time is not None
                self._close_by_cc(CloseType.MAX_DURATION, "cc:max_duration", conn_time + max_ms)
                await self._save()
                with contextlib.suppress(ActivityError):
                    await self._ask_vendor_to_hang_up()

    async def _poll(self) -> PollOutcome:
        assert self.record.call_id is not None
        outcome = await steps.follow_polled_call(
            PollInput(channel=self.record.channel, cc_call_id=self.record.cc_call_id,
                      vendor_call_id=self.record.call_id, timers=self._inp.poll),
            lifetime_s=self._inp.max_duration_s + self._inp.timers.watchdog_grace_s + 60,
        )  # fmt: skip
        if outcome.unreachable and not self._closed:
            self._close_by_cc(CloseType.CHANNEL_NETWORK_ERROR, "cc:poll_unreachable")
            with contextlib.suppress(ActivityError):  # don't leave a call talking unwatched
                await self._ask_vendor_to_hang_up()
        return outcome

    async def _stop_polling(self) -> None:
        """Give the poller a moment to read the CDR after the hang-up, then stop it."""
        poller = self._poller
        if poller is None:
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                poller.done, timeout=timedelta(seconds=self._inp.poll.after_close_s + 5)
            )
        if not poller.done():
            poller.cancel()
        with contextlib.suppress(ActivityError, asyncio.CancelledError):
            await poller

    async def _ask_vendor_to_hang_up(self) -> None:
        if self.record.call_id is None:
            return
        await steps.hang_up(
            HangupInput(channel=self.record.channel, vendor_call_id=self.record.call_id)
        )

    async def _watchdog(self) -> None:
        """The vendor went silent past max duration: ask it to hang up, then close ourselves."""
        workflow.logger.warning("watchdog: call %s still open", self.record.cc_call_id)
        if self.record.call_id is not None:
            try:
                await self._ask_vendor_to_hang_up()
            except ActivityError:
                workflow.logger.warning("watchdog: vendor hang-up failed")
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._closed, timeout=timedelta(seconds=self._inp.timers.hangup_wait_s)
                )
        if not self._closed:
            self._close_by_cc(CloseType.OTHER, "cc:watchdog")

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

    async def _copy_recording(self) -> None:
        """Copy the vendor's recording to our storage; a failure is noted, never fatal.

        The URL may come after the close (a CDR, a separate callback): wait for it for the
        late-event window.
        """
        if not self._inp.record_audio or self.record.conn_time is None:
            return  # nothing recorded: no bridge, no talk
        if not workflow.patched("copy-recording"):
            return  # a call that closed before this step existed
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self.record.ch_audio_url is not None,
                timeout=timedelta(seconds=self._inp.timers.late_event_window_s),
            )
        await self._save()  # what came meanwhile is applied now, not after the copy
        rec = self.record
        if rec.ch_audio_url is None:
            await self._note_recording_error("the vendor reported no recording")
            return
        try:
            copied = await steps.copy_recording(
                CopyRecordingInput(channel=rec.channel, tenant=rec.tenant,
                                   cc_call_id=rec.cc_call_id, created=rec.created,
                                   url=rec.ch_audio_url),
                self._inp.recording,
            )  # fmt: skip
        except ActivityError as err:
            cause = err.cause
            kind = cause.type if isinstance(cause, ApplicationError) else type(cause).__name__
            await self._note_recording_error(f"{kind}: {cause or err}")
            return
        self.record = self.record.model_copy(update={"audio_url": copied.audio_url})
        self._dirty = True
        await self._save()

    async def _note_recording_error(self, reason: str) -> None:
        workflow.logger.error("recording not copied tenant=%s call=%s: %s", self.record.tenant,
                              self.record.cc_call_id, reason)  # fmt: skip
        self.record = self.record.model_copy(update={"recording_error": reason[:255]})
        self._dirty = True
        await self._save()

    async def _accept_late_events(self) -> None:
        """Keep folding stragglers (a recording after close) for a short while, then finish."""
        window_end = self._now_ms() + self._inp.timers.late_event_window_s * 1000
        while (remaining_ms := window_end - self._now_ms()) > 0:
            try:
                await workflow.wait_condition(
                    lambda: self._dirty, timeout=timedelta(milliseconds=remaining_ms)
                )
            except TimeoutError:
                return
            await self._save()

    async def _save(self) -> None:
        if not self._dirty:
            return
        inbox_ids, self._unsaved_inbox_ids = self._unsaved_inbox_ids, []
        self._dirty = False
        if self.record.state is not self._saved_state:
            self._saved_state = self.record.state
            workflow.upsert_search_attributes([SA_CALL_STATE.value_set(self.record.state.value)])
        release = self._line if self._closed else None
        await steps.save_record(
            SaveRecordInput(
                record=self.record,
                attempts=self.attempts,
                applied_inbox_ids=inbox_ids,
                release_line=release,
            )  # fmt: skip
        )
        if release is not None:
            self._line = None
