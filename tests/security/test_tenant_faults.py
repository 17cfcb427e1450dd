"""Issue 20 row 8: one tenant's fault stays its own. A seat the CC-Gateway refuses for itself
(``100-004`` wrong password) takes that line out of service, with its reason, and refuses the
call once, in plain words; it never counts against hw's circuit, so every other tenant's hw
calls go on being placed. A failure of the gateway itself (HTTP 500) still counts.

Everything but the call record's store runs for real: CallWorkflow, SeatWorkflow and
ChannelHealthWorkflow on a Temporal dev server, the seat, placing and health
activities, the hw adapter on the CC-Gateway simulator, and the lines in a SQLite store.

Before the change two wrong-password calls of one tenant opened hw's circuit (each call's
refused seat was retried as a vendor error and reported to health: 2 + 2 failures), taking
hw out of routing for every tenant, and the call's attempt read ``SeatUnavailable:
SeatUnavailable: SeatUnavailable: 100-004...``."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.channels import ChannelActivities
from activities.health import HealthActivities
from activities.seats import SeatActivities
from callflow.circuit import Circuit, CircuitPolicy, CircuitState
from callflow.record import CallRecord
from channels.hw import HwChannel
from contracts.call import Attempt, CallInput, CallTimers, LineLease, Routing
from contracts.health import HealthConfig, HealthInput
from contracts.ids import HEALTH_WORKFLOW_ID, workflow_id
from contracts.seat import SeatTimers, seat_workflow_id
from core.secrets import seal
from core.types import ChannelMode, CloseType, DisplayPolicy
from store import channel_state
from store.db import make_engine, session_scope
from store.lines import ensure_line, find_line, lease_agent_line, lease_line, lease_of
from store.migrate import upgrade
from store.routing import NoChannel, RouteRequest, choose_line
from store.seats import SqlSessions
from store.tenants import ensure_tenant
from tests.simulators.hw_support import BASE, PASSWORD, hw_simulator
from tests.workflows.fakes import FakeVendor, call_workers
from tests.workflows.seat_support import until
from tests.workflows.servers import dev_server_env
from workflows.call import CallWorkflow
from workflows.health import ChannelHealthWorkflow
from workflows.seat import SeatWorkflow

KEY = Fernet.generate_key().decode()
TENANT, OTHER = "tenant-wrong", "tenant-other"
WRONG_SEAT = "10001"  # TENANT's only hw line: its seat password is wrong
OTHER_SEATS = ("10002", "10003")  # OTHER's: the channel's default password, the right one
PHONE, B = "+8613800000001", "+8613900000002"
POLICY = CircuitPolicy(failures_to_open=3, cooldown_ms=3_600_000, successes_to_close=1)
# CallWorkflow's own record activities stand in (the fakes): the rest is real.
FAKED = {"save_record", "release_line", "take_failover_line", "copy_recording",
         "apply_late_events", "note_recording", "placed_call_id"}  # fmt: skip
TIMERS = CallTimers(late_event_window_s=1, place_deadline_s=600, setup_silence_s=60,
                    watchdog_grace_s=60)  # fmt: skip


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A Temporal dev server of this module's own (its health workflow has the one id the
    service uses). Not the time-skipping test server: its update-with-start now and then
    never completed the seat's workflow task when a claim met the seat's idle timer, so the
    second call's claim hung (1 run in 3)."""
    environment = await dev_server_env()
    yield environment
    await environment.shutdown()


def seeded_store(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'cc.db'}"
    upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as s:
        ensure_tenant(s, TENANT)
        ensure_tenant(s, OTHER)
        wrong = ensure_line(s, TENANT, "hw", WRONG_SEAT, "+861088000001")
        wrong.secret = seal("not-the-seat-password", KEY)
        for i, seat in enumerate(OTHER_SEATS):
            ensure_line(s, OTHER, "hw", seat, f"+86108800010{i}")
    return engine


@dataclass
class Rig:
    env: WorkflowEnvironment
    engine: Engine
    gateway: httpx.AsyncClient  # the CC-Gateway simulator's control API
    vendor: FakeVendor
    queue: str
    health: WorkflowHandle[ChannelHealthWorkflow, None]
    started: list[str] = field(default_factory=list)  # workflow ids, terminated at the end

    async def call(self, tenant: str, seat: str) -> WorkflowHandle[CallWorkflow, CallRecord]:
        """A callback of ``tenant`` on its hw line ``seat``, leased as the API leases it."""
        cc_call_id = uuid.uuid4().hex[:20]
        with session_scope(self.engine) as s:
            line = lease_agent_line(s, tenant, "hw", seat, cc_call_id)
            assert line is not None, f"line {seat} not leasable"
            lease = lease_of(line)
        return await self.start(tenant, cc_call_id, lease)

    async def start(
        self, tenant: str, cc_call_id: str, lease: LineLease
    ) -> WorkflowHandle[CallWorkflow, CallRecord]:
        now = int((await self.env.get_current_time()).timestamp() * 1000)
        record = CallRecord(cc_call_id=cc_call_id, tenant=tenant, channel="hw",
                            agent=lease.agent, caller=PHONE, called=B,
                            display=DisplayPolicy.PLATFORM, created=now)  # fmt: skip
        inp = CallInput(record=record, line=lease, max_duration_s=60, record_audio=False,
                        routing=Routing(modes={"hw": ChannelMode.POLL}), timers=TIMERS,
                        seat=SeatTimers(idle_s=2, poll_run_s=3600))  # fmt: skip
        self.started += [workflow_id(cc_call_id), seat_workflow_id("hw", lease.agent)]
        return await self.env.client.start_workflow(
            CallWorkflow.run, inp, id=workflow_id(cc_call_id), task_queue=self.queue
        )

    async def circuit(self) -> Circuit:
        return (await self.health.query(ChannelHealthWorkflow.health))["hw"]

    async def settled(self) -> Circuit:
        """hw's circuit once health has folded every outcome told so far: after a probe round
        that started now (outcomes are folded before each round)."""
        since = int((await self.env.get_current_time()).timestamp() * 1000)

        async def round_done() -> bool:
            return await self.health.query(ChannelHealthWorkflow.last_probe_round) >= since

        for _ in range(100):
            if await round_done():
                return await self.circuit()
            await self.env.sleep(timedelta(seconds=1))  # lets the next round's timer fire
        raise AssertionError("no probe round came")

    def attempts(self, cc_call_id: str) -> list[Attempt]:
        """The call's attempts as its last save wrote them."""
        saves = [save for save in self.vendor.saves if save.record.cc_call_id == cc_call_id]
        return saves[-1].attempts

    def out_of_service(self, seat: str) -> str | None:
        with session_scope(self.engine) as s:
            line = find_line(s, "hw", seat)
            assert line is not None
            return line.out_of_service


@contextlib.asynccontextmanager
async def rig(env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Rig]:
    engine = seeded_store(tmp_path)
    queue = f"tenant-faults-{uuid.uuid4().hex[:8]}"
    async with hw_simulator() as (gateway, transport):
        await gateway.put("/_sim/gateway", json={"poll_hold_ms": 200})
        hw = HwChannel(BASE, PASSWORD, SqlSessions(engine, KEY), transport=transport)
        channels = {"hw": hw}
        seats = SeatActivities(channels, engine, KEY)
        placing = ChannelActivities(channels, engine)
        health = HealthActivities(channels, engine)
        vendor = FakeVendor()
        vendor.clock = lambda: _server_ms(env)
        activities = [a for a in vendor.activities() if a.__name__ in FAKED] + [
            placing.place_call, placing.hangup_call, placing.reconcile_call,
            seats.claim_seat, seats.sign_in_seat, seats.sign_out_seat, seats.poll_seat,
            seats.reconcile_seat,
            health.probe_channels, health.write_routing, health.reconcile_leases,
        ]  # fmt: skip
        config = HealthConfig(channels=["hw"], policy=POLICY, interval_s=1.0)
        with ThreadPoolExecutor(8) as executor:
            async with call_workers(env.client, queue, activities=activities,
                              workflows=[CallWorkflow, SeatWorkflow, ChannelHealthWorkflow],
                              activity_executor=executor):  # fmt: skip
                handle = await env.client.start_workflow(
                    ChannelHealthWorkflow.run, HealthInput(config=config),
                    id=HEALTH_WORKFLOW_ID, task_queue=queue,
                )  # fmt: skip
                the_rig = Rig(env, engine, gateway, vendor, queue, handle)
                try:
                    yield the_rig
                finally:
                    for wf in {*the_rig.started, HEALTH_WORKFLOW_ID}:
                        with contextlib.suppress(RPCError):
                            await env.client.get_workflow_handle(wf).terminate()
        await hw.aclose()
    engine.dispose()


async def _server_ms(env: WorkflowEnvironment) -> int:
    return int((await env.get_current_time()).timestamp() * 1000)


async def test_a_wrong_seat_password_takes_only_its_line_out_of_service(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with rig(env, tmp_path) as r:
        first = await (await r.call(TENANT, WRONG_SEAT)).result()
        # A call that took the line before it went out of service (as every call did before
        # the change): its seat is refused from the store, the gateway is not asked again.
        with session_scope(r.engine) as s:
            assert lease_agent_line(s, TENANT, "hw", WRONG_SEAT, "next") is None
        held = LineLease(channel="hw", agent=WRONG_SEAT, number="+861088000001", token=9)
        second = await (await r.start(TENANT, uuid.uuid4().hex[:20], held)).result()
        sign_ins = (await r.gateway.get("/_sim/log")).json()["requests"]

        # hw's circuit stays closed: no failure counted (before: 2 per call, open after two).
        circuit = await r.settled()
        assert circuit.state is CircuitState.CLOSED and circuit.failures == 0, circuit
        sign_ins = [q for q in sign_ins if q["path"].endswith(f"/onlineagent/{WRONG_SEAT}")]

        # The tenant is told, once, in plain words: the call and the line say why.
        for record in (first, second):
            assert record.close_type is CloseType.OTHER  # not a channel error (6)
            assert record.vendor_call_id is None
            attempts = r.attempts(record.cc_call_id)
            assert [(a.outcome, a.tries) for a in attempts] == [("rejected", 1)]
            error = attempts[0].error or ""
            assert error.startswith("SeatUnavailable: line hw 10001 is out of service: "), error
            assert "SeatUnavailable" not in error.removeprefix("SeatUnavailable"), error
            assert "100-004" in error and "password" in error, error
        reason = r.out_of_service(WRONG_SEAT)
        assert reason is not None and "100-004" in reason and "password" in reason
        assert len(sign_ins) == 1  # refused once: a locked seat account helps nobody

        # hw stays in routing for every tenant.
        with session_scope(r.engine) as s:
            assert channel_state.routable(channel_state.state_of(s, "hw"))
            assert lease_line(s, TENANT, "hw", "next-call") is None  # its line only is out
            route = choose_line(s, RouteRequest(tenant=OTHER, cc_call_id="other-1",
                                                priority=["hw"], channel="hw"))  # fmt: skip
            assert route.line.agent in OTHER_SEATS
            lease = lease_of(route.line)

        # ... and another tenant's hw call is placed, and runs to its end.
        other = await (await r.start(OTHER, "other-1", lease)).result()
        assert other.vendor_call_id is not None and other.close_type is CloseType.NORMAL
        assert r.out_of_service(lease.agent) is None
        assert (await r.circuit()).state is CircuitState.CLOSED


async def test_only_the_gateway_failing_counts_toward_the_circuit(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """A tenant's refused seat counts nothing; the gateway answering 500 to callouts is hw
    failing and counts as ever: one such call alone leaves the circuit closed with its two
    failures (a call never opens a closed circuit alone), the next opens it and takes hw out
    of routing. No line goes out of service for the gateway's failure."""
    async with rig(env, tmp_path) as r:
        refused = await (await r.call(TENANT, WRONG_SEAT)).result()
        assert refused.close_type is CloseType.OTHER
        await r.gateway.put("/_sim/faults", json={"place_call": "http_500"})
        failed = await (await r.call(OTHER, OTHER_SEATS[0])).result()
        assert failed.close_type is CloseType.CHANNEL_SERVER_ERROR
        circuit = await r.settled()
        assert circuit.state is CircuitState.CLOSED and circuit.failures == 2, circuit
        assert "HTTP 500" in (circuit.reason or "")

        failed = await (await r.call(OTHER, OTHER_SEATS[1])).result()
        assert failed.close_type is CloseType.CHANNEL_SERVER_ERROR
        circuit = await r.settled()
        assert circuit.state is CircuitState.OPEN and "HTTP 500" in (circuit.reason or "")
        assert [r.out_of_service(seat) for seat in OTHER_SEATS] == [None, None]

        def routed_off() -> bool:
            with session_scope(r.engine) as s:
                return not channel_state.routable(channel_state.state_of(s, "hw"))

        await until(routed_off, "hw taken out of routing")
        with session_scope(r.engine) as s, pytest.raises(NoChannel):
            choose_line(s, RouteRequest(tenant=OTHER, cc_call_id="after", priority=["hw"],
                                        channel="hw"))  # fmt: skip
