"""SeatWorkflow on the time-skipping test server, with stand-in activities registered under
the names of contracts/seat.py's stubs: one poll loop per seat, sign-in with the claiming
call's agent phone, re-sign-in for another phone, sign-out after idle_s, recovery of a lost
session, and a refused sign-in failing the claim."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from contracts.seat import SEAT_UNAVAILABLE
from tests.workflows.seat_support import AGENT, IDLE_S, OTHER_AGENT, Seat, until


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
    # The call went on across the new session: the parser still knows leg A answered, so a
    # failure now is B's (chaos scenario 8, issue 19).
    assert seat.gateway.contexts[1].offhook and seat.gateway.contexts[1].seq == 1


async def test_a_refused_sign_in_fails_the_claim(seat: Seat) -> None:
    seat.gateway.refuse_sign_in = True
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await seat.claim("c1")
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == SEAT_UNAVAILABLE
    assert seat.gateway.polls_started == 0
