"""SeatWorkflow on the time-skipping test server, shared by its tests: stand-in activities
registered under the names of contracts/seat.py's stubs, a started seat to drive, and the
fixtures that make one (``seat_env``, ``seat``: exposed to the tests by conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from channels.events import SeatContext
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
from tests.workflows.servers import time_skipping_env
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
    contexts: list[SeatContext] = field(default_factory=list)  # each poll's input context

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
        self.contexts.append(inp.context)
        self.polls_running += 1
        self.max_polls_running = max(self.max_polls_running, self.polls_running)
        try:
            while not self.lose_session.is_set():
                activity.heartbeat()
                await asyncio.sleep(0.02)  # a long poll in progress (real time)
            self.lose_session.clear()
            # the parser saw the call's leg A answer before the session was lost
            seen = inp.context.model_copy(update={"offhook": True, "seq": inp.context.seq + 1})
            return PollSeatResult(context=seen, signed_out=True)
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
async def seat_env() -> AsyncIterator[WorkflowEnvironment]:
    """One time-skipping test server for a module's seats."""
    environment = await time_skipping_env()
    yield environment
    await environment.shutdown()


@pytest.fixture
async def seat(seat_env: WorkflowEnvironment) -> AsyncIterator[Seat]:
    """A seat's SeatWorkflow, started on its own task queue, with its stand-in activities."""
    gateway = FakeGateway()
    queue = f"seats-{uuid.uuid4().hex[:8]}"
    activities = [gateway.sign_in_seat, gateway.sign_out_seat, gateway.poll_seat,
                  gateway.reconcile_seat]  # fmt: skip
    async with Worker(seat_env.client, task_queue=queue, workflows=[SeatWorkflow],
                      activities=activities):  # fmt: skip
        inp = SeatInput(channel="hw", seat="10001",
                        timers=SeatTimers(idle_s=IDLE_S, poll_run_s=3600))  # fmt: skip
        handle = await seat_env.client.start_workflow(
            SeatWorkflow.run, inp, id=seat_workflow_id("hw", f"10001-{queue}"), task_queue=queue
        )
        yield Seat(seat_env, gateway, handle)
        with contextlib.suppress(RPCError):  # ended already (signed out)
            await handle.terminate()
