"""A polled vendor's seat faults, told apart: the vendor failing (it counts against the
channel's health, reported as a failed placement would be) or the seat itself refused (one
tenant's line, taken out of service; never the channel's fault), and the one way a refused
claim is said to the call."""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from channels.errors import (
    ChannelError,
    PollInFlight,
    SeatRefused,
    VendorNetworkError,
    VendorRateLimited,
    VendorServerError,
)
from contracts.errors import NETWORK_ERROR, SERVER_ERROR
from contracts.health import PlacementOutcome
from contracts.ids import HEALTH_WORKFLOW_ID, PLACEMENT_SIGNAL
from contracts.seat import (
    SEAT_UNAVAILABLE,
)
from store import lines
from store.db import session_scope

log = logging.getLogger("cc.activities.seats")


def vendor_failing(exc: ChannelError) -> bool:
    """Whether an error is the vendor itself failing (5xx, an unreadable answer, no answer):
    only those count against the channel's health. A refusal (``VendorRejected``: a seat's
    wrong password, a seat taken elsewhere, a bad agent phone) is one tenant's to mend, a
    poll refused for another in flight is CC's own doing, and a 429 is back-pressure."""
    failing = isinstance(exc, VendorServerError | VendorNetworkError)
    return failing and not isinstance(exc, PollInFlight | VendorRateLimited)


def out_of_service_message(channel: str, seat: str, reason: str) -> str:
    return f"line {channel} {seat} is out of service: {reason}"


def refuse_seat(engine: Engine, channel: str, seat: str, exc: SeatRefused) -> str:
    """The gateway refused the seat itself (``SeatRefused``): take its line out of service, as
    100-015 always did (no call is routed to it until an operator puts it back; the tenant's
    other lines, and every other tenant's, are untouched), and say why, once, for the call.
    Best effort: the refusal stands whether or not the store took it."""
    reason = f"seat refused: {exc}"
    try:
        with session_scope(engine) as session:
            lines.take_out_of_service(session, channel, seat, reason)
    except Exception:  # noqa: BLE001 - the store is down: the next sign-in is refused again
        log.warning("line not taken out of service channel=%s seat=%s", channel, seat)
    else:
        log.warning("line out of service channel=%s seat=%s: %s", channel, seat, reason)
    return out_of_service_message(channel, seat, reason)


def claim_refusal(cause: BaseException | None) -> ApplicationError:
    """The claim's failure as this activity raises it: ``SEAT_UNAVAILABLE`` when the seat was
    refused (its sign-in's own type, which SeatWorkflow keeps as the prefix of its reason),
    else the sign-in failed (the vendor failing, a timeout): ``SERVER_ERROR``. Each hop of a
    refusal (sign-in activity, SeatWorkflow's update, this activity) would prefix the type
    once more ("SeatUnavailable: SeatUnavailable: ..."): the reason is said once."""
    text = cause.message if isinstance(cause, ApplicationError) else str(cause or "")
    kind, prefix = SERVER_ERROR, f"{SEAT_UNAVAILABLE}: "
    while text.startswith(prefix):
        kind, text = SEAT_UNAVAILABLE, text[len(prefix) :]
    head, colon, rest = text.partition(": ")
    if kind == SERVER_ERROR and colon and head in (SERVER_ERROR, NETWORK_ERROR):
        kind, text = head, rest  # the vendor failing, as the sign-in said it
    text = text or "the seat could not be signed in"
    return ApplicationError(text, type=kind, non_retryable=True)


async def report_failure(channel: str, reason: str) -> None:
    """A polled channel's sessions failing is the channel failing: tell ChannelHealthWorkflow
    as a failed placement would (its circuit opens after CC_HEALTH_FAILURES_TO_OPEN)."""
    outcome = PlacementOutcome(channel=channel, ok=False, reason=reason[:200])
    health = activity.client().get_workflow_handle(HEALTH_WORKFLOW_ID)
    try:
        await health.signal(PLACEMENT_SIGNAL, outcome)
    except Exception:  # noqa: BLE001 - health not running: the seat goes on all the same
        log.warning("health not told of failing channel=%s", channel)
