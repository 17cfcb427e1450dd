"""ChannelHealthWorkflow on Temporal's time-skipping test server: the circuit's cool-down is
30 s of workflow time, skipped in milliseconds, so every transition is checked at a known
time. The activities are stand-ins recording what the workflow asked for."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from callflow.circuit import Circuit, CircuitPolicy, CircuitState
from tests.support import wait_for
from workflows.health import ChannelHealthWorkflow
from workflows.health_types import (
    PLACEMENT_SIGNAL,
    HealthConfig,
    HealthInput,
    Observation,
    PlacementOutcome,
    ProbeInput,
    ReconcileInput,
    ReconcileResult,
    Verdict,
)

CONFIG = HealthConfig(
    channels=["e9", "hw"],
    policy=CircuitPolicy(failures_to_open=3, cooldown_ms=30_000, successes_to_close=2),
    interval_s=5,
    reconcile_every_s=60,
)


@dataclass
class Vendors:
    """What the stand-in activities report and what they were asked to write."""

    probe_ok: dict[str, bool] = field(default_factory=lambda: {"e9": True, "hw": True})
    written: dict[str, Verdict] = field(default_factory=dict)
    reconciles: int = 0

    def activities(self) -> list[object]:
        @activity.defn(name="probe_channels")
        async def probe(inp: ProbeInput) -> list[Observation]:
            return [Observation(channel=c, ok=self.probe_ok[c],
                                reason=None if self.probe_ok[c] else "probe failed")
                    for c in inp.channels]  # fmt: skip

        @activity.defn(name="write_routing")
        async def write(verdicts: list[Verdict]) -> None:
            self.written.update({v.channel: v for v in verdicts})

        @activity.defn(name="reconcile_leases")
        async def reconcile(inp: ReconcileInput) -> ReconcileResult:
            self.reconciles += 1
            return ReconcileResult()

        return [probe, write, reconcile]


@pytest.fixture(scope="module")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    server = Path(sys.executable).parent / "temporal-test-server"
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(server), data_converter=pydantic_data_converter
    )
    yield env
    await env.shutdown()


@contextlib.asynccontextmanager
async def running_health(
    env: WorkflowEnvironment, vendors: Vendors
) -> AsyncIterator[WorkflowHandle]:
    queue = f"health-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[ChannelHealthWorkflow],
                      activities=vendors.activities()):  # fmt: skip
        yield await env.client.start_workflow(
            ChannelHealthWorkflow.run, HealthInput(config=CONFIG),
            id=f"health-{uuid.uuid4()}", task_queue=queue,
        )  # fmt: skip


async def circuit(handle: WorkflowHandle, name: str) -> Circuit:
    circuits = await handle.query(ChannelHealthWorkflow.health)
    return circuits[name]


async def reaches(handle: WorkflowHandle, name: str, state: CircuitState) -> Circuit:
    async def probe() -> Circuit | None:
        found = await circuit(handle, name)
        return found if found.state is state else None

    return await wait_for(probe, 20, f"{name} circuit {state}")


async def test_placement_failures_open_then_cooldown_and_probes_close(
    skipping_env: WorkflowEnvironment,
) -> None:
    env, vendors = skipping_env, Vendors()
    async with running_health(env, vendors) as handle:
        await wait_for(lambda: _async(len(vendors.written) == 2), 20, "first verdicts")
        assert all(v.healthy for v in vendors.written.values())

        failure = PlacementOutcome(channel="e9", ok=False, reason="HTTP 500")
        await handle.signal(PLACEMENT_SIGNAL, failure)
        await handle.signal(PLACEMENT_SIGNAL, PlacementOutcome(channel="e9", ok=True))
        assert (await circuit(handle, "e9")).state is CircuitState.CLOSED  # a success resets
        await handle.signal(PLACEMENT_SIGNAL, failure.model_copy(update={"tries": 4}))
        one_call = await circuit(handle, "e9")
        assert one_call.state is CircuitState.CLOSED  # one call never opens it alone
        await handle.signal(PLACEMENT_SIGNAL, failure)
        opened = await reaches(handle, "e9", CircuitState.OPEN)  # 2 (capped) + 1 in a row
        assert opened.failures == 3 and opened.reason == "placing calls fails: HTTP 500"
        await wait_for(lambda: _async(not vendors.written["e9"].healthy), 20, "e9 written off")
        assert vendors.written["hw"].healthy  # the other channel is untouched

        # Probes keep answering, but a probe does not outweigh refused calls.
        await env.sleep(timedelta(seconds=20))
        assert (await circuit(handle, "e9")).state is CircuitState.OPEN
        await env.sleep(timedelta(seconds=11))  # past the 30 s cool-down
        await reaches(handle, "e9", CircuitState.CLOSED)  # half-open, then two good probes
        await wait_for(lambda: _async(vendors.written["e9"].healthy), 20, "e9 written on")
        assert vendors.reconciles >= 1

        history = await handle.fetch_history()
        await handle.terminate()
    replayer = Replayer(workflows=[ChannelHealthWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)


async def test_a_failing_trial_reopens_and_a_failing_probe_counts(
    skipping_env: WorkflowEnvironment,
) -> None:
    env, vendors = skipping_env, Vendors()
    async with running_health(env, vendors) as handle:
        vendors.probe_ok["hw"] = False  # hw's probe fails every round from now on
        await env.sleep(timedelta(seconds=16))
        opened = await reaches(handle, "hw", CircuitState.OPEN)
        assert opened.reason == "probe failed"
        vendors.probe_ok["hw"] = True
        await env.sleep(timedelta(seconds=31))
        await reaches(handle, "hw", CircuitState.CLOSED)

        for _ in range(3):
            await handle.signal(PLACEMENT_SIGNAL, PlacementOutcome(channel="e9", ok=False))
        await reaches(handle, "e9", CircuitState.OPEN)
        await env.sleep(timedelta(seconds=30))
        # The first call on trial fails: straight back to open, cool-down restarts.
        await handle.signal(PLACEMENT_SIGNAL, PlacementOutcome(channel="e9", ok=False))
        reopened = await reaches(handle, "e9", CircuitState.OPEN)
        assert reopened.opened_at is not None and opened.opened_at is not None
        assert reopened.opened_at > opened.opened_at
        await handle.terminate()


async def _async(value: bool) -> bool:
    return value
