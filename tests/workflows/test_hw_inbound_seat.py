"""SeatWorkflow and inbound calls: a call the vendor routed to the seat (its poll saw it ring)
holds the seat as a claim does, until released; one for a phone the seat is not signed in
with is not the seat's."""

from __future__ import annotations

from datetime import timedelta

from contracts.seat import INBOUND_CALL_SIGNAL, SeatClaim
from tests.workflows.seat_support import AGENT, IDLE_S, OTHER_AGENT, Seat, until


async def ring(seat: Seat, cc_call_id: str, phonenum: str = AGENT) -> None:
    await seat.handle.signal(
        INBOUND_CALL_SIGNAL, SeatClaim(cc_call_id=cc_call_id, phonenum=phonenum)
    )


async def test_an_inbound_call_holds_the_seat_until_it_is_released(seat: Seat) -> None:
    await seat.claim("c1")  # a callback signed the seat in
    await until(lambda: seat.gateway.polls_running == 1, "the seat's poll")
    await seat.release("c1")
    await ring(seat, "in1")
    await seat.env.sleep(timedelta(seconds=3 * IDLE_S))
    assert seat.gateway.sign_outs == 0 and seat.gateway.polls_running == 1
    assert seat.gateway.sign_ins == [AGENT]  # the same sign-in, the same poll
    await seat.release("in1")
    await seat.env.sleep(timedelta(seconds=IDLE_S + 1))
    await seat.handle.result()
    assert seat.gateway.sign_outs == 1 and seat.gateway.polls_started == 1


async def test_a_callback_s_late_release_does_not_free_an_inbound_call_s_seat(
    seat: Seat,
) -> None:
    await seat.claim("c1")
    await until(lambda: seat.gateway.polls_running == 1, "the seat's poll")
    await ring(seat, "in1")  # the callback freed the line, its release is on its way
    await seat.release("c1")
    await seat.env.sleep(timedelta(seconds=3 * IDLE_S))
    assert seat.gateway.sign_outs == 0


async def test_an_inbound_call_for_another_phone_is_not_the_seat_s(seat: Seat) -> None:
    await seat.claim("c1")
    await until(lambda: seat.gateway.polls_running == 1, "the seat's poll")
    await seat.release("c1")
    await ring(seat, "in1", OTHER_AGENT)
    await seat.env.sleep(timedelta(seconds=IDLE_S + 1))
    await seat.handle.result()
    assert seat.gateway.sign_ins == [AGENT] and seat.gateway.sign_outs == 1
