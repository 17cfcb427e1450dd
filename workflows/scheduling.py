"""How a scheduled CallWorkflow waits for its time and takes its line, and how a try of a
retry series makes the next one: workflow code (deterministic), a part of CallWorkflow like
``placing.py``.

A call asked for later (``not_before``) is recorded in state ``scheduled`` and holds no line:
it waits on a durable timer (which a worker's or the server's restart does not lose), and a
hang-up cancels it at once. When it is due it is routed as it was asked (the pinned channel,
the user's binding, priority) and takes a line then. A call that finds none (the line busy, no
channel routable, the tenant's live calls at their quota) keeps waiting, still ``scheduled``,
with the reason on its record (``wait_reason``), and asks again after ``line_wait_s``,
doubling up to a minute; after ``line_wait_max_s`` of that it closes without dialling (255).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from temporalio import workflow

from workflows import steps
from workflows.host import CallPart

with workflow.unsafe.imports_passed_through():
    from contracts.call import NextTryInput, TakeLineInput
    from contracts.ids import CANCEL_SCHEDULED_SIGNAL, SA_CHANNEL, workflow_id
    from core.types import CallState, CloseType, Direction

WAIT_CAP_S = 60.0  # the longest pause between two asks for a line


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


class Scheduling(CallPart):
    """CallWorkflow's wait for a scheduled call's time and line."""

    async def _take_line_when_due(self) -> bool:
        """Wait until the call is due, then lease its line. True with a line; False when the
        call was cancelled meanwhile or found no line in time (closed)."""
        due = self.record.not_before or self.record.created
        pause_s, waited_since = self._inp.timers.line_wait_s, None
        waited_before_ms = 0  # waited for a line in earlier stretches of the calling hours
        while True:
            if not await self._sleep_until(due, f"scheduled: place at {_iso(due)}"):
                return False
            taken = await steps.take_due_line(
                TakeLineInput(
                    tenant=self.record.tenant,
                    cc_call_id=self.record.cc_call_id,
                    routing=self._inp.routing,
                    window=self._inp.policy.window,
                    at=self._now_ms(),
                )
            )
            if self._closed:  # cancelled while the line was being taken
                self._line = taken.line
                return False
            now = self._now_ms()
            if taken.line is not None:
                self._line = taken.line
                self._place_from_ms = now
                self._inp = self._inp.model_copy(
                    update={
                        "routing": self._inp.routing.model_copy(
                            update={"may_fail_over": taken.may_fail_over}
                        )
                    }
                )
                self.record = self.record.model_copy(
                    update={
                        "state": CallState.INIT,
                        "channel": taken.line.channel,
                        "agent": taken.line.agent,
                        "wait_reason": None,
                    }
                )
                workflow.upsert_search_attributes([SA_CHANNEL.value_set(taken.line.channel)])
                self._dirty = True
                await self._save()
                return True
            if taken.due_at is not None:  # its calling hours closed: till they open again
                await self._note_wait_reason(taken.wait_reason, not_before=taken.due_at)
                if waited_since is not None:  # the wait for a line goes on when they open
                    waited_before_ms += now - waited_since
                due, pause_s, waited_since = taken.due_at, self._inp.timers.line_wait_s, None
                continue
            waited_since = now if waited_since is None else waited_since
            waited_ms = waited_before_ms + now - waited_since
            if waited_ms >= self._inp.timers.line_wait_max_s * 1000:
                self._close_by_cc(CloseType.OTHER, "cc:no_line_in_time")
                return False
            await self._note_wait_reason(taken.wait_reason)
            due = now + int(pause_s * 1000)
            pause_s = min(pause_s * 2, WAIT_CAP_S)

    async def _note_wait_reason(self, reason: str | None, not_before: int | None = None) -> None:
        """The record says why the call still waits, and (``not_before``) until when; saved
        when that changes."""
        not_before = self.record.not_before if not_before is None else not_before
        if (self.record.wait_reason, self.record.not_before) != (reason, not_before):
            self.record = self.record.model_copy(
                update={"wait_reason": reason, "not_before": not_before}
            )
            self._dirty = True
            await self._save()

    async def _sleep_until(self, due: int, summary: str) -> bool:
        """A durable timer to ``due`` that a hang-up cuts short. False when cancelled."""
        wait_ms = due - self._now_ms()
        if wait_ms > 0 and not self._closed:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._closed,
                    timeout=timedelta(milliseconds=wait_ms),
                    timeout_summary=summary,
                )
        return not self._closed

    # -- a retry series ------------------------------------------------------------------
    def _retry_due(self) -> bool:
        """The policy calls for another try after this one's close (and nobody cancelled)."""
        retry, record = self._inp.policy.retry, self.record
        return (
            retry is not None
            and not self._series_cancelled
            and record.direction == Direction.OUT.value
            and record.close_type in retry.on
            and record.try_number < retry.max_attempts
        )

    def _retry_pending(self) -> bool:
        """Closed, and the next try not made yet: a hang-up now cancels the series."""
        return self._closed and self._next_try is None and self._retry_due()

    async def _start_next_try(self) -> None:
        """The next try of the series, as its own record and CallWorkflow (an activity: the
        due time depends on the calling window's time zone). A cancel that came while it was
        being made reaches it at once."""
        if not self._retry_due():
            return
        self._next_try = await steps.start_next_try(
            NextTryInput(record=self.record, policy=self._inp.policy, routing=self._inp.routing)
        )
        if self._next_try is not None and self._series_cancelled:
            await self._cancel_next_try()

    async def _cancel_next_try(self) -> None:
        if self._next_try is None:
            return
        handle = workflow.get_external_workflow_handle(workflow_id(self._next_try.cc_call_id))
        try:
            await handle.signal(CANCEL_SCHEDULED_SIGNAL)
        except Exception:  # noqa: BLE001 - it ended already: nothing left to cancel
            workflow.logger.info("next try %s already ended", self._next_try.cc_call_id)
