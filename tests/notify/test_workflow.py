"""NotificationWorkflow on the Temporal dev server (the tests' session server): it keeps the
sender running, the sender's deliveries survive a worker stopping (events enqueued meanwhile
are sent once a worker is back, in order), and new settings restart the sender."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.notify import NotifyActivities
from contracts.notify import NOTIFY_CONFIGURE_SIGNAL
from tests.notify.support import (
    EXPECTED,
    FAST,
    Receiver,
    deliveries,
    run_call,
    settings,
    sqlite_store,
    subscribe,
    view,
)
from tests.support import free_port, wait_for
from workflows.notify import NotificationWorkflow


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return sqlite_store(tmp_path)


class Workers:
    """Start and stop this test's worker (its own task queue) at will."""

    def __init__(self, client: Client, engine: Engine, task_queue: str) -> None:
        self.client, self.engine, self.task_queue = client, engine, task_queue
        self.executor = ThreadPoolExecutor(4)
        self.running: tuple[Worker, asyncio.Task[None]] | None = None

    def start(self) -> None:
        activities = NotifyActivities(self.engine, settings(), view)
        worker = Worker(self.client, task_queue=self.task_queue,
                        workflows=[NotificationWorkflow],
                        activities=[activities.send_notifications],
                        activity_executor=self.executor)  # fmt: skip
        self.running = worker, asyncio.create_task(worker.run())

    async def stop(self) -> None:
        if self.running is not None:
            worker, task = self.running
            await worker.shutdown()
            await asyncio.gather(task, return_exceptions=True)
            self.running = None


@pytest.fixture
async def workers(temporal_env: WorkflowEnvironment, engine: Engine) -> AsyncIterator[Workers]:
    running = Workers(temporal_env.client, engine, f"cc-notify-{uuid.uuid4().hex[:8]}")
    running.start()
    yield running
    await running.stop()
    running.executor.shutdown()


async def start(workers: Workers) -> WorkflowHandle[NotificationWorkflow, None]:
    config = FAST.model_copy(update={"task_queue": workers.task_queue})
    # Its own id: the session's e2e stack runs the real singleton on this very server.
    return await workers.client.start_workflow(
        NotificationWorkflow.run, config, id=f"notifications-{workers.task_queue}",
        task_queue=workers.task_queue,
    )  # fmt: skip


async def delivered(engine: Engine, count: int) -> bool:
    rows = deliveries(engine)
    return len(rows) == count and all(d.status == "delivered" for d in rows)


async def sender_restarted(handle: WorkflowHandle[NotificationWorkflow, None]) -> bool:
    """The running sender was cancelled and the next one scheduled."""
    kinds = [e.event_type async for e in handle.fetch_history_events()]
    if EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED not in kinds:
        return False
    after = kinds[kinds.index(EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED) :]
    return EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED in after


async def test_the_workflow_sends_and_survives_a_worker_restart(
    workers: Workers, engine: Engine
) -> None:
    receiver = Receiver(free_port()).start()
    handle = await start(workers)
    try:
        subscribe(engine, receiver.url)
        run_call(engine, "c1")
        await wait_for(lambda: delivered(engine, 5), 30, "c1's events delivered")
        await workers.stop()  # no worker: the sender stops with it
        run_call(engine, "c2")
        workers.start()  # Temporal runs the sender again on the new worker
        await wait_for(lambda: delivered(engine, 10), 60, "c2's events delivered")
        # New settings (a worker's start-up signal) restart the sender with them.
        changed = FAST.model_copy(update={"task_queue": workers.task_queue, "poll_s": 0.1})
        await handle.signal(NOTIFY_CONFIGURE_SIGNAL, changed)
        await wait_for(lambda: sender_restarted(handle), 30, "the sender restarted")
        run_call(engine, "c3")
        await wait_for(lambda: delivered(engine, 15), 30, "c3's events delivered")
    finally:
        receiver.stop()
        await handle.terminate("test over")
    for call in ("c1", "c2", "c3"):
        assert receiver.of_call(call) == EXPECTED
