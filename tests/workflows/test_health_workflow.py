"""ChannelHealthWorkflow on a Temporal dev server, in real time with short probe rounds. The
circuit's timing is the pure ``callflow.circuit`` (tested on its own); here the workflow's
transitions are driven in order: the cool-down is an hour until the test shortens it (the
workflow's configure signal), so a circuit stays open exactly as long as the test needs to
look at it, whatever the machine's load. The activities are stand-ins recording what the
workflow asked for.

These tests ran on the time-skipping test server until issue 23: there the probe rounds (5 s)
also fell due in real time while the test signalled and queried, and under load completing a
workflow task then failed with "invalid history builder state" (1 run in 10 of this module).

Then the real activities' store side on every database: the lease reconciler (Temporal
stood in for by a fake client) and the webhook-silence count."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.health import HealthActivities
from callflow.circuit import Circuit, CircuitPolicy, CircuitState
from callflow.record import CallRecord, talk_seconds
from channels.events import CallEvent
from contracts.health import (
    HealthConfig,
    HealthInput,
    Observation,
    PlacementOutcome,
    ProbeInput,
    ReconcileLeasesInput,
    ReconcileLeasesResult,
    Verdict,
)
from contracts.ids import (
    HEALTH_CONFIGURE_SIGNAL,
    LAST_PROBE_ROUND_QUERY,
    PLACEMENT_SIGNAL,
    workflow_id,
)
from core.types import CallState, CloseType, EventKind
from store import channel_state, inbox, lines, reconciler
from store.db import now_ms, session_scope
from store.lines import ensure_line
from store.models import AgentLine, CallRecordRow
from store.tenants import ensure_tenant
from tests.support import wait_for
from tests.workflows.servers import dev_server_env
from workflows.health import ChannelHealthWorkflow

HOUR_MS = 3_600_000
CONFIG = HealthConfig(
    channels=["e9", "hw"],
    policy=CircuitPolicy(failures_to_open=3, cooldown_ms=HOUR_MS, successes_to_close=2),
    interval_s=0.2,
    reconcile_every_s=0.5,
)
WITHIN_S = 30  # how long a test waits for a transition the workflow owes it


@dataclass
class Written:
    at_ms: int  # when the workflow scheduled the write: after it decided the verdict
    verdict: Verdict


@dataclass
class Vendors:
    """What the stand-in activities report and what they were asked to write."""

    probe_ok: dict[str, bool] = field(default_factory=lambda: {"e9": True, "hw": True})
    silent: set[str] = field(default_factory=set)  # probe answers, webhooks silent
    unprobed: set[str] = field(default_factory=set)  # the probe says nothing of these
    history: list[Written] = field(default_factory=list)  # every verdict written, in order
    reconciles: int = 0

    def observation(self, channel: str) -> Observation:
        if self.probe_ok[channel] and channel in self.silent:
            reason = "webhooks silent: 1 calls waiting for events"
            return Observation(channel=channel, ok=False, silent=True, reason=reason)
        ok = self.probe_ok[channel]
        return Observation(channel=channel, ok=ok, reason=None if ok else "probe failed")

    @property
    def written(self) -> dict[str, Verdict]:
        """Each channel's last verdict written."""
        return {w.verdict.channel: w.verdict for w in self.history}

    def of(self, channel: str) -> list[Written]:
        return [w for w in self.history if w.verdict.channel == channel]

    def since_off(self, channel: str) -> list[Written]:
        """``channel``'s writes from the first that took it out of routing on."""
        writes = self.of(channel)
        off = next((i for i, w in enumerate(writes) if not w.verdict.healthy), len(writes))
        return writes[off:]

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="probe_channels")
        async def probe(inp: ProbeInput) -> list[Observation]:
            return [self.observation(c) for c in inp.channels if c not in self.unprobed]

        @activity.defn(name="write_routing")
        async def write(verdicts: list[Verdict]) -> None:
            at_ms = int(activity.info().current_attempt_scheduled_time.timestamp() * 1000)
            self.history.extend(Written(at_ms, v) for v in verdicts)

        @activity.defn(name="reconcile_leases")
        async def reconcile(inp: ReconcileLeasesInput) -> ReconcileLeasesResult:
            self.reconciles += 1
            return ReconcileLeasesResult()

        return [probe, write, reconcile]


@pytest.fixture(scope="module")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await dev_server_env()
    yield env
    await env.shutdown()


@contextlib.asynccontextmanager
async def running_health(
    env: WorkflowEnvironment, vendors: Vendors
) -> AsyncIterator[WorkflowHandle]:
    queue = f"health-{uuid.uuid4()}"
    activities = vendors.activities()
    async with Worker(
        env.client, task_queue=queue, workflows=[ChannelHealthWorkflow], activities=activities
    ):
        yield await env.client.start_workflow(
            ChannelHealthWorkflow.run,
            HealthInput(config=CONFIG),
            id=f"health-{uuid.uuid4()}",
            task_queue=queue,
        )


async def circuit(handle: WorkflowHandle, name: str) -> Circuit:
    circuits = await handle.query(ChannelHealthWorkflow.health)
    return circuits[name]


async def circuit_where(
    handle: WorkflowHandle, name: str, holds: Callable[[Circuit], bool], what: str
) -> Circuit:
    """Query ``name``'s circuit until ``holds`` is true of it."""

    async def probe() -> Circuit | None:
        found = await circuit(handle, name)
        return found if holds(found) else None

    return await wait_for(probe, WITHIN_S, f"{name} circuit {what}")


async def reaches(handle: WorkflowHandle, name: str, state: CircuitState) -> Circuit:
    return await circuit_where(handle, name, lambda c: c.state is state, str(state))


async def opened_after(handle: WorkflowHandle, name: str, after: int) -> Circuit:
    """``name``'s circuit once it was opened after ``after``, whatever its state then."""
    opened = await circuit_where(
        handle, name, lambda c: (c.opened_at or 0) > after, f"opened after {after}"
    )
    assert opened.opened_at is not None
    return opened


async def cool_down(handle: WorkflowHandle, ms: int) -> None:
    """Set the circuits' cool-down (the configure signal every worker sends at start-up)."""
    policy = CONFIG.policy.model_copy(update={"cooldown_ms": ms})
    await handle.signal(HEALTH_CONFIGURE_SIGNAL, CONFIG.model_copy(update={"policy": policy}))


async def probe_rounds_after(handle: WorkflowHandle, since_ms: int, rounds: int) -> None:
    """Wait until ``rounds`` probe rounds started after ``since_ms`` have been folded in."""
    last = since_ms
    for _ in range(rounds):

        async def newer(after: int = last) -> int | None:
            started: int = await handle.query(LAST_PROBE_ROUND_QUERY)
            return started if started > after else None

        last = await wait_for(newer, WITHIN_S, f"a probe round after {last}")


async def test_placement_failures_open_and_probes_close_after_the_cooldown(
    dev_env: WorkflowEnvironment,
) -> None:
    env, vendors = dev_env, Vendors()
    async with running_health(env, vendors) as handle:
        await wait_for(lambda: _async(len(vendors.written) == 2), WITHIN_S, "first verdicts")
        assert all(v.healthy for v in vendors.written.values())

        failure = PlacementOutcome(channel="e9", ok=False, reason="HTTP 500")
        await handle.signal(PLACEMENT_SIGNAL, failure)
        await handle.signal(PLACEMENT_SIGNAL, PlacementOutcome(channel="e9", ok=True))
        # A success resets; good probe rounds in between change nothing while closed.
        await handle.signal(PLACEMENT_SIGNAL, failure.model_copy(update={"tries": 4}))
        one_call = await circuit(handle, "e9")
        assert one_call.state is CircuitState.CLOSED  # one call never opens it alone
        await handle.signal(PLACEMENT_SIGNAL, failure)
        opened = await reaches(handle, "e9", CircuitState.OPEN)  # 2 (capped) + 1 in a row
        assert opened.failures == 3 and opened.reason == "placing calls fails: HTTP 500"
        assert opened.opened_at is not None
        await wait_for(lambda: _async(not vendors.written["e9"].healthy), WITHIN_S, "e9 off")
        assert vendors.written["hw"].healthy  # the other channel is untouched

        # Probes keep answering, but a probe does not outweigh refused calls.
        await probe_rounds_after(handle, opened.opened_at, 2)
        assert (await circuit(handle, "e9")).state is CircuitState.OPEN
        # The cool-down over: half-open, then two good probes close it.
        await cool_down(handle, 1_000)
        await reaches(handle, "e9", CircuitState.CLOSED)
        await wait_for(lambda: _async(vendors.written["e9"].healthy), WITHIN_S, "e9 written on")
        back = next(w for w in vendors.since_off("e9") if w.verdict.healthy)
        assert back.at_ms >= opened.opened_at + 1_000  # not routable again before the cool-down
        await wait_for(lambda: _async(vendors.reconciles >= 1), WITHIN_S, "a lease reconcile")

        history = await handle.fetch_history()
        await handle.terminate()
    replayer = Replayer(workflows=[ChannelHealthWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)


async def test_a_failing_trial_reopens_and_a_failing_probe_counts(
    dev_env: WorkflowEnvironment,
) -> None:
    env, vendors = dev_env, Vendors()
    async with running_health(env, vendors) as handle:
        vendors.probe_ok["hw"] = False  # hw's probe fails every round from now on
        opened = await reaches(handle, "hw", CircuitState.OPEN)
        assert opened.reason == "probe failed"
        vendors.probe_ok["hw"] = True
        await cool_down(handle, 1_000)
        await reaches(handle, "hw", CircuitState.CLOSED)  # half-open, then two good probes

        # e9's probe says nothing from now on: only calls decide its trial.
        vendors.unprobed.add("e9")
        for _ in range(3):
            await handle.signal(PLACEMENT_SIGNAL, PlacementOutcome(channel="e9", ok=False))
        first = await opened_after(handle, "e9", after=0)  # by three failures
        await reaches(handle, "e9", CircuitState.HALF_OPEN)  # after the 1 s cool-down
        # The first call on trial fails: straight back to open, the cool-down restarts.
        await handle.signal(PLACEMENT_SIGNAL, PlacementOutcome(channel="e9", ok=False))
        assert first.opened_at is not None
        await opened_after(handle, "e9", after=first.opened_at)  # reopened
        await handle.terminate()


async def test_a_channel_out_for_webhook_silence_comes_back_on_its_probes(
    dev_env: WorkflowEnvironment,
) -> None:
    """Issue 9: e9 left routing for one stuck call and, getting no traffic, stayed out until
    that call closed (an hour). Now the trial is decided by the probes: it closes, and only
    then does the silence (still there) count again."""
    env, vendors = dev_env, Vendors(silent={"e9"})
    async with running_health(env, vendors) as handle:
        opened = await reaches(handle, "e9", CircuitState.OPEN)
        assert opened.reason is not None and opened.reason.startswith("webhooks silent")

        def back_closed() -> bool:
            return any(
                w.verdict.healthy and w.verdict.reason is None for w in vendors.since_off("e9")
            )

        await cool_down(handle, 1_000)  # then two trial rounds whose probes answer
        await wait_for(lambda: _async(back_closed()), WITHIN_S, "e9 closed again after the trial")
        assert all(w.verdict.healthy for w in vendors.of("hw"))
        await handle.terminate()


async def _async(value: bool) -> bool:
    return value


# --- What the workflow's activities do with the store (issue 9) ----------------------------


class FakeHandle:
    def __init__(self, outcome: WorkflowExecutionStatus | Exception | asyncio.Barrier) -> None:
        self._outcome = outcome

    async def describe(self) -> SimpleNamespace:
        if isinstance(self._outcome, asyncio.Barrier):
            # Every describe waits for the others: only a concurrent reconciler gets through.
            await asyncio.wait_for(self._outcome.wait(), 5)
            return SimpleNamespace(status=WorkflowExecutionStatus.TERMINATED)
        if isinstance(self._outcome, Exception):
            raise self._outcome
        return SimpleNamespace(status=self._outcome)


class FakeTemporal:
    """Just what the reconciler asks of the client: each call's workflow status."""

    def __init__(
        self, outcomes: dict[str, WorkflowExecutionStatus | Exception | asyncio.Barrier]
    ) -> None:
        self._outcomes = {workflow_id(call): outcome for call, outcome in outcomes.items()}

    def get_workflow_handle(self, workflow: str) -> FakeHandle:
        return FakeHandle(self._outcomes[workflow])


def lease_stale(engine: Engine, cc_call_id: str, state: CallState = CallState.CONN) -> None:
    """A call on its own e9 line, leased long ago, its record left in ``state``."""
    long_ago = now_ms() - 3_600_000
    with session_scope(engine) as s:
        ensure_tenant(s, "t1")
        ensure_line(s, "t1", "e9", f"line-{cc_call_id}", "+861080000000")
        line = s.exec(select(AgentLine).where(AgentLine.agent == f"line-{cc_call_id}")).one()
        line.lease_call_id, line.lease_token, line.leased_at = cc_call_id, 1, long_ago
        s.add(line)
        s.add(CallRecordRow(
            tenant="t1", agent=line.agent, caller="+8613800000001", called="+8613900000002",
            channel="e9", display="passthrough", cc_call_id=cc_call_id,
            vendor_call_id=f"v-{cc_call_id}",
            state=state.value, a_call_time=long_ago, conn_time=long_ago + 10_000,
            ch_state="talking", created=long_ago, updated=long_ago,
        ))  # fmt: skip


def holder(engine: Engine, cc_call_id: str) -> str | None:
    with session_scope(engine) as s:
        line = s.exec(select(AgentLine).where(AgentLine.agent == f"line-{cc_call_id}")).one()
        return line.lease_call_id


async def reconcile(engine: Engine, temporal: FakeTemporal) -> list[str]:
    env = ActivityEnvironment(client=cast(Client, temporal))
    result = await env.run(HealthActivities({}, engine).reconcile_leases,
                           ReconcileLeasesInput(min_age_s=60))  # fmt: skip
    return sorted(result.freed)


async def test_one_lease_failing_to_describe_does_not_hold_the_others(db_engine: Engine) -> None:
    lease_stale(db_engine, "stale-1")
    lease_stale(db_engine, "stale-2")
    unavailable = RPCError("connection reset", RPCStatusCode.UNAVAILABLE, b"")
    temporal = FakeTemporal({"stale-1": unavailable, "stale-2": WorkflowExecutionStatus.TERMINATED})
    assert await reconcile(db_engine, temporal) == ["stale-2"]
    assert holder(db_engine, "stale-1") == "stale-1"  # kept for the next round
    assert holder(db_engine, "stale-2") is None


async def test_one_row_failing_in_the_store_does_not_hold_the_others(
    db_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease_stale(db_engine, "stale-1")
    lease_stale(db_engine, "stale-2")
    free = reconciler.free_orphaned_lease

    def free_or_fail(session: Session, lease: lines.HeldLease) -> bool:
        if lease.cc_call_id == "stale-1":
            raise OperationalError("UPDATE agent_line", {}, Exception("deadlock"))
        return free(session, lease)

    monkeypatch.setattr(reconciler, "free_orphaned_lease", free_or_fail)
    gone = WorkflowExecutionStatus.TERMINATED
    assert await reconcile(db_engine, FakeTemporal({"stale-1": gone, "stale-2": gone})) == [
        "stale-2"
    ]
    assert holder(db_engine, "stale-1") == "stale-1"


async def test_leases_are_described_concurrently(db_engine: Engine) -> None:
    calls = [f"stale-{i}" for i in range(3)]
    for call in calls:
        lease_stale(db_engine, call)
    barrier = asyncio.Barrier(len(calls))
    assert await reconcile(db_engine, FakeTemporal(dict.fromkeys(calls, barrier))) == calls


def test_the_reconciler_closes_a_record_through_the_state_machine(
    db_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease_stale(db_engine, "stale-1")
    applied: list[CallEvent] = []
    real_apply = reconciler.apply_event

    def spy(record: CallRecord, event: CallEvent) -> CallRecord:
        applied.append(event)
        return real_apply(record, event)

    monkeypatch.setattr(reconciler, "apply_event", spy)
    with session_scope(db_engine) as s:
        (lease,) = lines.held_leases(s)
        assert reconciler.free_orphaned_lease(s, lease)
    assert [(e.kind, e.close_type, e.dedupe_key) for e in applied] == [
        (EventKind.HANGUP, CloseType.OTHER, "cc:reconciler")
    ]
    with session_scope(db_engine) as s:
        row = s.exec(select(CallRecordRow).where(CallRecordRow.cc_call_id == "stale-1")).one()
        line = s.exec(select(AgentLine).where(AgentLine.agent == "line-stale-1")).one()
        assert (row.state, row.close_type, line.lease_call_id) == ("close", "255", None)
        assert row.close_time is not None and row.conn_time is not None
        assert row.duration == talk_seconds(row.conn_time, row.close_time) > 0
        assert (row.ch_state, row.vendor_call_id) == ("talking", "v-stale-1")  # the rest is kept


def test_silence_counts_only_calls_nothing_explains(db_engine: Engine) -> None:
    """Any inbox row of the call, a webhook or the set-up reconciliation's answer, explains
    it; the channel's other calls still count."""
    for call in ("quiet", "reconciled", "webhooked"):
        lease_stale(db_engine, call, CallState.INIT)
    lease_stale(db_engine, "talking", CallState.CONN)  # a long talk is quiet by nature
    with session_scope(db_engine) as s:
        for call, key in (("reconciled", "cc:setup-reconcile"), ("webhooked", "hook-1")):
            event = CallEvent(cc_call_id=call, kind=EventKind.A_DIALING, at=1, dedupe_key=key)
            inbox.store_event(s, "e9", event, b"{}", "application/json")
    later = now_ms() + 600_000  # ten minutes on: every row and event is older than the silence
    with session_scope(db_engine) as s:
        assert channel_state.silent_setups(s, "e9", 120_000, later) == 1
        assert channel_state.silent_setups(s, "e9", 120_000, now_ms()) == 0  # the channel spoke
        assert channel_state.silent_setups(s, "hw", 120_000, later) == 0


def waiting_since(engine: Engine, cc_call_id: str, ago_ms: int) -> None:
    """A scheduled call (no line) recorded ``ago_ms`` ago."""
    at = now_ms() - ago_ms
    with session_scope(engine) as s:
        ensure_tenant(s, "t1")
        s.add(CallRecordRow(
            tenant="t1", agent="", channel="", caller="+8613800000001", called="+8613900000002",
            display="passthrough", cc_call_id=cc_call_id, state=CallState.SCHEDULED.value,
            not_before=at + 86_400_000, wait_reason="not_before", created=at, updated=at,
        ))  # fmt: skip


def state_of(engine: Engine, cc_call_id: str) -> tuple[str, str | None]:
    with session_scope(engine) as s:
        row = s.exec(select(CallRecordRow).where(CallRecordRow.cc_call_id == cc_call_id)).one()
        return row.state, row.close_type


async def test_a_scheduled_call_whose_workflow_is_gone_is_closed(db_engine: Engine) -> None:
    """Issue 24: a scheduled call holds no line, so no lease would show it orphaned. One whose
    workflow was terminated, or never started (the API killed in between), is closed 255;
    a running one, or one too young for its workflow to have started, is left waiting."""
    waiting_since(db_engine, "gone", 3_600_000)
    waiting_since(db_engine, "never", 3_600_000)
    waiting_since(db_engine, "running", 3_600_000)
    waiting_since(db_engine, "young", 1_000)
    missing = RPCError("not found", RPCStatusCode.NOT_FOUND, b"")
    temporal = FakeTemporal({"gone": WorkflowExecutionStatus.TERMINATED, "never": missing,
                             "running": WorkflowExecutionStatus.RUNNING})  # fmt: skip
    env = ActivityEnvironment(client=cast(Client, temporal))
    result = await env.run(HealthActivities({}, db_engine).reconcile_leases,
                           ReconcileLeasesInput(min_age_s=60))  # fmt: skip
    assert sorted(result.closed_waiting) == ["gone", "never"]
    assert state_of(db_engine, "gone") == ("close", "255")
    assert state_of(db_engine, "never") == ("close", "255")
    assert state_of(db_engine, "running") == ("scheduled", None)
    assert state_of(db_engine, "young") == ("scheduled", None)
