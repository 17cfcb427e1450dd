"""What CallWorkflow does between the placement and the close: fold the vendor's events
until the call closes; end it at max_duration (counted from the bridge); ask a vendor gone
quiet what became of it (less often, the longer a bridged call goes on); hang up stray calls;
and close a set-up the vendor forgot (the watchdog). Workflow code (deterministic), a part
like ``placing.py`` and ``closing.py``: its state (``CallHost``) is declared in
``CallWorkflow.__init__``.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

from workflows import steps
from workflows.host import CallPart

with workflow.unsafe.imports_passed_through():
    from callflow.record import past_max_duration
    from contracts.call import HangupInput, ReconcileInput
    from core.types import CloseType

# A lean call's follow timer is kept while the moment it waits for moves later by less than
# this; the connected check's interval doubles at most this many times.
TIMER_SLACK_MS = 30_000
MAX_CHECK_DOUBLINGS = 3


class Following(CallPart):
    """CallWorkflow's steps while its call is live."""

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
