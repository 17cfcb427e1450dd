"""How CallWorkflow places its call: the rule of VENDORS.md "Placing a call whose outcome is
unknown", failover, and the placement deadline. Workflow code (deterministic), kept apart
from ``call.py`` so the call's process reads on one screen.

- A request that never reached the vendor, or that the vendor answered with an error, placed
  nothing: it is tried again (with back-off) and then, if routing allows, on the next channel.
- A rejection (bad number) is about the call: no retry, no failover.
- A seat the gateway refused for itself (wrong password, taken elsewhere: its line is out of
  service now) is about that line, one tenant's to mend: no retry on it and no word to health
  (the channel is not failing); it fails over where routing allows, as any request that
  placed nothing may (VENDORS.md), else the call closes 255 with the refusal in its attempt.
- A request whose outcome is unknown (the vendor's answer timed out, the worker died while
  it was out) may have placed the call: it is never placed again, anywhere. CC waits
  ``place_unknown_wait_s`` for an event of the call; with one the call goes on, without one
  it closes with 7. On a polled channel (hw) the wait is longer by the time a dead worker's
  seat poll takes to resume (``contracts.seat.POLL_RESUMED_WITHIN``): until then no event of
  the seat can come.
- A request CC could not send because its own store was down is tried again on the same
  line, without counting against the vendor, until the placement deadline.
- A request the vendor answered 429 (too many requests) is back-pressure, not a failure: the
  same line again once the vendor's ``Retry-After`` has passed, never counted against the
  channel's health. A wait that would pass the placement deadline fails over where routing
  allows (no failure told to health either), else the call closes as not placed in time.
- A call not placed within ``place_deadline_s`` of its request is closed without dialling.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeout

from workflows import steps
from workflows.host import CallPart

# The vendor's own limit sits this far above max_duration: CC ends the call on time itself,
# the vendor's limit is only the backstop if CC cannot.
VENDOR_LIMIT_MARGIN_S = 5

with workflow.unsafe.imports_passed_through():
    from channels.events import CallEvent, PlaceCallRequest
    from contracts import seat as seat_contract
    from contracts.call import Attempt, FailoverInput, LineLease, PlaceCallInput
    from contracts.errors import (
        NETWORK_ERROR,
        OUTCOME_UNKNOWN,
        RATE_LIMITED,
        REJECTED,
        SERVER_ERROR,
        STORE_UNAVAILABLE,
    )
    from contracts.health import PlacementOutcome
    from contracts.ids import SA_CHANNEL
    from contracts.seat import (
        RELEASE_SEAT_SIGNAL,
        SEAT_UNAVAILABLE,
        ClaimSeatInput,
        SeatClaim,
        seat_workflow_id,
    )
    from core.types import ChannelMode, CloseType, DisplayPolicy

# Tries of one channel for errors that placed nothing, and the back-off between them.
TRIES_PER_CHANNEL = 3
RETRY_DELAYS_S = (1.0, 2.0)
STORE_WAIT_MAX_S = 10.0  # between tries while CC's own store is down
RATE_WAIT_S = (1.0, 60.0)  # a vendor's Retry-After, kept within these bounds
# After a 429's wait the call must still be placeable before its deadline: the next request's
# own time, and the timer's lateness, fit in this margin.
RATE_MARGIN_S = 5.0
PLACED = "placed"
NOT_STARTED = "not_started"  # the request waited in its vendor's queue past the deadline
# Since this patch a seat refused for itself is its line's fault, not the channel's: no retry,
# no health report (before it, retried and reported as a vendor error: issue 20 row 8).
SEAT_REFUSAL_PATCH = "seat-refusal-is-its-line-s"
# Before an unknown outcome closes 7, the call's events stored and never signalled are read.
STORED_EVENTS_PATCH = "unknown-outcome-reads-stored-events"
# An attempt's outcome by its error type (any other: "failed").
ATTEMPT_OUTCOMES = {REJECTED: "rejected", SEAT_UNAVAILABLE: "rejected", OUTCOME_UNKNOWN: "unknown"}
# Claiming a seat: a sign-in the gateway refused (wrong password, seat taken) is final.
CLAIM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_attempts=3,
    non_retryable_error_types=[SEAT_UNAVAILABLE],
)


class Placing(CallPart):
    """CallWorkflow's placing steps: a part of the workflow, whose state (``CallHost``) is
    declared in ``CallWorkflow.__init__``."""

    async def _place(self) -> bool:
        """Place the call on its line, failing over where allowed. True once placed."""
        tried: list[str] = []
        outcome: str | None = None
        while self._line is not None:
            line = self._line
            outcome = await self._try_channel(line)
            if outcome == PLACED:
                return True
            if outcome == OUTCOME_UNKNOWN:
                return await self._await_unknown_outcome()
            if outcome == "expired":
                return False
            tried.append(line.channel)
            if outcome == REJECTED or not self._inp.routing.may_fail_over:
                break
            await self._fail_over(tried)
        close_type = {
            REJECTED: CloseType.OTHER,
            SEAT_UNAVAILABLE: CloseType.OTHER,
            NETWORK_ERROR: CloseType.CHANNEL_NETWORK_ERROR,
        }
        self._close_by_cc(
            close_type.get(outcome or "", CloseType.CHANNEL_SERVER_ERROR), "cc:place_failed"
        )
        return False

    async def _fail_over(self, tried: list[str]) -> None:
        await self._release_seat()
        await self._release_line()
        self._line = await steps.take_failover_line(
            FailoverInput(
                tenant=self.record.tenant,
                cc_call_id=self.record.cc_call_id,
                routing=self._inp.routing,
                tried=tried,
            )
        )
        if self._line is not None:
            self.record = self.record.model_copy(
                update={"channel": self._line.channel, "agent": self._line.agent}
            )
            workflow.upsert_search_attributes([SA_CHANNEL.value_set(self._line.channel)])

    def _deadline_ms(self) -> int:
        return self._place_from_ms + int(self._inp.timers.place_deadline_s * 1000)

    def _expire(self, attempt: Attempt, why: str) -> str:
        """Not placed in time: closed without dialling (255)."""
        attempt.outcome = "expired"
        attempt.error = f"{attempt.error or ''} ({why})".strip()
        self._close_by_cc(CloseType.OTHER, "cc:place_deadline")
        return "expired"

    async def _try_channel(self, line: LineLease) -> str:
        """One channel (one entry in ``attempts``), tried again after errors that placed
        nothing. Returns PLACED, an error type, or "expired" (the deadline passed: closed
        without dialling)."""
        attempt = Attempt(
            channel=line.channel, agent=line.agent, at=self._now_ms(), outcome=PLACED, tries=0
        )
        self.attempts.append(attempt)
        error_type, tries, store_waits = "", 0, 0
        while tries < TRIES_PER_CHANNEL:
            if self._now_ms() > self._deadline_ms():
                return self._expire(attempt, "not placed in time")
            attempt.tries = tries = tries + 1
            error_type, wait_s = await self._try_place(line, attempt)
            if error_type in (PLACED, REJECTED, OUTCOME_UNKNOWN, SEAT_UNAVAILABLE):
                return error_type
            if error_type == NOT_STARTED:
                return self._expire(attempt, "waited past the placement deadline")
            if error_type == RATE_LIMITED:
                # Back-pressure: not one of the channel's failures, and no word to health.
                tries -= 1
                if self._now_ms() + int((wait_s + RATE_MARGIN_S) * 1000) > self._deadline_ms():
                    if self._inp.routing.may_fail_over:
                        return RATE_LIMITED  # the next channel may take it in time
                    return self._expire(attempt, "the wait passes the placement deadline")
                await workflow.sleep(
                    timedelta(seconds=wait_s),
                    summary=f"{line.channel} rate limited: wait {wait_s:g} s, then place again",
                )
            elif error_type == STORE_UNAVAILABLE:
                # CC's store is down, nothing was sent: no try of the vendor's, no health
                # report; the same line again, until the placement deadline.
                tries, store_waits = tries - 1, store_waits + 1
                await workflow.sleep(
                    timedelta(seconds=min(2.0 * store_waits, STORE_WAIT_MAX_S)),
                    summary="store unavailable: wait, then place again",
                )
            elif tries < TRIES_PER_CHANNEL:
                await workflow.sleep(
                    timedelta(seconds=RETRY_DELAYS_S[tries - 1]),
                    summary=f"{line.channel} failed: wait, then place again",
                )
        # Every request failed: the vendor is unwell. Health decides how much one call weighs.
        await steps.report_placement(
            PlacementOutcome(
                channel=line.channel, ok=False, reason=attempt.error, tries=attempt.tries
            )
        )
        return error_type

    async def _try_place(self, line: LineLease, attempt: Attempt) -> tuple[str, float]:
        """One place request. Returns PLACED or the error type, and the seconds a vendor's
        429 asked to wait (0 otherwise)."""
        self._dirty = True
        unclaimed = await self._claim_seat(line, attempt)
        if unclaimed is not None:
            return unclaimed, 0.0
        queue_wait = timedelta(milliseconds=max(1_000, self._deadline_ms() - self._now_ms()))
        try:
            placed = await steps.place_call(
                PlaceCallInput(channel=line.channel, request=self._place_request(line)),
                queue_wait,
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ActivityTimeout) and cause.type is TimeoutType.SCHEDULE_TO_START:
                # It waited its turn under the vendor's CPS past the deadline, never started:
                # nothing was sent.
                attempt.outcome, attempt.error = "failed", "not started in the vendor's queue"
                return NOT_STARTED, 0.0
            known = (
                REJECTED,
                SERVER_ERROR,
                NETWORK_ERROR,
                STORE_UNAVAILABLE,
                SEAT_UNAVAILABLE,
                RATE_LIMITED,
            )
            wait_s = 0.0
            if isinstance(cause, ApplicationError) and cause.type in known:
                error_type = cause.type
                if error_type == RATE_LIMITED:
                    wait_s = _rate_wait_s(cause.details)
            else:
                # A timeout (a worker died, a hang) or any error nobody classified: the
                # request may be out, so it is never placed again.
                error_type = OUTCOME_UNKNOWN
            attempt.outcome = ATTEMPT_OUTCOMES.get(error_type, "failed")
            attempt.error = str(cause or err)[:300]
            return error_type, wait_s
        attempt.outcome, attempt.error = PLACED, None
        attempt.vendor_call_id = placed.vendor_call_id
        self.record = self.record.model_copy(update={"vendor_call_id": placed.vendor_call_id})
        await steps.report_placement(PlacementOutcome(channel=line.channel, ok=True))
        return PLACED, 0.0

    async def _claim_seat(self, line: LineLease, attempt: Attempt) -> str | None:
        """A polled channel's line is a seat: it must be signed in with the call's agent
        phone, and polled, before the call is placed (SeatWorkflow). None once it is; else
        nothing was placed, and the error type: SEAT_UNAVAILABLE when the gateway refused
        the seat itself (see the module), else SERVER_ERROR (retried, then failed over like
        a vendor error)."""
        if self._inp.routing.modes.get(line.channel) is not ChannelMode.POLL:
            return None
        claim = SeatClaim(cc_call_id=self.record.cc_call_id, phonenum=self.record.caller)
        try:
            await workflow.execute_activity(
                seat_contract.claim_seat,
                ClaimSeatInput(
                    channel=line.channel,
                    seat=line.agent,
                    claim=claim,
                    timers=self._inp.seat,
                    task_queue=workflow.info().task_queue,
                ),
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=CLAIM_RETRY,
                summary=f"claim seat {line.channel} {line.agent}",
            )
        except ActivityError as err:
            cause = err.cause
            attempt.outcome, attempt.error = "failed", str(cause or err)[:300]
            refused = isinstance(cause, ApplicationError) and cause.type == SEAT_UNAVAILABLE
            if refused and workflow.patched(SEAT_REFUSAL_PATCH):
                attempt.outcome = "rejected"
                return SEAT_UNAVAILABLE
            return SERVER_ERROR
        self._seat = line
        return None

    async def _release_seat(self) -> None:
        """The call no longer needs its seat: SeatWorkflow may let it go idle."""
        seat, self._seat = self._seat, None
        if seat is None:
            return
        handle = workflow.get_external_workflow_handle(seat_workflow_id(seat.channel, seat.agent))
        try:
            await handle.signal(RELEASE_SEAT_SIGNAL, self.record.cc_call_id)
        except Exception:  # noqa: BLE001 - gone already: nothing holds the seat
            workflow.logger.info("seat %s already released", seat.agent)

    async def _await_unknown_outcome(self) -> bool:
        """The request may have placed the call: follow it if the place activity wrote the
        vendor's id down (its answer to us was lost) or an event shows it, else close 7."""
        try:
            known = await steps.placed_call_id(self.record.cc_call_id)
        except ActivityError:
            known = None
        if known is not None:
            self.record = self.record.model_copy(update={"vendor_call_id": known})
            self.attempts[-1].outcome, self.attempts[-1].vendor_call_id = PLACED, known
            self.attempts[-1].error = None
            return True
        waited = timedelta(seconds=self._inp.timers.place_unknown_wait_s)
        if self._seat is not None:
            # A polled channel's events come only through CC's own poll of the seat, which a
            # worker that died with the request out took with it: wait from its resumption.
            waited += seat_contract.POLL_RESUMED_WITHIN
        try:
            await workflow.wait_condition(
                lambda: self._events_seen > 0,
                timeout=waited,
                timeout_summary="place outcome unknown: wait for the vendor's word",
            )
        except TimeoutError:
            if self._events_seen == 0 and workflow.patched(STORED_EVENTS_PATCH):
                await self._apply_stored_events()
            if self._events_seen > 0:  # came with the timer, in one activation, or stored
                return self._confirmed()
            workflow.logger.warning(
                "place outcome unknown, no event: call %s closed", self.record.cc_call_id
            )
            self._close_by_cc(CloseType.CHANNEL_NETWORK_ERROR, "cc:place_unknown")
            return False
        return self._confirmed()

    async def _apply_stored_events(self) -> None:
        """The call's events CC stored but this workflow never got (the process that stored
        them died before signalling, and redelivery has not come yet): the vendor's word all
        the same."""
        try:
            stored = await steps.unapplied_events(self.record.cc_call_id)
        except ActivityError:
            return
        for event in stored:
            self.vendor_event(event)

    def _confirmed(self) -> bool:
        self.attempts[-1].outcome = "placed_unconfirmed"
        self.attempts[-1].vendor_call_id = self.record.vendor_call_id
        return True

    def _place_request(self, line: LineLease) -> PlaceCallRequest:
        rec = self.record
        shown_to_b = rec.caller if rec.display is DisplayPolicy.PASSTHROUGH else line.number
        return PlaceCallRequest(
            cc_call_id=rec.cc_call_id,
            caller=rec.caller,
            called=rec.called,
            display_to_a=line.number,  # A never sees the customer's number
            display_to_b=shown_to_b,
            agent=line.agent,
            max_duration_s=self._inp.max_duration_s + VENDOR_LIMIT_MARGIN_S,
            record=self._inp.record_audio,
            ivr_text=rec.ivr_text,
            ivr_url=rec.ivr_url,
        )

    def _is_stray(self, event: CallEvent) -> bool:
        """An event of another vendor call than the one CC follows (an earlier attempt's
        channel, or another call id): noted, never applied; that call is hung up."""
        if event.channel is not None and event.channel != self.record.channel:
            return True
        ours = self.record.vendor_call_id
        return ours is not None and event.vendor_call_id not in (None, ours)


def _rate_wait_s(details: Sequence[Any]) -> float:
    """The vendor's Retry-After (the error's first detail), within ``RATE_WAIT_S``."""
    low, high = RATE_WAIT_S
    wait = details[0] if details and isinstance(details[0], int | float) else low
    return float(min(max(wait, low), high))
