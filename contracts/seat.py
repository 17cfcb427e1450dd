"""Inputs and outputs of SeatWorkflow (the seed's Scheduled Task, made durable: one long-poll
loop per signed-in seat of a polled channel) and its activities."""

from __future__ import annotations

from datetime import timedelta
from typing import NoReturn

from pydantic import BaseModel
from temporalio import activity
from temporalio.common import RetryPolicy

from channels.events import CallEvent, SeatContext, SeatPoll, SeatRing

SEAT_WORKFLOW = "SeatWorkflow"
CLAIM_SEAT_UPDATE = "claim"  # a call needs the seat, signed in with its agent's phone
RELEASE_SEAT_SIGNAL = "release"  # the call is over: the seat may go idle
# The vendor routed an inbound call to the seat (its poll saw it ring): that call holds the
# seat now, as a claim would (a SeatClaim; released like any claim).
INBOUND_CALL_SIGNAL = "inbound_call"
# The claim failed (the seat cannot be signed in): the call tries another channel.
SEAT_UNAVAILABLE = "SeatUnavailable"

# A seat's poll runs in one worker. If that worker dies, the gateway keeps the seat's events
# for the next poll, and Temporal starts the poll again once its heartbeat is overdue, after
# the retry's first interval: until then nobody hears the seat. A wait for one of its events
# (a place request whose outcome is unknown) counts from then.
POLL_HEARTBEAT_TIMEOUT = timedelta(seconds=30)
POLL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)
)
POLL_RESUMED_WITHIN = POLL_HEARTBEAT_TIMEOUT + POLL_RETRY.initial_interval


def seat_workflow_id(channel: str, seat: str) -> str:
    return f"seat-{channel}-{seat}"


class SeatClaim(BaseModel):
    cc_call_id: str
    phonenum: str  # the agent's phone the seat rings (a callback's leg A), E.164


class UnstoredPoll(BaseModel):
    """A poll's answer the store could not take yet (the database down): the gateway gives
    an event once, so it is kept, in order, and stored before any later one."""

    events: list[CallEvent]
    rings: list[SeatRing] = []  # inbound calls the vendor rang the seat with
    raw: str = ""  # the vendor's answer as it came (JSON text)
    context: SeatContext  # the parser's, after this answer

    @classmethod
    def of(cls, polled: SeatPoll) -> UnstoredPoll:
        raw = polled.raw.decode("utf-8", errors="replace")
        return cls(events=polled.events, rings=polled.rings, raw=raw, context=polled.context)


class SeatTimers(BaseModel):
    idle_s: float = 300.0  # signed out after this long without a call
    poll_run_s: float = 300.0  # one poll activity's life (bounds the workflow's history)


class SeatInput(BaseModel):
    channel: str
    seat: str
    timers: SeatTimers = SeatTimers()
    # Carried over continue-as-new.
    current: SeatClaim | None = None
    signed_in_phone: str | None = None
    context: SeatContext = SeatContext()
    idle_since_ms: int | None = None
    unstored: list[UnstoredPoll] = []


class ClaimSeatInput(BaseModel):
    channel: str
    seat: str
    claim: SeatClaim
    timers: SeatTimers
    task_queue: str


class SignInInput(BaseModel):
    channel: str
    seat: str
    phonenum: str


class SignOutInput(BaseModel):
    channel: str
    seat: str


class PollSeatInput(BaseModel):
    channel: str
    seat: str
    phonenum: str
    run_s: float
    context: SeatContext
    unstored: list[UnstoredPoll] = []  # the last poll's leftovers: stored first


class PollSeatResult(BaseModel):
    context: SeatContext
    signed_out: bool = False  # the session was lost (100-006, a gateway failover): sign in
    unstored: list[UnstoredPoll] = []  # polled, not stored yet (the store is down)


class ReconcileSeatInput(BaseModel):
    channel: str
    seat: str
    cc_call_id: str  # the call the seat was on when its session was lost


# -- the activities' signatures (activities/seats.py implements them) -----------------------
def _stub() -> NoReturn:
    raise NotImplementedError("a signature only: the worker runs the implementation")


@activity.defn(name="claim_seat")
async def claim_seat(inp: ClaimSeatInput) -> None:
    """Run by CallWorkflow: ask the seat's SeatWorkflow (started if need be) for the seat;
    returns once it is signed in with the call's agent phone and polled."""
    _stub()


@activity.defn(name="sign_in_seat")
async def sign_in_seat(inp: SignInInput) -> None:
    """Sign the seat in with ``phonenum`` (force sign-in if it is signed in elsewhere)."""
    _stub()


@activity.defn(name="sign_out_seat")
async def sign_out_seat(inp: SignOutInput) -> None:
    """Sign the seat out (idle past ``idle_s``); a seat signed out already, by the gateway
    or an operator, is fine."""
    _stub()


@activity.defn(name="poll_seat")
async def poll_seat(inp: PollSeatInput) -> PollSeatResult:
    """Long-poll the seat for ``run_s``: one poll in flight at a time, each event stored in
    the inbox, then signalled to its call; ends early (``signed_out``) when the gateway lost
    the seat's session. An inbound call the vendor rang the seat with becomes a record and a
    CallWorkflow of its own (once), and holds the seat (``INBOUND_CALL_SIGNAL``) until it
    ends."""
    _stub()


@activity.defn(name="reconcile_seat")
async def reconcile_seat(inp: ReconcileSeatInput) -> None:
    """After a lost session: a seat no longer busy ended its call unseen; close that call
    with what is known."""
    _stub()
