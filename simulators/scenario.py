"""The vendor-neutral phone network every simulator fakes.

The last two digits of a leg's number pick its fate: 81 busy, 82 no answer (ring timeout),
83 unreachable, 84 rejects while ringing, 85 never hangs up (the call runs to max duration);
anything else answers after ``ring_ms`` and, once bridged, talks ``talk_ms`` before B hangs up.
A customer calling a 400 number is leg A of an inbound call, on the line from the start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, Field

from core.aio import wait_set
from core.types import EventKind

log = logging.getLogger("cc.sim")


class Step(StrEnum):
    """A moment of a call on the phone network, valued as the CC event kind it stands for
    (every kind but ``recording_ready``, which is no moment of the call itself)."""

    A_DIALING = EventKind.A_DIALING
    A_RINGING = EventKind.A_RINGING
    A_ANSWERED = EventKind.A_ANSWERED
    B_DIALING = EventKind.B_DIALING
    B_RINGING = EventKind.B_RINGING
    B_ANSWERED = EventKind.B_ANSWERED
    BRIDGED = EventKind.BRIDGED
    HANGUP = EventKind.HANGUP


class Reason(StrEnum):
    A_HUNG_UP = "a_hung_up"
    B_HUNG_UP = "b_hung_up"
    A_NO_ANSWER = "a_no_answer"
    A_BUSY = "a_busy"
    A_UNREACHABLE = "a_unreachable"
    B_NO_ANSWER = "b_no_answer"
    B_BUSY = "b_busy"
    B_UNREACHABLE = "b_unreachable"
    MAX_DURATION = "max_duration"
    VENDOR_ERROR = "vendor_error"
    CANCELLED = "cancelled"


class Timing(BaseModel):
    ring_ms: int = Field(default=1000, ge=0)
    talk_ms: int = Field(default=3000, ge=0)
    no_answer_ms: int = Field(default=3000, ge=0)
    recording_delay_ms: int = Field(default=2000, ge=0)
    recording_ttl_ms: int = Field(default=3_600_000, ge=0)


@dataclass(frozen=True)
class Beat:
    after_ms: int  # wait this long after the previous beat
    step: Step
    reason: Reason | None = None


# fate → (reason if leg A fails, reason if leg B fails)
_FAILURES = {
    "81": (Reason.A_BUSY, Reason.B_BUSY),
    "82": (Reason.A_NO_ANSWER, Reason.B_NO_ANSWER),
    "83": (Reason.A_UNREACHABLE, Reason.B_UNREACHABLE),
    "84": (Reason.A_BUSY, Reason.B_BUSY),  # rejected while ringing: reported as busy
}
_NEVER_HANGS_UP = "85"


def _leg(leg: str, number: str, timing: Timing) -> list[Beat]:
    """The beats of one leg up to its answer, or to the hangup when it fails."""
    dialing, ringing, answered = (Step(f"{leg}_{s}") for s in ("dialing", "ringing", "answered"))
    fate = number[-2:]
    ring_start = max(1, timing.ring_ms // 4)
    if fate in ("81", "83"):
        reason = _FAILURES[fate][0 if leg == "a" else 1]
        return [Beat(0, dialing), Beat(ring_start, Step.HANGUP, reason)]
    if fate in ("82", "84"):
        reason = _FAILURES[fate][0 if leg == "a" else 1]
        wait = timing.no_answer_ms if fate == "82" else max(1, timing.ring_ms // 2)
        return [Beat(0, dialing), Beat(ring_start, ringing), Beat(wait, Step.HANGUP, reason)]
    return [Beat(0, dialing), Beat(ring_start, ringing), Beat(timing.ring_ms, answered)]


def timeline(a_number: str, b_number: str, timing: Timing, max_call_s: int) -> list[Beat]:
    """Every beat of one callback call, from dialling A to the hangup."""
    beats = _leg("a", a_number, timing)
    if beats[-1].step is Step.HANGUP:
        return beats
    return beats + _after_a(a_number, b_number, timing, max_call_s)


def inbound_timeline(customer: str, agent: str, timing: Timing, max_call_s: int) -> list[Beat]:
    """Every beat of a customer's call to a 400 number, once the vendor dials the agent: the
    customer (leg A) is on the line already, so A is dialled and answered at once; the agent
    (leg B) has the fate of its number's last two digits, as in a callback call."""
    beats = [Beat(0, Step.A_DIALING), Beat(0, Step.A_ANSWERED)]
    return beats + _after_a(customer, agent, timing, max_call_s)


def _after_a(a_number: str, b_number: str, timing: Timing, max_call_s: int) -> list[Beat]:
    """Leg B's beats, then the bridge and the hangup, once leg A answered."""
    beats = _leg("b", b_number, timing)
    if beats[-1].step is Step.HANGUP:
        return beats
    beats.append(Beat(0, Step.BRIDGED))
    endless = _NEVER_HANGS_UP in (a_number[-2:], b_number[-2:])
    limit_ms = max_call_s * 1000 if max_call_s > 0 else None
    if limit_ms is not None and (endless or timing.talk_ms >= limit_ms):
        beats.append(Beat(limit_ms, Step.HANGUP, Reason.MAX_DURATION))
    elif endless:
        beats.append(Beat(24 * 3600 * 1000, Step.HANGUP, Reason.MAX_DURATION))
    else:
        beats.append(Beat(timing.talk_ms, Step.HANGUP, Reason.B_HUNG_UP))
    return beats


async def play(
    beats: list[Beat], on_beat: Callable[[Beat], Awaitable[None]], cancel: asyncio.Event
) -> Beat:
    """Walk the beats in real time; a set ``cancel`` ends the call at once. Returns the hangup.

    A beat that fails is logged and ends the call as a vendor error (a hang-up is still
    played): a call never stays up forever because its scenario broke.
    """
    for beat in beats:
        if beat.after_ms:
            await wait_set(cancel, beat.after_ms / 1000)
        if cancel.is_set():
            beat = Beat(0, Step.HANGUP, Reason.CANCELLED)
        try:
            await on_beat(beat)
        except Exception:
            log.exception("a simulated call failed at %s", beat.step)
            if beat.step is Step.HANGUP:
                return beat
            return await _fail(on_beat)
        if beat.step is Step.HANGUP:
            return beat
    log.error("a timeline without a hangup: ending the call as a vendor error")
    return await _fail(on_beat)


async def _fail(on_beat: Callable[[Beat], Awaitable[None]]) -> Beat:
    """End a broken call with a vendor-error hang-up (logged if even that fails)."""
    end = Beat(0, Step.HANGUP, Reason.VENDOR_ERROR)
    try:
        await on_beat(end)
    except Exception:
        log.exception("a simulated call could not even hang up")
    return end
