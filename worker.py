"""The Temporal worker: runs CallWorkflow, LateEventsWorkflow, ChannelHealthWorkflow,
InboxWorkflow, SeatWorkflow, NotificationWorkflow, RetentionWorkflow and their activities.

``python worker.py``. At start-up it also makes sure the one ChannelHealthWorkflow, the one
InboxWorkflow and the one NotificationWorkflow run, with the current settings
(signal-with-start: started if absent, reconfigured if running), and that the retention
Schedule exists, with the current interval (created if absent, updated if it differs).
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.types import MethodAsyncSingleParam
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.channels import ChannelActivities
from activities.health import HealthActivities
from activities.inbox import InboxActivities
from activities.notify import NotifyActivities
from activities.recordings import RecordingActivities
from activities.records import RecordActivities
from activities.retention import RetentionActivities
from activities.seats import SeatActivities
from activities.series import SeriesActivities
from channels.registry import CHANNELS, Settings, build_channels, get_settings
from contracts.client import connect_temporal
from contracts.config import health_config, redelivery_config
from contracts.health import HealthInput
from contracts.ids import (
    HEALTH_CONFIGURE_SIGNAL,
    HEALTH_WORKFLOW_ID,
    INBOX_CONFIGURE_SIGNAL,
    INBOX_WORKFLOW_ID,
    NOTIFY_WORKFLOW_ID,
    placement_queue,
)
from contracts.notify import NOTIFY_CONFIGURE_SIGNAL, notify_config
from contracts.retention import retention_schedule_id
from core.logs import configure_logging
from storage import build_store
from store import retention
from store.db import in_session, make_engine
from store.quotas import Quotas
from store.seats import SqlSessions
from store.views import call_view_json
from workflows.call import CallWorkflow
from workflows.health import ChannelHealthWorkflow
from workflows.inbox import InboxWorkflow
from workflows.late import LateEventsWorkflow
from workflows.notify import NotificationWorkflow
from workflows.retention import RetentionWorkflow
from workflows.seat import SeatWorkflow

# The sandbox runs each workflow's module afresh for every workflow run. The workflows'
# helper modules (deterministic workflow code, no state of their own) are imported once and
# passed through instead: a call's workflow starts without re-running them. The workflow tests
# (tests/workflows) run them under the full sandbox, so its restrictions still hold for them.
# ``phonenumbers`` (the log redaction a workflow's log line runs through) is passed through
# too: its region data, loaded afresh in the sandbox, would make a ``threading.Lock`` there.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "workflows.steps",
        "workflows.placing",
        "workflows.closing",
        "workflows.host",
        "phonenumbers",
    )
)


class Workers:
    """CC's worker: the main task queue, and each vendor's placement queue
    (``contracts.ids.placement_queue``), held to the vendor's calls per second."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers

    async def run(self) -> None:
        await asyncio.gather(*(worker.run() for worker in self.workers))

    async def shutdown(self) -> None:
        await asyncio.gather(*(worker.shutdown() for worker in self.workers))


def placement_workers(
    client: Client, settings: Settings, place_call: Any, executor: ThreadPoolExecutor
) -> list[Worker]:
    """One worker per vendor on its placement queue, running only place requests; with
    ``CC_<VENDOR>_CPS`` set, the queue's rate limit (Temporal's, for all workers together)."""
    workers = []
    for name in CHANNELS:
        cps = float(getattr(settings, f"{name}_cps", 0.0))
        workers.append(
            Worker(
                client,
                task_queue=placement_queue(settings.task_queue, name),
                activities=[place_call],
                activity_executor=executor,
                max_task_queue_activities_per_second=cps or None,
            )
        )
    return workers


def build_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> Workers:
    engine = make_engine(settings.database_url)
    channels = build_channels(settings, SqlSessions(engine, settings.secret_key))
    channel_activities = ChannelActivities(channels, engine)
    record_activities = RecordActivities(engine, Quotas.defaults(settings))
    series_activities = SeriesActivities(engine, settings)
    health_activities = HealthActivities(channels, engine)
    recordings = build_store(settings)

    async def recording_deleted(cc_call_id: str) -> bool:
        return await in_session(engine, lambda s: retention.recording_deleted(s, cc_call_id))

    recording_activities = RecordingActivities(channels, recordings, recording_deleted)
    retention_activities = RetentionActivities(engine, recordings, settings)
    inbox_activities = InboxActivities(engine)
    seat_activities = SeatActivities(channels, engine, settings.secret_key, settings)
    notify_activities = NotifyActivities(engine, settings, call_view_json)
    main = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[
            CallWorkflow,
            LateEventsWorkflow,
            ChannelHealthWorkflow,
            InboxWorkflow,
            SeatWorkflow,
            NotificationWorkflow,
            RetentionWorkflow,
        ],
        activities=[
            channel_activities.place_call,
            channel_activities.hangup_call,
            channel_activities.reconcile_call,
            record_activities.save_record,
            record_activities.release_line,
            record_activities.take_failover_line,
            record_activities.take_due_line,
            series_activities.start_next_try,
            record_activities.apply_late_events,
            record_activities.note_recording,
            record_activities.placed_call_id,
            record_activities.unapplied_events,
            inbox_activities.redeliver_inbox,
            health_activities.probe_channels,
            health_activities.write_routing,
            health_activities.reconcile_leases,
            recording_activities.copy_recording,
            seat_activities.claim_seat,
            seat_activities.sign_in_seat,
            seat_activities.sign_out_seat,
            seat_activities.poll_seat,
            seat_activities.reconcile_seat,
            notify_activities.send_notifications,
            retention_activities.purge_expired,
        ],
        activity_executor=executor,
        workflow_runner=WORKFLOW_RUNNER,
        max_cached_workflows=settings.worker_max_cached_workflows,
    )
    places = placement_workers(client, settings, channel_activities.place_call, executor)
    return Workers([main, *places])


P = TypeVar("P")


async def _signal_with_start(
    client: Client,
    settings: Settings,
    run: MethodAsyncSingleParam[Any, P, None],
    arg: P,
    workflow_id: str,
    signal: str,
    config: object,
) -> None:
    """Start the singleton ``workflow_id`` with ``arg`` if absent, and signal it ``config``."""
    await client.start_workflow(
        run,
        arg,
        id=workflow_id,
        task_queue=settings.task_queue,
        start_signal=signal,
        start_signal_args=[config],
    )


async def ensure_health_workflow(client: Client, settings: Settings) -> None:
    config = health_config(settings, list(CHANNELS))
    await _signal_with_start(
        client,
        settings,
        ChannelHealthWorkflow.run,
        HealthInput(config=config),
        HEALTH_WORKFLOW_ID,
        HEALTH_CONFIGURE_SIGNAL,
        config,
    )


async def ensure_inbox_workflow(client: Client, settings: Settings) -> None:
    config = redelivery_config(settings)
    await _signal_with_start(
        client,
        settings,
        InboxWorkflow.run,
        config,
        INBOX_WORKFLOW_ID,
        INBOX_CONFIGURE_SIGNAL,
        config,
    )


async def ensure_notify_workflow(client: Client, settings: Settings) -> None:
    config = notify_config(settings)
    await _signal_with_start(
        client,
        settings,
        NotificationWorkflow.run,
        config,
        NOTIFY_WORKFLOW_ID,
        NOTIFY_CONFIGURE_SIGNAL,
        config,
    )


def retention_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RetentionWorkflow.run,
            id=retention_schedule_id(settings.task_queue),
            task_queue=settings.task_queue,
            static_summary="retention: purge raw vendor events, recordings and seat sessions",
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.retention_every_s))]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(
            note=f"CC_RETENTION_DAYS={settings.retention_days} (tenants may set their own)"
        ),
    )


async def ensure_retention_schedule(client: Client, settings: Settings) -> None:
    """The ``cc-retention`` Schedule: created if absent, else given the current settings (a
    paused schedule stays paused: an operator paused it)."""
    wanted, schedule_id = retention_schedule(settings), retention_schedule_id(settings.task_queue)
    try:
        await client.create_schedule(schedule_id, wanted)
        return
    except ScheduleAlreadyRunningError:
        pass

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate | None:
        schedule = current.description.schedule
        action = schedule.action
        if (
            schedule.spec.intervals == wanted.spec.intervals
            and schedule.state.note == wanted.state.note
            and isinstance(action, ScheduleActionStartWorkflow)
            and action.task_queue == settings.task_queue
        ):
            return None  # as it should be: no update
        wanted.state.paused = schedule.state.paused
        return ScheduleUpdate(schedule=wanted)

    await client.get_schedule_handle(schedule_id).update(update)


async def ensure_service_workflows(client: Client, settings: Settings) -> None:
    """The singletons every deployment runs: channel health, inbox redelivery, the
    notification sender, and the retention Schedule."""
    await ensure_health_workflow(client, settings)
    await ensure_inbox_workflow(client, settings)
    await ensure_notify_workflow(client, settings)
    await ensure_retention_schedule(client, settings)


async def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    if settings.worker_nice:
        os.nice(settings.worker_nice)
    client = await connect_temporal(settings)
    with ThreadPoolExecutor(max_workers=32) as executor:
        worker = build_worker(client, settings, executor)
        await ensure_service_workflows(client, settings)
        logging.getLogger("cc.worker").info("worker polling task queue %s", settings.task_queue)
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
