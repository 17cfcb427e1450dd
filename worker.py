"""The Temporal worker: runs CallWorkflow and its activities. ``python worker.py``."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities.channels import ChannelActivities
from activities.records import RecordActivities
from api.app import connect_temporal
from channels.registry import build_channels
from core.config import Settings, get_settings
from core.logs import setup_logging
from store.db import make_engine
from workflows.call import CallWorkflow


def build_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor) -> Worker:
    engine = make_engine(settings.database_url)
    channel_activities = ChannelActivities(build_channels(settings), engine)
    record_activities = RecordActivities(engine)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[CallWorkflow],
        activities=[
            channel_activities.place_call,
            channel_activities.hangup_call,
            channel_activities.follow_polled_call,
            record_activities.save_record,
            record_activities.release_line,
            record_activities.take_failover_line,
        ],
        activity_executor=executor,
    )


async def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    client = await connect_temporal(settings)
    with ThreadPoolExecutor(max_workers=32) as executor:
        worker = build_worker(client, settings, executor)
        logging.getLogger("cc.worker").info("worker polling task queue %s", settings.task_queue)
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
