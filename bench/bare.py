"""The engine's own ceiling: a bare workflow of a callback's irreducible shape.

Three activities (place the call, copy the recording, save the record once), all no-ops, and
one signal per vendor event, sent with the simulator's own timeline. ``bench/e2e.py`` runs it
on the same Temporal server as CC, in the same run: the worker is a process of its own
(``python -m bench.bare --address … --task-queue …``), and the bench process plays the vendor
(it starts the workflows and sends the signals), as the API and the simulator do for CC.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from simulators.scenario import Beat, Step

BARE_WORKFLOW = "BareCallWorkflow"
EVENT_SIGNAL = "vendor_event"


@activity.defn(name="bare_place")
async def bare_place(cc_call_id: str) -> str:
    return cc_call_id


@activity.defn(name="bare_copy_recording")
async def bare_copy_recording(cc_call_id: str) -> str:
    return cc_call_id


@activity.defn(name="bare_save")
async def bare_save(cc_call_id: str) -> None:
    return None


@workflow.defn(name=BARE_WORKFLOW)
class BareCallWorkflow:
    def __init__(self) -> None:
        self.events: list[str] = []

    @workflow.signal(name=EVENT_SIGNAL)
    def vendor_event(self, step: str) -> None:
        self.events.append(step)

    @workflow.run
    async def run(self, cc_call_id: str) -> int:
        quick = timedelta(seconds=30)
        await workflow.execute_activity(bare_place, cc_call_id, start_to_close_timeout=quick)
        await workflow.wait_condition(lambda: Step.HANGUP.value in self.events)
        await workflow.execute_activity(
            bare_copy_recording, cc_call_id, start_to_close_timeout=quick
        )
        await workflow.execute_activity(bare_save, cc_call_id, start_to_close_timeout=quick)
        return len(self.events)


async def one_call(client: Client, task_queue: str, beats: list[Beat]) -> float:
    """Start one bare call, play the vendor's beats as signals, wait for it to finish.
    Returns its seconds from start to finish."""
    began = time.monotonic()
    handle = await client.start_workflow(
        BARE_WORKFLOW,
        f"bare-{uuid.uuid4().hex}",
        id=f"bare-{uuid.uuid4().hex}",
        task_queue=task_queue,
    )
    for beat in beats:
        await asyncio.sleep(beat.after_ms / 1000)
        await handle.signal(EVENT_SIGNAL, beat.step.value)
    await handle.result()
    return time.monotonic() - began


async def run_load(
    client: Client,
    task_queue: str,
    beats: list[Beat],
    calls: int,
    concurrency: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[float, list[float]]:
    """``calls`` bare calls, at most ``concurrency`` at once: wall seconds, each call's time."""
    gate = asyncio.Semaphore(concurrency)
    done: list[float] = []

    async def guarded() -> None:
        async with gate:
            done.append(await one_call(client, task_queue, beats))
            if progress:
                progress(len(done))

    began = time.monotonic()
    await asyncio.gather(*(guarded() for _ in range(calls)))
    return time.monotonic() - began, done


async def serve(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[BareCallWorkflow],
        activities=[bare_place, bare_copy_recording, bare_save],
    )
    await worker.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", default="bare")
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.task_queue))
