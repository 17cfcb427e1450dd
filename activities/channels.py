"""Activities that talk to vendors through the channel adapters (all vendor I/O lives here)."""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from channels.base import Channel, ChannelError, VendorNetworkError, VendorRejected
from store.models import VendorEvent
from workflows.types import HangupInput, PlaceCallInput, PlaceCallResult

log = logging.getLogger("cc.activities.channels")

# Error types the workflow reads to pick a close_type; kept as strings across the boundary.
REJECTED = "VendorRejected"
SERVER_ERROR = "VendorServerError"
NETWORK_ERROR = "VendorNetworkError"


def _as_application_error(exc: ChannelError) -> ApplicationError:
    if isinstance(exc, VendorRejected):
        return ApplicationError(str(exc), type=REJECTED, non_retryable=True)
    kind = NETWORK_ERROR if isinstance(exc, VendorNetworkError) else SERVER_ERROR
    return ApplicationError(str(exc), type=kind)


class ChannelActivities:
    def __init__(self, channels: dict[str, Channel], engine: Engine) -> None:
        self._channels = channels
        self._engine = engine

    def _channel(self, name: str) -> Channel:
        try:
            return self._channels[name]
        except KeyError:
            raise ApplicationError(f"unknown channel {name}", non_retryable=True) from None

    def _vendor_id_from_inbox(self, channel: str, cc_call_id: str) -> str | None:
        with Session(self._engine) as session:
            return session.exec(
                select(VendorEvent.vendor_call_id).where(
                    VendorEvent.channel == channel,
                    VendorEvent.cc_call_id == cc_call_id,
                    col(VendorEvent.vendor_call_id).is_not(None),
                )
            ).first()

    @activity.defn
    async def place_call(self, inp: PlaceCallInput) -> PlaceCallResult:
        """Dial through the vendor, at most once per CC call id.

        A retry of this activity (timeout, worker crash) first looks for evidence that the
        vendor already accepted the call: an event in our inbox, or the vendor's own record
        of a call carrying our id as userData. Only without either does it dial.
        """
        channel = self._channel(inp.channel)
        cc_call_id = inp.request.cc_call_id
        try:
            if activity.info().attempt > 1:
                known = self._vendor_id_from_inbox(inp.channel, cc_call_id)
                known = known or await channel.find_call(cc_call_id)
                if known:
                    log.info("call already placed call=%s vendor_id=%s", cc_call_id, known)
                    return PlaceCallResult(vendor_call_id=known, already_placed=True)
            placed = await channel.place_call(inp.request)
        except ChannelError as exc:
            log.warning("place_call failed call=%s channel=%s: %s", cc_call_id, inp.channel, exc)
            raise _as_application_error(exc) from exc
        log.info("call placed call=%s channel=%s vendor_id=%s", cc_call_id, inp.channel,
                 placed.vendor_call_id)  # fmt: skip
        return PlaceCallResult(vendor_call_id=placed.vendor_call_id)

    @activity.defn
    async def hangup_call(self, inp: HangupInput) -> None:
        try:
            await self._channel(inp.channel).hangup(inp.vendor_call_id)
        except ChannelError as exc:
            raise _as_application_error(exc) from exc
