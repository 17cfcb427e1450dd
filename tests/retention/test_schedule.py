"""The retention Schedule on a real dev server: created at worker start, idempotently (a
second worker start changes nothing; new settings update it; an operator's pause stays), and
each run sweeps every part in order, its outcome in the run's result."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import activity
from temporalio.client import ScheduleActionExecutionStartWorkflow, ScheduleActionStartWorkflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from channels.registry import Settings
from contracts.retention import PurgeOutcome, PurgePart, retention_schedule_id
from tests.support import wait_for
from worker import ensure_retention_schedule
from workflows.retention import RetentionWorkflow


@activity.defn(name="purge_expired")
async def fake_purge(part: PurgePart) -> PurgeOutcome:
    return PurgeOutcome(part=part, events=len(part.value), batches=1)


async def test_the_schedule_is_created_once_kept_current_and_runs_every_part(
    temporal_env: WorkflowEnvironment,
) -> None:
    client, queue = temporal_env.client, f"retention-{uuid.uuid4().hex[:8]}"
    settings = Settings(task_queue=queue, retention_every_s=3600, retention_days=30)
    schedule_id = retention_schedule_id(queue)
    handle = client.get_schedule_handle(schedule_id)

    await ensure_retention_schedule(client, settings)
    await ensure_retention_schedule(client, settings)  # a second worker: nothing changes
    first = await handle.describe()
    spec = first.schedule.spec.intervals
    assert [i.every for i in spec] == [timedelta(hours=1)]
    assert "CC_RETENTION_DAYS=30" in (first.schedule.state.note or "")
    action = first.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow) and action.task_queue == queue
    assert action.workflow == "RetentionWorkflow"

    await handle.pause(note="an operator looks into storage")
    await ensure_retention_schedule(client, settings.model_copy(update={"retention_every_s": 600}))
    updated = await handle.describe()
    assert [i.every for i in updated.schedule.spec.intervals] == [timedelta(minutes=10)]
    assert updated.schedule.state.paused  # the operator's pause stays

    async with Worker(
        client, task_queue=queue, workflows=[RetentionWorkflow], activities=[fake_purge]
    ):
        await handle.trigger()

        async def started() -> str | None:
            for recent in (await handle.describe()).info.recent_actions:
                if isinstance(recent.action, ScheduleActionExecutionStartWorkflow):
                    return recent.action.workflow_id
            return None

        run = client.get_workflow_handle_for(
            RetentionWorkflow.run, await wait_for(started, 30, "the triggered retention run")
        )
        result = await run.result()
        history = await run.fetch_history()
    assert [o.part for o in result.parts] == list(PurgePart)
    assert [o.events for o in result.parts] == [len(p.value) for p in PurgePart]
    await handle.delete()
    # Deterministic: its history replays (sealed, as the server holds it) on today's code.
    replayer = Replayer(workflows=[RetentionWorkflow], data_converter=client.data_converter)
    await replayer.replay_workflow(history)
