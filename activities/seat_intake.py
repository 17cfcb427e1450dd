"""Where a seat poll's answers go (SeatWorkflow's ``poll_seat``): each answer's events to
their calls, inbox first, then signalled; an inbound call that rings the seat recorded
before its events (``activities/seat_rings.py``); the parser's context written with the
events it came with; the seat let go once its inbound call hangs up. An answer the store
refuses is kept, in order, for the next try."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from temporalio import activity

from activities.seat_polling import SeatProgress, StoredContext, lineage_of
from activities.seat_rings import SeatRings
from channels.events import CallEvent
from contracts.seat import RELEASE_SEAT_SIGNAL, PollSeatInput, UnstoredPoll, seat_workflow_id
from core.types import Direction, EventKind
from intake.delivery import ingest
from store import calls, seats
from store.db import session_scope
from store.seats import SqlSessions

log = logging.getLogger("cc.activities.seats")


async def signal_seat(inp: PollSeatInput, signal: str, arg: Any) -> None:
    """Signal the seat's SeatWorkflow (from within a seat's activity)."""
    seat = activity.client().get_workflow_handle(seat_workflow_id(inp.channel, inp.seat))
    await seat.signal(signal, arg)


class SeatIntake:
    def __init__(self, engine: Engine, sessions: SqlSessions, rings: SeatRings) -> None:
        self._engine, self._sessions, self._rings = engine, sessions, rings

    async def store(self, inp: PollSeatInput, progress: SeatProgress) -> bool:
        """Store the answers kept, oldest first, up to the first the store refuses. True
        once none is left."""
        while progress.unstored:
            try:
                await self._ingest(inp, progress.unstored[0])
            except Exception as exc:  # noqa: BLE001 - the store (or Temporal) is down: kept
                log.warning(
                    "seat events kept, not stored yet channel=%s seat=%s kept=%d: %s",
                    inp.channel,
                    inp.seat,
                    len(progress.unstored),
                    exc.__class__.__name__,
                )
                return False
            progress.unstored.pop(0)
        return True

    def _context_with(self, inp: PollSeatInput, polled: UnstoredPoll) -> Callable[[Any], None]:
        """The parser's context after an answer, written with the answer's events (one
        transaction: a worker killed between the two would leave a retry of this poll with
        the context before them, and a failure's leg wrong)."""
        stored = StoredContext(lineage=lineage_of(activity.info()), context=polled.context)
        key, value = f"poll:{inp.seat}", stored.model_dump_json()
        return lambda session: seats.put_session(session, inp.channel, key, value)

    async def resume_context(self, inp: PollSeatInput, progress: SeatProgress) -> None:
        """A retried attempt goes on from the context its lineage stored last, if newer."""
        try:
            stored = await self._sessions.load(inp.channel, f"poll:{inp.seat}")
        except (OperationalError, InterfaceError):
            return  # the store is down: the heartbeat's context is the best there is
        if not stored:
            return
        last = StoredContext.model_validate_json(stored)
        if last.lineage == lineage_of(activity.info()) and last.context.seq > progress.context.seq:
            progress.context = last.context

    async def _ingest(self, inp: PollSeatInput, polled: UnstoredPoll) -> None:
        """The poll's events, inbox first then signalled to their calls: an inbound call that
        rings the seat is recorded before, so that its events find it; one that hangs up
        lets the seat go after."""
        for ring in polled.rings:
            await self._rings.record(inp, ring)
        events: list[CallEvent] = []
        ended: set[str] = set()
        if polled.events:
            events, ended = await asyncio.to_thread(
                self._owned, inp.channel, inp.seat, polled.events
            )
        await ingest(
            self._engine,
            activity.client(),
            inp.channel,
            events,
            polled.raw.encode(),
            "application/json",
            also=self._context_with(inp, polled),
        )
        for cc_call_id in ended:
            try:
                await signal_seat(inp, RELEASE_SEAT_SIGNAL, cc_call_id)
            except Exception:  # noqa: BLE001 - the seat's next call takes it over
                log.warning("seat=%s not released by call=%s", inp.seat, cc_call_id)

    def _owned(
        self, channel: str, seat: str, events: list[CallEvent]
    ) -> tuple[list[CallEvent], set[str]]:
        """Each event with its call: by the vendor's call id when it carries one, else the
        seat's call (events before B is dialled carry no id; see store.seats.seat_call); and
        the inbound calls of the seat that these events hang up."""
        with session_scope(self._engine) as session:
            owned, ended = [], set()
            for event in events:
                cc = event.cc_call_id
                if cc is None and event.vendor_call_id is not None:
                    cc = seats.call_of_vendor_id(session, channel, event.vendor_call_id)
                if cc is None:
                    cc = seats.seat_call(session, channel, seat)
                owned.append(event.model_copy(update={"cc_call_id": cc}))
                if cc is not None and event.kind is EventKind.HANGUP:
                    row = calls.get_call_any_tenant(session, cc)
                    if row is not None and row.direction == Direction.IN and row.agent == seat:
                        ended.add(cc)
            return owned, ended
