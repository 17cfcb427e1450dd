"""SeatWorkflow: the seed's Scheduled Task, made durable. One per seat of a polled channel
(id ``seat-<channel>-<seat>``), so exactly one long-poll loop runs per signed-in seat, on
whichever worker, across worker restarts.

A call claims the seat (an update, with-start) before it is placed: the workflow signs the
seat in with the call's agent phone (again, if it was signed in with another) and answers
once the seat is polled. An inbound call the vendor routed to the seat (the poll saw it
ring) holds the seat as a claim would, from its signal on. Polling never stops while the
seat is signed in (the poll is the gateway's heartbeat); each polled event takes the webhook
path, inbox then signal (the activity). The call's end releases the seat (a signal); after
``idle_s`` without a call the seat is signed out and the workflow ends. A lost session
(100-006, a gateway failover) is signed in again and the in-flight call reconciled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from channels.events import SeatContext
    from contracts import seat as contract
    from contracts.seat import (
        CLAIM_SEAT_UPDATE,
        INBOUND_CALL_SIGNAL,
        RELEASE_SEAT_SIGNAL,
        SEAT_UNAVAILABLE,
        SEAT_WORKFLOW,
        PollSeatInput,
        PollSeatResult,
        ReconcileSeatInput,
        SeatClaim,
        SeatInput,
        SignInInput,
        SignOutInput,
    )

LOOPS_PER_RUN = 100
SIGN_IN_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=3,
    non_retryable_error_types=[SEAT_UNAVAILABLE],
)
STORE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)
QUICK = timedelta(seconds=30)


@workflow.defn(name=SEAT_WORKFLOW)
class SeatWorkflow:
    @workflow.init
    def __init__(self, inp: SeatInput) -> None:
        self._inp = inp
        self._current: SeatClaim | None = inp.current
        self._phone: str | None = inp.signed_in_phone  # signed in with it; None: signed out
        self._context = inp.context
        self._idle_since_ms = inp.idle_since_ms
        self._unstored = inp.unstored  # polled events the store could not take yet
        self._polling = False
        self._refused: dict[str, str] = {}  # cc_call_id -> why its claim failed
        self._wake = False

    @workflow.update(name=CLAIM_SEAT_UPDATE)
    async def claim(self, claim: SeatClaim) -> None:
        """Answers once the seat is signed in with ``claim.phonenum`` and polled."""
        self._current, self._idle_since_ms, self._wake = claim, None, True
        await workflow.wait_condition(
            lambda: claim.cc_call_id in self._refused or self._serves(claim)
        )
        if claim.cc_call_id in self._refused:
            reason = self._refused.pop(claim.cc_call_id)
            raise ApplicationError(reason, type=SEAT_UNAVAILABLE, non_retryable=True)

    @workflow.signal(name=RELEASE_SEAT_SIGNAL)
    def release(self, cc_call_id: str) -> None:
        if self._current is not None and self._current.cc_call_id == cc_call_id:
            self._current, self._idle_since_ms, self._wake = None, self._now_ms(), True

    @workflow.signal(name=INBOUND_CALL_SIGNAL)
    def inbound_call(self, claim: SeatClaim) -> None:
        """An inbound call rings the seat's phone: it holds the seat until released. It took
        the seat's line, so no other call does now (a claim not yet released is one whose call
        freed the line already). One for another phone came before a sign-in: not ours."""
        if self._phone is not None and claim.phonenum == self._phone:
            self._current, self._idle_since_ms, self._wake = claim, None, True

    def _serves(self, claim: SeatClaim) -> bool:
        return self._current == claim and self._phone == claim.phonenum and self._polling

    @workflow.run
    async def run(self, inp: SeatInput) -> None:
        if self._current is None and self._idle_since_ms is None:
            self._idle_since_ms = self._now_ms()
        for _ in range(LOOPS_PER_RUN):
            if self._idle_expired():
                await self._sign_out()
                if self._current is None:
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    return
            if self._current is not None and self._phone != self._current.phonenum:
                await self._sign_in(self._current)
            if self._phone is None:
                await self._wait_for_claim()
                continue
            await self._poll_until_needed()
            if workflow.info().is_continue_as_new_suggested():
                break
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._carried())

    def _carried(self) -> SeatInput:
        return self._inp.model_copy(
            update={
                "current": self._current,
                "signed_in_phone": self._phone,
                "context": self._context,
                "idle_since_ms": self._idle_since_ms,
                "unstored": self._unstored,
            }
        )

    def _now_ms(self) -> int:
        return int(workflow.now().timestamp() * 1000)

    def _idle_deadline_ms(self) -> int | None:
        if self._current is not None or self._idle_since_ms is None:
            return None
        return self._idle_since_ms + int(self._inp.timers.idle_s * 1000)

    def _idle_expired(self) -> bool:
        deadline = self._idle_deadline_ms()
        return deadline is not None and self._now_ms() >= deadline

    async def _sign_in(self, claim: SeatClaim, keep_context: bool = False) -> None:
        """Sign the seat in for ``claim``; ``keep_context``: its call goes on across the new
        session (a lost session's recovery), so the parser's memory of it stays."""
        self._polling = False
        try:
            await workflow.execute_activity(
                contract.sign_in_seat,
                SignInInput(
                    channel=self._inp.channel, seat=self._inp.seat, phonenum=claim.phonenum
                ),
                start_to_close_timeout=QUICK,
                retry_policy=SIGN_IN_RETRY,
            )
        except ActivityError as err:
            workflow.logger.warning("seat %s not signed in: %s", self._inp.seat, err.cause)
            self._refused[claim.cc_call_id] = str(err.cause or err)[:300]
            if self._current == claim:
                self._current, self._idle_since_ms = None, self._now_ms()
            return
        self._phone = claim.phonenum
        if not keep_context:
            self._context = SeatContext()

    async def _sign_out(self) -> None:
        self._polling = False
        if self._phone is not None:
            # The gateway signs out a seat 120 s after its last poll anyway.
            await self._best_effort(
                contract.sign_out_seat,
                SignOutInput(channel=self._inp.channel, seat=self._inp.seat),
                "sign-out",
            )
        self._phone = None

    async def _wait_for_claim(self) -> None:
        deadline = self._idle_deadline_ms()
        self._wake = False
        timeout = None if deadline is None else max(0, deadline - self._now_ms())
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._wake,
                timeout=None if timeout is None else timedelta(milliseconds=timeout),
            )

    async def _poll_until_needed(self) -> None:
        """One poll activity, until it ends, a claim needs another phone, or idle time is up."""
        assert self._phone is not None
        run_s = self._inp.timers.poll_run_s
        poll = workflow.start_activity(
            contract.poll_seat,
            PollSeatInput(
                channel=self._inp.channel,
                seat=self._inp.seat,
                phonenum=self._phone,
                run_s=run_s,
                context=self._context,
                unstored=self._unstored,
            ),
            start_to_close_timeout=timedelta(seconds=run_s + 60),
            heartbeat_timeout=contract.POLL_HEARTBEAT_TIMEOUT,
            retry_policy=contract.POLL_RETRY,
            # A cancelled poll must have stopped before the next request for the seat (a
            # second poll in flight is refused, 000-007; a sign-out must not race it).
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        self._polling = True
        while not poll.done():
            self._wake = False
            deadline = self._idle_deadline_ms()
            timeout = None if deadline is None else max(0, deadline - self._now_ms())
            try:
                await workflow.wait_condition(
                    lambda: poll.done() or self._wake,
                    timeout=None if timeout is None else timedelta(milliseconds=timeout),
                )
            except TimeoutError:
                break  # idle: sign out
            if self._current is not None and self._current.phonenum != self._phone:
                break  # a call for another agent phone: sign in again first
        self._polling = False
        if not poll.done():
            poll.cancel()
        await self._poll_ended(poll)

    async def _poll_ended(self, poll: asyncio.Task[PollSeatResult]) -> None:
        try:
            result = await poll
        except (ActivityError, asyncio.CancelledError):
            return
        self._context, self._unstored = result.context, result.unstored
        if result.signed_out:
            await self._recover_session()

    async def _recover_session(self) -> None:
        """The gateway lost the seat's session: sign in again, then ask what became of the
        call the seat was on (it may have ended while nobody polled)."""
        claim = self._current
        self._phone = None
        if claim is None:
            return
        await self._sign_in(claim, keep_context=True)
        if self._phone is None:
            return
        await self._best_effort(
            contract.reconcile_seat,
            ReconcileSeatInput(
                channel=self._inp.channel, seat=self._inp.seat, cc_call_id=claim.cc_call_id
            ),
            f"reconciling call {claim.cc_call_id}",
        )

    async def _best_effort(
        self, activity: Callable[[Any], Awaitable[None]], arg: Any, what: str
    ) -> None:
        try:
            await workflow.execute_activity(
                activity, arg, start_to_close_timeout=QUICK, retry_policy=STORE_RETRY
            )
        except ActivityError:
            workflow.logger.warning("seat %s: %s failed", self._inp.seat, what)
