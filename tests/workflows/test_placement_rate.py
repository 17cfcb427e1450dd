"""A vendor's calls per second (issue 24): place requests go to the vendor's own task queue,
and Temporal's task-queue rate limit holds them to ``CC_<VENDOR>_CPS`` for all workers
together (a limit each worker kept on its own would let two workers place twice as fast).
On a real Temporal dev server: the rate limit is the matching service's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from channels.events import PlaceCallRequest
from contracts.call import PlaceCallInput, PlaceCallResult
from contracts.ids import placement_queue
from tests.workflows.servers import dev_server_env
from workflows import steps

CPS, CALLS = 5.0, 16


@workflow.defn(sandboxed=False)
class Burst:
    """A burst of place requests for one vendor, all at once, as many calls would send."""

    @workflow.run
    async def run(self, calls: int) -> None:
        requests = [
            PlaceCallInput(
                channel="jy",
                request=PlaceCallRequest(
                    cc_call_id=f"c{i}",
                    caller="+8613800000001",
                    called="+8613900000002",
                    display_to_a="+861088000001",
                    display_to_b="+861088000001",
                    agent="jy-1",
                    max_duration_s=60,
                ),  # fmt: skip
            )
            for i in range(calls)
        ]
        await asyncio.gather(*(steps.place_call(r, timedelta(minutes=2)) for r in requests))


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[WorkflowEnvironment]:
    env = await dev_server_env()
    yield env
    await env.shutdown()


async def test_two_workers_together_keep_the_vendor_s_calls_per_second(
    server: WorkflowEnvironment,
) -> None:
    started: list[float] = []

    @activity.defn(name="place_call")
    async def place_call(inp: PlaceCallInput) -> PlaceCallResult:
        # The server's moment of handing the task out (what its rate limit paces), not this
        # worker's: a loaded worker may begin tasks handed out apart at the same moment.
        started.append(activity.info().started_time.timestamp())
        return PlaceCallResult(vendor_call_id=f"V-{inp.request.cc_call_id}")

    queue = f"rate-{uuid.uuid4()}"
    placing = placement_queue(queue, "jy")
    # Two workers as two CC worker processes run them: each with its own connection.
    address = server.client.service_client.config.target_host
    second = await Client.connect(
        address, namespace=server.client.namespace, data_converter=server.client.data_converter
    )
    clients = [server.client, second]
    two = [
        Worker(client, task_queue=placing, activities=[place_call],
               max_task_queue_activities_per_second=CPS)
        for client in clients
    ]  # fmt: skip
    async with Worker(server.client, task_queue=queue, workflows=[Burst]), two[0], two[1]:
        await server.client.execute_workflow(
            Burst.run, CALLS, id=f"burst-{uuid.uuid4()}", task_queue=queue
        )

    started.sort()
    assert len(started) == CALLS
    # At CPS per second, with at most CPS taken at once after a quiet spell, eleven requests
    # need at least (11 - CPS) / CPS = 1.2 s: two workers each allowed CPS would need 0.6 s.
    window = int(2 * CPS) + 1
    spans = [started[i + window - 1] - started[i] for i in range(CALLS - window + 1)]
    assert min(spans) >= 1.0, spans
