"""The inbound calls a polled vendor rings a seat with (hw: CEC's own IVR routed a customer
to it), recorded from SeatActivities' polls (``activities/seats.py``).

A poll that shows the vendor ringing the seat with a call CC did not place records that
inbound call once: its record (id from the vendor's call id), the seat's line leased to it,
the seat held for it (``INBOUND_CALL_SIGNAL``) and its CallWorkflow started. Its events then
find it as a callback's do (by vendor call id, or by the seat's lease), and its hang-up
releases the seat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from callflow.inbound import e164, inbound_call_id
from channels.events import SeatRing
from channels.registry import Settings
from contracts.call import CallInput, Routing
from contracts.seat import INBOUND_CALL_SIGNAL, PollSeatInput, SeatClaim
from contracts.start import call_input, start_call
from core.types import ChannelMode, Direction, DisplayPolicy
from store import calls, lines, seats, tenants
from store.db import now_ms, session_scope
from store.models import AgentLine, CallRecordRow
from store.placement import record_born

log = logging.getLogger("cc.activities.seats")

# Signals the SeatWorkflow of the poll's seat: (the poll, the signal's name, its argument).
SignalSeat = Callable[[PollSeatInput, str, Any], Awaitable[None]]


async def start_inbound_call(client: Client, call: CallInput, task_queue: str) -> None:
    """Start an inbound call's CallWorkflow, unless it was started already: a closed call's
    workflow is never started again (a late repeat of its ring)."""
    record = call.record
    try:
        await start_call(client, call, task_queue)
    except WorkflowAlreadyStartedError:
        return
    log.info(
        "inbound call tenant=%s call=%s channel=%s seat=%s",
        record.tenant,
        record.cc_call_id,
        record.channel,
        record.agent,
    )


class SeatRings:
    """Records the inbound calls that ring a polled seat (see the module), for the seat's
    poll; ``signal_seat`` holds the seat for a call."""

    def __init__(self, engine: Engine, settings: Settings | None, signal_seat: SignalSeat) -> None:
        self._engine = engine
        self._settings = settings  # None: inbound calls that ring a seat are not recorded
        self._signal_seat = signal_seat

    async def record(self, inp: PollSeatInput, ring: SeatRing) -> None:
        """Record the ring's inbound call, hold the seat for it and start its workflow; all
        of it once, however often the ring is polled. Best effort: the poll's events go to
        the inbox whatever happens here (a repeat of the ring tries again; a record whose
        workflow never started is closed by the lease reconciler)."""
        if self._settings is None:
            log.warning("inbound call on seat=%s not recorded: no settings", inp.seat)
            return
        settings = self._settings
        try:
            call = await asyncio.to_thread(self._open_inbound, settings, inp, ring)
        except Exception:  # noqa: BLE001 - see above
            log.warning(
                "inbound call on channel=%s seat=%s not recorded",
                inp.channel,
                inp.seat,
                exc_info=True,
            )
            return
        if call is None:
            return
        cc_call_id = call.record.cc_call_id
        claim = SeatClaim(cc_call_id=cc_call_id, phonenum=inp.phonenum)
        try:
            await self._signal_seat(inp, INBOUND_CALL_SIGNAL, claim)
        except Exception:  # noqa: BLE001 - the call is followed all the same
            log.warning("seat=%s not held for inbound call=%s", inp.seat, cc_call_id)
        try:
            await start_inbound_call(activity.client(), call, settings.task_queue)
        except Exception:  # noqa: BLE001 - see above
            log.warning("inbound call=%s not started", cc_call_id, exc_info=True)

    def _open_inbound(
        self, settings: Settings, inp: PollSeatInput, ring: SeatRing
    ) -> CallInput | None:
        """The ring's inbound call as its workflow starts, recorded now if it is new; None
        when it is no inbound call of CC's (CC's own call, a seat CC does not have, its line
        busy with another call) or it has ended already."""
        cc_call_id = inbound_call_id(inp.channel, ring.vendor_call_id)
        with session_scope(self._engine) as session:
            row = calls.get_call_any_tenant(session, cc_call_id)
            line = lines.find_line(session, inp.channel, inp.seat)
            if row is None and line is not None:
                if seats.call_of_vendor_id(session, inp.channel, ring.vendor_call_id):
                    return None  # a call CC placed
                return self._new_inbound(session, settings, inp, ring, line, cc_call_id)
            if row is None or line is None or line.lease_call_id != cc_call_id:
                return None  # not CC's seat, or the call is over (its line freed)
            return self._call_input(settings, row, line)

    def _new_inbound(
        self,
        session: Session,
        settings: Settings,
        inp: PollSeatInput,
        ring: SeatRing,
        line: AgentLine,
        cc_call_id: str,
    ) -> CallInput | None:
        leased = lines.lease_agent_line(session, line.tenant, inp.channel, inp.seat, cc_call_id)
        if leased is None:
            log.info(
                "ring on busy seat=%s channel=%s: not an inbound call of CC's",
                inp.seat,
                inp.channel,
            )
            return None
        tenant = tenants.get_tenant(session, line.tenant)
        region = tenant.default_region if tenant is not None else settings.default_region
        row = CallRecordRow(
            cc_call_id=cc_call_id,
            tenant=line.tenant,
            main_num=e164(ring.called, region) or ring.called[:16] or None,
            ext_num=inp.seat if len(inp.seat) <= 8 else None,
            caller=e164(ring.caller, region) or ring.caller[:16],
            called=inp.phonenum,
            channel=inp.channel,
            agent=inp.seat,
            vendor_call_id=ring.vendor_call_id,
            display=DisplayPolicy.PLATFORM.value,
            direction=Direction.IN.value,
            max_duration=settings.default_max_duration_s,
            lease_token=leased.lease_token,
            created=ring.at,
            updated=now_ms(),
        )
        record_born(session, row)
        return self._call_input(settings, row, leased)

    @staticmethod
    def _call_input(settings: Settings, row: CallRecordRow, line: AgentLine) -> CallInput:
        routing = Routing(may_fail_over=False, modes={row.channel: ChannelMode.POLL})
        record, lease = calls.record_of(row), lines.lease_of(line)
        return call_input(settings, record, lease, routing, row.max_duration, row.record_audio)
