"""SeatWorkflow's activities: claim a seat for a call, sign it in and out, long-poll it, and
reconcile the call a lost session may have hidden (all vendor I/O of a polled channel's seats).

A poll that shows the vendor ringing the seat with a call CC did not place (hw: CEC's own IVR
routed a customer to it) records that inbound call once (``activities/seat_rings.py``); its
events then find it as a callback's do (by vendor call id, or by the seat's lease), and its
hang-up releases the seat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from temporalio import activity
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from activities.seat_faults import (
    claim_refusal,
    out_of_service_message,
    refuse_seat,
    report_failure,
    vendor_failing,
)
from activities.seat_intake import SeatIntake, signal_seat
from activities.seat_polling import (
    MAX_UNSTORED,
    SeatPollers,
    SeatProgress,
)
from activities.seat_rings import SeatRings
from channels.errors import (
    ChannelError,
    SeatRefused,
    SeatSignedOut,
    VendorRejected,
)
from channels.events import CallEvent, SeatLogin, SeatPoll, SeatStatus
from channels.protocols import Channel, PolledChannel
from channels.registry import Settings
from contracts.seat import (
    CLAIM_SEAT_UPDATE,
    SEAT_UNAVAILABLE,
    SEAT_WORKFLOW,
    ClaimSeatInput,
    PollSeatInput,
    PollSeatResult,
    ReconcileSeatInput,
    SeatInput,
    SignInInput,
    SignOutInput,
    UnstoredPoll,
    seat_workflow_id,
)
from core.types import CallState, CloseType, EventKind
from intake.delivery import ingest
from store import calls, lines
from store.db import now_ms, session_scope
from store.seats import SqlSessions

log = logging.getLogger("cc.activities.seats")

# A vendor that keeps failing is asked again at most this often while the seat is polled.
POLL_BACKOFF_INITIAL_S, POLL_BACKOFF_MAX_S = 0.5, 5.0
# Polls failing in a row that count as one channel failure for health.
SESSION_FAILURES_PER_REPORT = 3
# Waiting for a store that is down: first and longest pause between tries.
STORE_WAIT_INITIAL_S, STORE_WAIT_MAX_S = 0.5, 5.0


async def _finish_when_cancelled(
    poll: Coroutine[Any, Any, SeatPoll], store: Callable[[SeatPoll], Awaitable[object]]
) -> SeatPoll:
    """One long poll that a cancellation does not cut: the gateway holds the poll (a second
    one would be refused, 000-007) and may answer it with an event it will not send again,
    so a cancelled poll is finished and its events kept before the cancellation goes on."""
    task = asyncio.ensure_future(poll)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await store(await task)
        raise


class SeatActivities:
    def __init__(
        self,
        channels: dict[str, Channel],
        engine: Engine,
        secret_key: str,
        settings: Settings | None = None,
    ) -> None:
        self._channels = channels
        self._engine = engine
        self._secret_key = secret_key
        # settings None: inbound calls that ring a seat are not recorded
        self._pollers = SeatPollers()
        self._sessions = SqlSessions(engine, secret_key)
        self._intake = SeatIntake(engine, self._sessions, SeatRings(engine, settings, signal_seat))

    def _polled(self, name: str) -> PolledChannel:
        channel = self._channels.get(name)
        if not isinstance(channel, PolledChannel):
            raise ApplicationError(f"{name} is not a polled channel", non_retryable=True)
        return channel

    @activity.defn
    async def claim_seat(self, inp: ClaimSeatInput) -> None:
        start: WithStartWorkflowOperation[SeatInput, None] = WithStartWorkflowOperation(
            SEAT_WORKFLOW,
            SeatInput(channel=inp.channel, seat=inp.seat, timers=inp.timers),
            id=seat_workflow_id(inp.channel, inp.seat),
            task_queue=inp.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        try:
            await activity.client().execute_update_with_start_workflow(
                CLAIM_SEAT_UPDATE, inp.claim, start_workflow_operation=start
            )
        except WorkflowUpdateFailedError as exc:  # the seat could not be signed in
            raise claim_refusal(exc.cause) from exc

    @activity.defn
    async def sign_in_seat(self, inp: SignInInput) -> None:
        """Sign the seat in. A line out of service is refused without asking the gateway (a
        wrong password tried again and again may lock the seat's account). A seat the gateway
        refuses for itself (wrong password, taken elsewhere: ``SeatRefused``) takes its line
        out of service; any other refusal (a bad agent phone) fails this sign-in only. Neither
        is the channel failing: only the vendor failing is told to health."""
        channel = self._polled(inp.channel)
        unusable = await asyncio.to_thread(self._out_of_service_reason, inp.channel, inp.seat)
        if unusable is not None:
            message = out_of_service_message(inp.channel, inp.seat, unusable)
            raise ApplicationError(message, type=SEAT_UNAVAILABLE, non_retryable=True)
        login = await self._login(inp.channel, inp.seat, inp.phonenum)
        try:
            await channel.sign_in(login)
        except SeatRefused as exc:  # no retry mends it, and the seat's line is unusable
            message = await asyncio.to_thread(refuse_seat, self._engine, inp.channel, inp.seat, exc)
            raise ApplicationError(message, type=SEAT_UNAVAILABLE, non_retryable=True) from exc
        except VendorRejected as exc:  # refused for this sign-in: no retry mends it either
            message = f"{inp.channel} seat {inp.seat} not signed in: {exc}"
            raise ApplicationError(message, type=SEAT_UNAVAILABLE, non_retryable=True) from exc
        except ChannelError as exc:
            if vendor_failing(exc):
                await report_failure(inp.channel, f"seat sign-in failing: {exc}")
            raise ApplicationError(str(exc), type=type(exc).__name__) from exc
        log.info("seat signed in channel=%s seat=%s", inp.channel, inp.seat)

    @activity.defn
    async def sign_out_seat(self, inp: SignOutInput) -> None:
        try:
            await self._polled(inp.channel).sign_out(inp.seat)
        except ChannelError as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__) from exc
        log.info("seat signed out channel=%s seat=%s", inp.channel, inp.seat)

    @activity.defn
    async def poll_seat(self, inp: PollSeatInput) -> PollSeatResult:
        """Long-poll the seat for ``run_s`` (one event per answer), each event inbox first,
        then signalled to its call. The parser's context and the answers not stored yet ride
        on the heartbeat, so a retry on another worker resumes where this one stopped; one
        on this worker waits for the earlier attempt (``activities/seat_polling.py``)."""
        channel = self._polled(inp.channel)
        start = SeatProgress.resumed(activity.info().heartbeat_details, inp)
        async with self._pollers.turn(inp, start) as progress:
            if activity.info().attempt > 1:
                await self._intake.resume_context(inp, progress)
            login = await self._login(inp.channel, inp.seat, inp.phonenum, progress)
            signed_out = await self._poll_for(channel, login, inp, progress)
            return PollSeatResult(
                context=progress.context, signed_out=signed_out, unstored=progress.unstored
            )

    async def _poll_for(
        self, channel: PolledChannel, login: SeatLogin, inp: PollSeatInput, progress: SeatProgress
    ) -> bool:
        """Poll until ``run_s`` is up; True if the gateway lost the seat's session."""
        ends_at, backoff, failures = time.monotonic() + inp.run_s, POLL_BACKOFF_INITIAL_S, 0

        async def keep(polled: SeatPoll) -> bool:
            if polled.events or polled.context != progress.context:
                progress.unstored.append(UnstoredPoll.of(polled))
            progress.context = polled.context
            return await self._intake.store(inp, progress)

        while time.monotonic() < ends_at:
            activity.heartbeat(*progress.details())
            if (
                not await self._intake.store(inp, progress)
                and len(progress.unstored) >= MAX_UNSTORED
            ):
                await asyncio.sleep(POLL_BACKOFF_MAX_S)  # the gateway holds the rest meanwhile
                continue
            try:
                polled = await _finish_when_cancelled(
                    channel.poll_seat(login, progress.context), keep
                )
            except SeatSignedOut:
                log.warning("seat session lost channel=%s seat=%s", inp.channel, inp.seat)
                return True
            except SeatRefused as exc:
                # Signing in again (a stale session) was refused for the seat itself: its line
                # goes out of service, and SeatWorkflow's sign-in after a lost session finds it.
                await asyncio.to_thread(refuse_seat, self._engine, inp.channel, inp.seat, exc)
                return True
            except ChannelError as exc:
                log.warning("seat poll failed channel=%s seat=%s: %s", inp.channel, inp.seat, exc)
                if vendor_failing(exc):
                    failures += 1
                    if failures % SESSION_FAILURES_PER_REPORT == 0:
                        await report_failure(inp.channel, f"seat sessions failing: {exc}")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, POLL_BACKOFF_MAX_S)
                continue
            backoff, failures = POLL_BACKOFF_INITIAL_S, 0
            await keep(polled)
        return False

    @activity.defn
    async def reconcile_seat(self, inp: ReconcileSeatInput) -> None:
        """After a lost session (the gateway drops the events it held for the seat, and those
        that came meanwhile): what the seat shows now of its call. A call not placed yet
        has nothing to reconcile (its callout is still to come). A seat no longer in a call
        ended it unseen: closed with what is known (talked: a normal hang-up; else 255).
        Its phone off-hook proves leg A answered."""
        with session_scope(self._engine) as session:
            row = calls.get_call_any_tenant(session, inp.cc_call_id)
            if row is None or row.state == CallState.CLOSE.value or row.vendor_call_id is None:
                return
            talked, answered = row.conn_time is not None, row.a_offhook_time is not None
            vendor_call_id = row.vendor_call_id
        status = await self._polled(inp.channel).seat_status(inp.seat)
        if status is SeatStatus.BUSY or (status is SeatStatus.OFFHOOK and answered):
            return  # the call goes on: its events come with the next polls
        if status is SeatStatus.OFFHOOK:
            kind, close_type = EventKind.A_ANSWERED, None
        else:
            kind, close_type = EventKind.HANGUP, CloseType.NORMAL if talked else CloseType.OTHER
        event = CallEvent(
            cc_call_id=inp.cc_call_id,
            vendor_call_id=vendor_call_id,
            kind=kind,
            at=now_ms(),
            ch_state="cc:seat_reconciled",
            close_type=close_type,
            dedupe_key=f"{inp.seat}:{inp.cc_call_id}:reconciled:{kind.value}",
        )
        body = event.model_dump_json().encode()
        await ingest(
            self._engine,
            activity.client(),
            inp.channel,
            [event],
            body,
            "application/x-cc-reconciliation",
        )

    def _out_of_service_reason(self, channel: str, seat: str) -> str | None:
        """Why the seat's line is out of service; None when it is in service (or the store
        cannot say: the gateway decides then)."""
        try:
            with session_scope(self._engine) as session:
                line = lines.find_line(session, channel, seat)
                return None if line is None else line.out_of_service
        except (OperationalError, InterfaceError):
            return None

    async def _login(
        self, channel: str, seat: str, phonenum: str, progress: SeatProgress | None = None
    ) -> SeatLogin:
        """How the seat signs in (its password lives in the store; while it is down, the last
        login this process read). A seat this process never read is waited for, heartbeating,
        within the activity's own time: a store outage is no reason to fail a seat."""
        delay, ends_at = STORE_WAIT_INITIAL_S, _activity_deadline()
        while True:
            try:
                login = await self._sessions.seat_login(channel, seat, phonenum)
            except (OperationalError, InterfaceError) as exc:
                if time.monotonic() + delay >= ends_at:
                    raise
                log.warning(
                    "seat login waits for the store channel=%s seat=%s: %s",
                    channel,
                    seat,
                    exc.__class__.__name__,
                )
                activity.heartbeat(*(progress.details() if progress is not None else ()))
                await asyncio.sleep(delay)
                delay = min(delay * 2, STORE_WAIT_MAX_S)
                continue
            return login


def _activity_deadline() -> float:
    """When this activity's start-to-close time is up, on the monotonic clock (a margin
    before, to fail in its own words); an hour ahead when it has none."""
    limit = activity.info().start_to_close_timeout
    left = limit.total_seconds() - 1.0 if limit else 3600.0
    started = activity.info().started_time
    return time.monotonic() + left - max(0.0, time.time() - started.timestamp())
