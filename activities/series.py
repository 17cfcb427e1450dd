"""A callback's retry series: the next try, recorded and started through the one call-start
path (``contracts/start.py``), as an ordinary call record and CallWorkflow."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import WorkflowAlreadyStartedError

from callflow.policy import next_try_at
from channels.registry import Settings
from contracts.call import NextTry, NextTryInput
from contracts.start import call_input, start_call
from store import calls, series
from store.db import session_scope
from store.models import CallRecordRow

log = logging.getLogger("cc.activities.series")


class SeriesActivities:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine, self._settings = engine, settings

    @activity.defn
    async def start_next_try(self, inp: NextTryInput) -> NextTry | None:
        """The try after ``inp.record`` (closed), if its policy calls for one: due its
        interval after the close, moved to the calling window's next opening. Idempotent:
        a retried activity finds the try it recorded, and its workflow started once."""
        ended, policy = inp.record, inp.policy
        if ended.close_type is None or ended.close_time is None:
            return None
        due = next_try_at(
            policy.retry, policy.window, ended.try_number, ended.close_time, ended.close_type
        )
        if due is None or policy.retry is None:
            return None
        plain = ended.close_time + policy.retry.interval_s * 1000
        reason = "window" if due > plain else "retry"

        def record() -> CallRecordRow:
            with session_scope(self._engine) as session:
                return series.record_next_try(session, ended, due, reason)

        row = await asyncio.to_thread(record)
        routing = inp.routing.model_copy(update={"may_fail_over": False})  # set when due
        start = call_input(
            self._settings,
            calls.record_of(row),
            None,
            routing,
            row.max_duration,
            row.record_audio,
            policy=policy,
        )
        try:
            await start_call(activity.client(), start, self._settings.task_queue, existing=True)
        except WorkflowAlreadyStartedError:  # it ran already (cancelled and ended): as it is
            log.info("next try %s started before", row.cc_call_id)
        log.info("retry of call=%s is %s, due %d", ended.cc_call_id, row.cc_call_id, due)
        return NextTry(cc_call_id=row.cc_call_id, not_before=due)
