"""InboxWorkflow: the one place that signals again inbox events whose signal failed.

However many API processes store webhooks, redelivery runs here, once (fixed id
``inbox-redelivery``): a round every ``every_s``; each event has its own back-off, recorded in
the inbox, so an event that keeps failing is tried less and less often and a signalled one
never again. Continue-as-new keeps the history short.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from contracts import activities
    from contracts.ids import INBOX_CONFIGURE_SIGNAL, INBOX_WORKFLOW
    from contracts.inbox import RedeliveryConfig

ROUNDS_PER_RUN = 200


@workflow.defn(name=INBOX_WORKFLOW)
class InboxWorkflow:
    def __init__(self) -> None:
        self._config: RedeliveryConfig | None = None

    @workflow.signal(name=INBOX_CONFIGURE_SIGNAL)
    def configure(self, config: RedeliveryConfig) -> None:
        self._config = config

    @workflow.run
    async def run(self, config: RedeliveryConfig) -> None:
        self._config = self._config or config
        for _ in range(ROUNDS_PER_RUN):
            try:
                await workflow.execute_activity(
                    activities.redeliver_inbox,
                    self._config,
                    start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=RetryPolicy(maximum_attempts=1),
                )
            except ActivityError:
                workflow.logger.warning("inbox redelivery round failed")
            await workflow.sleep(timedelta(seconds=self._config.every_s))
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._config)
