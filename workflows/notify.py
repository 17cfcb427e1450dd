"""NotificationWorkflow: keeps the one notification sender running.

However many workers run, one sender POSTs the outbox (fixed id ``notifications``), so a
call's events leave in order. The sender is a long-lived, heartbeating activity: a worker
that dies stops its heartbeat and Temporal starts it again on another worker, retried without
end (the outbox, not the workflow, holds what is left to send). Temporal does that whether
or not the first sender has stopped (a worker cut off from Temporal still runs), so the
workflow alone cannot promise one sender at a time: the store's sender lease does
(``activities/notify.py``); the new attempt waits for it. New settings (a worker's
start) end the running sender so the next one runs with them. Continue-as-new keeps the
history short.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from contracts.notify import (
        NOTIFY_CONFIGURE_SIGNAL,
        NOTIFY_WORKFLOW,
        NotifyConfig,
        send_notifications,
    )

RUNS_PER_HISTORY = 100
# A dead worker's sender is started again elsewhere after this; a running one learns of a
# cancel (new settings) within 80% of it, through its throttled heartbeats.
HEARTBEAT_TIMEOUT = timedelta(seconds=15)
SENDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,  # without end: a crashed sender always comes back
)


@workflow.defn(name=NOTIFY_WORKFLOW)
class NotificationWorkflow:
    def __init__(self) -> None:
        self._config: NotifyConfig | None = None
        self._reconfigured = False

    @workflow.signal(name=NOTIFY_CONFIGURE_SIGNAL)
    def configure(self, config: NotifyConfig) -> None:
        self._reconfigured = self._reconfigured or config != self._config
        self._config = config

    @workflow.run
    async def run(self, config: NotifyConfig) -> None:
        self._config = self._config or config
        for _ in range(RUNS_PER_HISTORY):
            await self._run_sender()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._config)

    async def _run_sender(self) -> None:
        assert self._config is not None
        self._reconfigured = False
        sender = workflow.start_activity(
            send_notifications,
            self._config,
            # The sender hands back after run_s; this bounds one that never does.
            start_to_close_timeout=timedelta(seconds=self._config.run_s * 2 + 60),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=SENDER_RETRY,
            # Never two senders at once: the next starts once this one has stopped.
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await workflow.wait_condition(lambda: sender.done() or self._reconfigured)
        if not sender.done():
            sender.cancel()  # new settings: the next sender runs with them
        try:
            await sender
        except ActivityError as err:
            if not isinstance(err.cause, CancelledError):
                workflow.logger.warning("notification sender ended with an error: %s", err.cause)
