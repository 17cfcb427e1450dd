"""Activities that talk to vendors through the channel adapters (all vendor I/O lives here)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.seat_faults import refuse_seat
from channels.errors import (
    ChannelError,
    SeatRefused,
    VendorNetworkError,
    VendorOutcomeUnknown,
    VendorRateLimited,
    VendorRejected,
    VendorServerError,
)
from channels.events import CallEvent
from channels.protocols import Channel
from contracts.call import (
    HangupInput,
    PlaceCallInput,
    PlaceCallResult,
    ReconcileInput,
)
from contracts.errors import (
    NETWORK_ERROR,
    OUTCOME_UNKNOWN,
    RATE_LIMITED,
    REJECTED,
    SERVER_ERROR,
    STORE_UNAVAILABLE,
)
from contracts.seat import SEAT_UNAVAILABLE
from intake.delivery import ingest
from store import calls
from store.db import session_scope

log = logging.getLogger("cc.activities.channels")


def _as_application_error(exc: ChannelError) -> ApplicationError:
    if isinstance(exc, VendorRejected):
        return ApplicationError(str(exc), type=REJECTED, non_retryable=True)
    if isinstance(exc, VendorOutcomeUnknown):
        return ApplicationError(str(exc), type=OUTCOME_UNKNOWN, non_retryable=True)
    if isinstance(exc, VendorRateLimited):  # details[0]: the vendor's wait, for a placement
        wait = exc.retry_after_s or 1.0
        return ApplicationError(
            str(exc), wait, type=RATE_LIMITED, next_retry_delay=timedelta(seconds=wait)
        )
    kind = NETWORK_ERROR if isinstance(exc, VendorNetworkError) else SERVER_ERROR
    delay = exc.retry_after_s if isinstance(exc, VendorServerError) else None
    retry_delay = None if delay is None else timedelta(seconds=delay)
    return ApplicationError(str(exc), type=kind, next_retry_delay=retry_delay)


class ChannelActivities:
    def __init__(self, channels: dict[str, Channel], engine: Engine) -> None:
        self._channels = channels
        self._engine = engine

    def _channel(self, name: str) -> Channel:
        try:
            return self._channels[name]
        except KeyError:
            raise ApplicationError(f"unknown channel {name}", non_retryable=True) from None

    @activity.defn
    async def place_call(self, inp: PlaceCallInput) -> PlaceCallResult:
        """One place request. Never retried by Temporal (the workflow decides): only the
        workflow knows whether an earlier request's outcome was unknown (VENDORS.md)."""
        channel = self._channel(inp.channel)
        cc_call_id = inp.request.cc_call_id
        try:
            placed = await channel.place_call(inp.request)
        except SeatRefused as exc:
            # The seat itself (hw: signed in anew for the callout, wrong password, taken
            # elsewhere): its line goes out of service, nothing was placed, and the channel is
            # not failing (VENDORS.md hw, 100-015).
            log.warning("place_call: seat refused call=%s channel=%s", cc_call_id, inp.channel)
            agent = inp.request.agent
            message = await asyncio.to_thread(refuse_seat, self._engine, inp.channel, agent, exc)
            raise ApplicationError(message, type=SEAT_UNAVAILABLE, non_retryable=True) from exc
        except ChannelError as exc:
            log.warning("place_call failed call=%s channel=%s: %s", cc_call_id, inp.channel, exc)
            raise _as_application_error(exc) from exc
        except (OperationalError, InterfaceError) as exc:
            # An adapter reads CC's store only before it sends (hw: the seat's session);
            # afterwards its writes are best effort. So nothing went out.
            log.warning(
                "place_call not sent, the store is down call=%s channel=%s", cc_call_id, inp.channel
            )
            raise ApplicationError(
                f"not sent: CC's store is down ({exc.__class__.__name__})",
                type=STORE_UNAVAILABLE,
                non_retryable=True,
            ) from exc
        log.info(
            "call placed call=%s channel=%s vendor_id=%s",
            cc_call_id,
            inp.channel,
            placed.vendor_call_id,
        )
        await asyncio.to_thread(self._note_placed, cc_call_id, placed.vendor_call_id)
        return PlaceCallResult(vendor_call_id=placed.vendor_call_id)

    def _note_placed(self, cc_call_id: str, vendor_call_id: str) -> None:
        """Write the vendor's id down at once: if this activity's answer never reaches the
        workflow (Temporal down, the worker dies now), the workflow finds the call here
        instead of taking its outcome for unknown. Never fails the placement."""
        try:
            with session_scope(self._engine) as session:
                calls.note_vendor_call(session, cc_call_id, vendor_call_id)
        except Exception:  # noqa: BLE001 - the workflow's own save writes it later anyway
            log.warning("vendor id not noted call=%s", cc_call_id, exc_info=True)

    @activity.defn
    async def hangup_call(self, inp: HangupInput) -> None:
        try:
            await self._channel(inp.channel).hangup(inp.vendor_call_id)
        except ChannelError as exc:
            raise _as_application_error(exc) from exc

    @activity.defn
    async def reconcile_call(self, inp: ReconcileInput) -> list[CallEvent]:
        """Ask the vendor what became of a call whose events went missing; the answer is
        stored in the inbox like any event and returned for the workflow to apply."""
        try:
            events = await self._channel(inp.channel).call_result(
                inp.vendor_call_id, inp.cc_call_id
            )
        except ChannelError as exc:
            raise _as_application_error(exc) from exc
        events = [e for e in events if e.cc_call_id == inp.cc_call_id]
        body = "\n".join(e.model_dump_json() for e in events).encode()
        return await ingest(
            self._engine,
            None,
            inp.channel,
            events,
            body,
            "application/x-cc-reconciliation",
            signal=False,
        )
