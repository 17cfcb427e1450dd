"""SeatWorkflow on the time-skipping test server, with stand-in activities registered under
the names of contracts/seat.py's stubs: one poll loop per seat, sign-in with the claiming
call's agent phone, re-sign-in for another phone, sign-out after idle_s, recovery of a lost
session, and a refused sign-in failing the claim."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.seat import (
    CLAIM_SEAT_UPDATE,
    RELEASE_SEAT_SIGNAL,
    SEAT_UNAVAILABLE,
    PollSeatInput,
    PollSeatResult,
    ReconcileSeatInput,
    SeatClaim,
    SeatInput,
    SeatTimers,
    SignInInput,
    SignOutInput,
    seat_workflow_id,
)
from workflows.seat import SeatWorkflow

IDLE_S = 2  # seconds: a running poll activity keeps the test server from skipping time
AGENT, OTHER_AGENT = "+8613800000001", "+8613800000002"


@dataclass
class FakeGateway:
    """What the stand-in activities were asked, and how they answer."""

    refuse_sign_in: bool = False
    lose_session: asyncio.Event = field(default_factory=asyncio.Event)
    sign_ins: list[str] = field(default_factory=list)  # phonenum of each sign-in
    sign_outs: int = 0
    polls_started: int = 0
    polls_running: int = 0
    max_polls_running: int = 0
    reconciled: list[str] = field(default_factory=list)

    @activity.defn(name="sign_in_seat")
    async def sign_in_seat(self, inp: SignInInput) -> None:
        if self.refuse_sign_in:
            raise ApplicationError("100-004 wrong password", type=SEAT_UNAVAILABLE,
                                   non_retryable=True)  # fmt: skip
        self.sign_ins.append(inp.phonenum)

    @activity.defn(name="sign_out_seat")
    async def sign_out_seat(self, inp: SignOutInput) -> None:
        self.sign_outs += 1

    @activity.defn(name="poll_seat")
    async def poll_seat(self, inp: PollSeatInput) -> PollSeatResult:
        self.polls_started += 1
        self.polls_running += 1
        self.max_polls_running = max(self.max_polls_running, self.polls_running)
        try:
            while not self.lose_session.is_set():
                activity.heartbeat()
                await asyncio.sleep(0.02)  # a long poll in progress (real time)
            self.lose_session.clear()
            return PollSeatResult(context=inp.context, signed_out=True)
        finally:
            self.polls_running -= 1

    @activity.defn(name="reconcile_seat")
    async def reconcile_seat(self, inp: ReconcileSeatInput) -> None:
        self.reconciled.append(inp.cc_call_id)


async def until(condition: Callable[[], bool], what: str) -> None:
    """The poll activity runs on the worker in real time: wait (bounded) until it shows."""

    async def reached() -> None:
        while not condition():  # noqa: ASYNC110 - another thread's state: polled is the probe
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(reached(), timeout=20)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@dataclass
class Seat:
    env: WorkflowEnvironment
    gateway: FakeGateway
    handle: WorkflowHandle[SeatWorkflow, None]

    async def claim(self, cc_call_id: str, phonenum: str = AGENT) -> None:
        await self.handle.execute_update(
            CLAIM_SEAT_UPDATE, SeatClaim(cc_call_id=cc_call_id, phonenum=phonenum)
        )

    async def release(self, cc_call_id: str) -> None:
        await self.handle.signal(RELEASE_SEAT_SIGNAL, cc_call_id)


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    server = Path(sys.executable).parent / "temporal-test-server"
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(server), data_converter=pydantic_data_converter
    )
    yield environment
    await environment.shutdown()


@pytest.fixture
async def seat(env: WorkflowEnvironment) -> AsyncIterator[Seat]:
    gateway = FakeGateway()
    queue = f"seats-{uuid.uuid4().hex[:8]}"
    activities = [gateway.sign_in_seat, gateway.sign_out_seat, gateway.poll_seat,
                  gateway.reconcile_seat]  # fmt: skip
    async with Worker(env.client, task_queue=queue, workflows=[SeatWorkflow],
                      activities=activities):  # fmt: skip
        inp = SeatInput(channel="hw", seat="10001",
                        timers=SeatTimers(idle_s=IDLE_S, poll_run_s=3600))  # fmt: skip
        handle = await env.client.start_workflow(
            SeatWorkflow.run, inp, id=seat_workflow_id("hw", f"10001-{queue}"), task_queue=queue
        )
        yield Seat(env, gateway, handle)
        with contextlib.suppress(RPCError):  # ended already (signed out)
            await handle.terminate()


async def test_a_claim_signs_the_seat_in_with_the_agents_phone_and_polls_it(seat: Seat) -> None:
    await seat.claim("c1")
    assert seat.gateway.sign_ins == [AGENT]
    await until(lambda: seat.gateway.polls_running == 1, "the seat's poll")


async def test_calls_in_a_row_for_one_agent_share_one_sign_in_and_one_poll(seat: Seat) -> None:
    await seat.claim("c1")
    await seat.release("c1")
    await seat.claim("c2")
    await seat.release("c2")
    await seat.claim("c3")
    await until(lambda: seat.gateway.polls_running == 1, "the seat's poll")
    assert seat.gateway.sign_ins == [AGENT]
    assert seat.gateway.polls_started == 1
    assert seat.gateway.max_polls_running == 1


async def test_a_call_for_another_agent_phone_signs_the_seat_in_again(seat: Seat) -> None:
    await seat.claim("c1")
    await seat.release("c1")
    await seat.claim("c2", OTHER_AGENT)
    await until(lambda: seat.gateway.polls_started == 2, "the second poll")
    assert seat.gateway.sign_ins == [AGENT, OTHER_AGENT]
    assert seat.gateway.max_polls_running == 1  # the first poll ended before the second


async def test_an_idle_seat_is_signed_out_and_its_workflow_ends(seat: Seat) -> None:
    await seat.claim("c1")
    await until(lambda: seat.gateway.polls_running == 1, "the seat's poll")
    await seat.release("c1")
    await seat.env.sleep(timedelta(seconds=IDLE_S + 1))
    await seat.handle.result()
    assert seat.gateway.sign_outs == 1
    assert seat.gateway.polls_running == 0


async def test_a_seat_with_a_call_is_never_signed_out(seat: Seat) -> None:
    await seat.claim("c1")
    await until(lambda: seat.gateway.polls_running == 1, "the seat's poll")
    await seat.env.sleep(timedelta(seconds=3 * IDLE_S))
    assert seat.gateway.sign_outs == 0
    assert seat.gateway.polls_running == 1


async def test_a_lost_session_is_signed_in_again_and_its_call_reconciled(seat: Seat) -> None:
    await seat.claim("c1")
    await until(lambda: seat.gateway.polls_running == 1, "the seat's poll")
    seat.gateway.lose_session.set()
    await until(lambda: bool(seat.gateway.reconciled) and seat.gateway.polls_running == 1,
                "the seat signed in and polled again")  # fmt: skip
    assert seat.gateway.sign_ins == [AGENT, AGENT]
    assert seat.gateway.reconciled == ["c1"]
    assert seat.gateway.polls_started == 2


async def test_a_refused_sign_in_fails_the_claim(seat: Seat) -> None:
    seat.gateway.refuse_sign_in = True
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await seat.claim("c1")
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == SEAT_UNAVAILABLE
    assert seat.gateway.polls_started == 0
