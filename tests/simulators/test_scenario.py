"""The scenario engine: which beats each number's last two digits produce."""

from __future__ import annotations

import asyncio

import pytest

from simulators.scenario import Beat, Reason, Step, Timing, inbound_timeline, play, timeline

T = Timing(ring_ms=100, talk_ms=1000, no_answer_ms=500)
NORMAL_A, NORMAL_B = "+8613800000001", "+8613900000002"


def steps(beats: list[Beat]) -> list[Step]:
    return [b.step for b in beats]


def test_normal_call_walks_every_step_and_b_hangs_up() -> None:
    beats = timeline(NORMAL_A, NORMAL_B, T, max_call_s=60)
    assert steps(beats) == list(Step)
    assert beats[-1] == Beat(1000, Step.HANGUP, Reason.B_HUNG_UP)


@pytest.mark.parametrize(
    ("a", "b", "reason", "last_before_hangup"),
    [
        ("+8613800000081", NORMAL_B, Reason.A_BUSY, Step.A_DIALING),
        ("+8613800000082", NORMAL_B, Reason.A_NO_ANSWER, Step.A_RINGING),
        ("+8613800000083", NORMAL_B, Reason.A_UNREACHABLE, Step.A_DIALING),
        ("+8613800000084", NORMAL_B, Reason.A_BUSY, Step.A_RINGING),
        (NORMAL_A, "+8613900000081", Reason.B_BUSY, Step.B_DIALING),
        (NORMAL_A, "+8613900000082", Reason.B_NO_ANSWER, Step.B_RINGING),
        (NORMAL_A, "+8613900000083", Reason.B_UNREACHABLE, Step.B_DIALING),
        (NORMAL_A, "+8613900000084", Reason.B_BUSY, Step.B_RINGING),
    ],
)
def test_failing_leg_ends_the_call(
    a: str, b: str, reason: Reason, last_before_hangup: Step
) -> None:
    beats = timeline(a, b, T, max_call_s=60)
    assert beats[-1].reason is reason
    assert beats[-2].step is last_before_hangup
    assert Step.BRIDGED not in steps(beats)


def test_no_answer_waits_the_ring_timeout() -> None:
    assert timeline(NORMAL_A, "+8613900000082", T, 60)[-1].after_ms == T.no_answer_ms


def test_85_talks_until_max_duration_after_bridge() -> None:
    beats = timeline(NORMAL_A, "+8613900000085", T, max_call_s=7)
    assert beats[-2].step is Step.BRIDGED
    assert beats[-1] == Beat(7000, Step.HANGUP, Reason.MAX_DURATION)


def test_max_duration_cuts_a_long_talk() -> None:
    assert timeline(NORMAL_A, NORMAL_B, T, max_call_s=1)[-1].reason is Reason.MAX_DURATION


async def test_cancel_ends_the_call_at_once() -> None:
    seen: list[Beat] = []
    cancel = asyncio.Event()

    async def on_beat(beat: Beat) -> None:
        seen.append(beat)
        if beat.step is Step.BRIDGED:
            cancel.set()

    long_talk = Timing(ring_ms=4, talk_ms=3_600_000)
    end = await play(timeline(NORMAL_A, NORMAL_B, long_talk, 0), on_beat, cancel)
    assert end.reason is Reason.CANCELLED
    assert steps(seen)[-2:] == [Step.BRIDGED, Step.HANGUP]


def test_an_inbound_customer_is_on_the_line_at_once() -> None:
    """A customer calling a 400 number (leg A) is dialled and answered at once; the agent
    (leg B) then walks the outbound leg's beats, and the call ends as a callback call."""
    beats = inbound_timeline(NORMAL_A, NORMAL_B, T, max_call_s=60)
    assert beats[:2] == [Beat(0, Step.A_DIALING), Beat(0, Step.A_ANSWERED)]
    assert beats[2:] == timeline(NORMAL_A, NORMAL_B, T, max_call_s=60)[3:]
    assert Step.A_RINGING not in steps(beats)


@pytest.mark.parametrize(
    ("agent", "reason"),
    [("+8613900000081", Reason.B_BUSY), ("+8613900000082", Reason.B_NO_ANSWER),
     ("+8613900000083", Reason.B_UNREACHABLE), ("+8613900000084", Reason.B_BUSY)],
)  # fmt: skip
def test_an_inbound_agent_has_the_fate_of_its_number(agent: str, reason: Reason) -> None:
    beats = inbound_timeline("+8613800000081", agent, T, max_call_s=60)  # A's digits: no fate
    assert beats[-1].reason is reason and Step.BRIDGED not in steps(beats)


def test_an_inbound_call_without_a_limit_runs_until_85_hangs_up() -> None:
    assert inbound_timeline(NORMAL_A, NORMAL_B, T, max_call_s=0)[-1].reason is Reason.B_HUNG_UP
    endless = inbound_timeline("+8613800000085", NORMAL_B, T, max_call_s=0)[-1]
    assert endless.reason is Reason.MAX_DURATION and endless.after_ms == 24 * 3600 * 1000
