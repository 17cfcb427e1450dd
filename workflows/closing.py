"""What CallWorkflow does once its call has closed: ask the vendor for facts the close
implies but no event brought, copy the recording to CC's storage, and fold late events for a
short window. Workflow code (deterministic), a mixin like
``placing.py``, so that ``call.py`` reads as the call's process.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import steps
from workflows.host import CallPart

with workflow.unsafe.imports_passed_through():
    from callflow.record import implied_times
    from contracts.call import CopyRecordingInput
    from core.types import CloseType


class Closing(CallPart):
    """CallWorkflow's steps after the close: a part of the workflow, whose state
    (``CallHost``) is declared in ``CallWorkflow.__init__``."""

    async def _fill_missing_facts(self) -> None:
        """A closed call that lacks a time its close implies (a leg's answer when it talked,
        the first dial) had an event lost: ask the vendor once."""
        rec = self.record
        if (
            rec.vendor_call_id is None
            or rec.close_type is None
            or not steps.patched_before("fill-facts")
        ):
            return
        # A plain close of a call that never bridged says nothing of why (a leg's failure
        # event may be the one lost), and a bridge derived from a duration is only seconds-
        # precise: ask as well.
        plain = rec.close_type in (CloseType.NORMAL, CloseType.OTHER)
        unexplained = (rec.conn_time is None and plain) or rec.conn_time_implied
        if unexplained or any(getattr(rec, name) is None for name in implied_times(rec)):
            await self._reconcile()
            self._note_max_duration_passed()

    async def _copy_recording(self) -> None:
        """Copy the vendor's recording to our storage; a failure is noted, never fatal.

        The URL may come after the close (a CDR, a separate callback): wait for it for the
        late-event window.
        """
        if not self._inp.record_audio or self.record.conn_time is None:
            return  # nothing recorded: no bridge, no talk
        if not steps.patched_before("copy-recording"):
            return  # a call that closed before this step existed
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self.record.ch_audio_url is not None,
                timeout=timedelta(seconds=self._inp.timers.late_event_window_s),
                timeout_summary="wait for the recording's URL",
            )
        await self._save()  # what came meanwhile is applied now, not after the copy
        rec = self.record
        if rec.ch_audio_url is None:
            await self._note_recording_error("the vendor reported no recording (yet)")
            return
        try:
            copied = await steps.copy_recording(
                CopyRecordingInput(
                    channel=rec.channel,
                    tenant=rec.tenant,
                    cc_call_id=rec.cc_call_id,
                    created=rec.created,
                    url=rec.ch_audio_url,
                ),
                self._inp.recording,
            )
        except ActivityError as err:
            cause = err.cause
            kind = cause.type if isinstance(cause, ApplicationError) else type(cause).__name__
            await self._note_recording_error(f"{kind}: {cause or err}")
            return
        self.record = self.record.model_copy(
            update={"audio_url": copied.audio_url, "recording_error": None}
        )
        self._dirty = True
        await self._save()

    async def _note_recording_error(self, reason: str) -> None:
        workflow.logger.error(
            "recording not copied tenant=%s call=%s: %s",
            self.record.tenant,
            self.record.cc_call_id,
            reason,
        )
        self.record = self.record.model_copy(update={"recording_error": reason[:255]})
        self._dirty = True
        await self._save()

    async def _accept_late_events(self) -> None:
        """Keep folding stragglers for a short while, then finish. A recording URL that
        arrives now, when none was copied, is copied after all."""
        window_end = self._now_ms() + self._inp.timers.late_event_window_s * 1000
        while (remaining_ms := window_end - self._now_ms()) > 0:
            try:
                await workflow.wait_condition(
                    lambda: self._dirty,
                    timeout=timedelta(milliseconds=remaining_ms),
                    timeout_summary="late-event window",
                )
            except TimeoutError:
                return
            self._note_max_duration_passed()
            await self._save()
            rec = self.record
            if rec.ch_audio_url and rec.audio_url is None and rec.conn_time is not None:
                await self._copy_recording()
