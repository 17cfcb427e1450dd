"""RetentionWorkflow: one sweep of what is kept past its retention (issue 21).

Started by the Temporal Schedule ``cc-retention`` (``worker.ensure_retention_schedule``, every
CC_RETENTION_EVERY_S, a run skipped while the last one still runs); each part is one
heartbeating activity that deletes in small batches. Operators see each run in the UI under the
schedule, with what it deleted as the run's details.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from contracts.retention import (
        RETENTION_WORKFLOW,
        PurgeOutcome,
        PurgePart,
        RetentionResult,
        purge_expired,
    )


def _details(outcomes: list[PurgeOutcome]) -> str:
    rows = [
        f"**{o.part.value}**: {o.calls} calls, {o.events} events, {o.recordings} recordings, "
        f"{o.sessions} sessions deleted in {o.batches} batches"
        for o in outcomes
    ]
    return "\n\n".join(rows) or "starting"


@workflow.defn(name=RETENTION_WORKFLOW)
class RetentionWorkflow:
    @workflow.run
    async def run(self) -> RetentionResult:
        outcomes: list[PurgeOutcome] = []
        for part in PurgePart:
            outcomes.append(
                await workflow.execute_activity(
                    purge_expired,
                    part,
                    start_to_close_timeout=timedelta(hours=6),
                    heartbeat_timeout=timedelta(seconds=60),
                    retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5)),
                    summary=f"purge {part.value}",
                )
            )
            workflow.set_current_details(_details(outcomes))
        return RetentionResult(parts=outcomes)
