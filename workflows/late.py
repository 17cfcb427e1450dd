"""LateEventsWorkflow: events that come after a call's CallWorkflow has finished.

A vendor re-pushes a hang-up after CC's watchdog closed the call, or publishes a recording
after the late-event window: intake signal-with-starts this workflow (id ``late-<call id>``),
which folds each batch into the stored record through the state machine, copies a recording
that was never copied, and ends after a quiet spell. One per call at a time, so batches are
applied in order.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import steps

with workflow.unsafe.imports_passed_through():
    from channels.events import CallEvent
    from contracts.call import CopyRecordingInput, LateEventsInput, RecordingOutcome
    from contracts.ids import LATE_EVENT_SIGNAL, LATE_EVENTS_WORKFLOW


@workflow.defn(name=LATE_EVENTS_WORKFLOW)
class LateEventsWorkflow:
    def __init__(self) -> None:
        self._pending: list[CallEvent] = []

    @workflow.signal(name=LATE_EVENT_SIGNAL)
    def late_event(self, event: CallEvent) -> None:
        self._pending.append(event)

    @workflow.run
    async def run(self, inp: LateEventsInput) -> int:
        applied = 0
        while True:
            try:
                await workflow.wait_condition(
                    lambda: bool(self._pending), timeout=timedelta(seconds=inp.quiet_s)
                )
            except TimeoutError:
                if not self._pending:  # a signal may land with the timer in one activation
                    return applied
            events, self._pending = self._pending, []
            applied += len(events)
            result = await steps.apply_late_events(events)
            if result.to_copy is not None:
                await self._copy(inp, result.to_copy)

    async def _copy(self, inp: LateEventsInput, copy: CopyRecordingInput) -> None:
        try:
            copied = await steps.copy_recording(copy, inp.recording)
            outcome = RecordingOutcome(cc_call_id=inp.cc_call_id, audio_url=copied.audio_url)
        except ActivityError as err:
            cause = err.cause
            kind = cause.type if isinstance(cause, ApplicationError) else type(cause).__name__
            outcome = RecordingOutcome(cc_call_id=inp.cc_call_id, error=f"{kind}: {cause or err}")
        await steps.note_recording(outcome)
