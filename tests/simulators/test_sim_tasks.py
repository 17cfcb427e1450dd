"""No simulated call is left up forever: background tasks are kept and a broken scenario
still hangs up (issue 9, item 12: 3 of 300 e9 calls stayed ``talking``)."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from typing import Any

import pytest

from channels.registry import Settings
from simulators import hw as hw_sim
from simulators import hw_events
from simulators.common import SimState
from simulators.e9 import E9Simulator, SimCall
from simulators.hw import HwGatewaySimulator as HwSimulator
from simulators.hw_events import HwCall
from simulators.jy import JySimulator
from simulators.jy_calls import JyCall
from simulators.scenario import Beat, Reason, Step, Timing, play, timeline
from tests.support import wait_for

FAST = Timing(ring_ms=4, talk_ms=10, no_answer_ms=8, recording_delay_ms=0)


async def test_a_failing_beat_still_ends_the_call_as_a_vendor_error() -> None:
    seen: list[Beat] = []

    async def on_beat(beat: Beat) -> None:
        seen.append(beat)
        if beat.step is Step.BRIDGED:
            raise RuntimeError("broken")

    end = await play(timeline("+8613800000001", "+8613900000002", FAST, 60), on_beat,
                     asyncio.Event())  # fmt: skip
    assert end == Beat(0, Step.HANGUP, Reason.VENDOR_ERROR)
    assert [b.step for b in seen][-2:] == [Step.BRIDGED, Step.HANGUP]


async def test_a_beat_handler_that_always_fails_still_returns() -> None:
    async def on_beat(beat: Beat) -> None:
        raise RuntimeError("broken")

    end = await play(timeline("+8613800000001", "+8613900000002", FAST, 60), on_beat,
                     asyncio.Event())  # fmt: skip
    assert end.step is Step.HANGUP


async def test_spawn_keeps_every_task_and_logs_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    state = SimState()

    async def fail() -> None:
        raise RuntimeError("scenario bug")

    state.spawn(fail())
    assert len(state.tasks) == 1  # held until done: the loop itself only keeps a weak ref
    with caplog.at_level(logging.ERROR, logger="cc.sim"):
        await wait_for(lambda: _true(not state.tasks), 5, "the task to finish")
    assert "scenario bug" in caplog.text


async def _true(value: bool) -> bool:
    return value


def settings() -> Settings:
    return Settings(e9_base_url="http://127.0.0.1:1", jy_base_url="http://127.0.0.1:1",
                    hw_base_url="http://127.0.0.1:1")  # fmt: skip


def e9_calls(n: int) -> tuple[E9Simulator, list[SimCall]]:
    sim = E9Simulator(settings())
    sim.sim.timing = FAST
    sim.sim.faults.delivery.drop = 1.0  # no receiver: events are logged as dropped
    calls = []
    for i in range(n):
        body = {
            "from": "+8613800000001",
            "to": "+8613900000002",
            "maxCallTime": "60",
            "needRecord": "1",
            "userData": f"load-{i}",
            "statusUrl": "http://cc/hook",
        }
        calls.append(SimCall(sid=f"S{i}", body=body, created=0))
    return sim, calls


def hangups(state: SimState) -> list[dict[str, Any]]:
    bodies = [json.loads(e["body"]) for e in state.events]
    return [b for b in bodies if b["event"] == "hangup"]


async def test_300_concurrent_e9_calls_all_end() -> None:
    sim, calls = e9_calls(300)
    for call in calls:
        sim.sim.spawn(sim.run_call(call))
    gc.collect()  # a task nobody holds would be collected here

    async def all_ended() -> bool:
        return all(call.state == "ended" for call in calls) and not sim.sim.tasks

    await wait_for(all_ended, 20, "every call to end")
    assert len(hangups(sim.sim)) == 300
    assert {call.byetype for call in calls} == {1}


async def test_an_e9_call_whose_scenario_breaks_still_hangs_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim, [call] = e9_calls(1)
    send = sim.send_event

    def broken(call: SimCall, beat: Beat, at: int) -> None:
        if beat.step is Step.BRIDGED:
            raise RuntimeError("scenario bug")
        send(call, beat, at)

    monkeypatch.setattr(sim, "send_event", broken)
    await asyncio.wait_for(sim.run_call(call), 5)
    assert (call.state, call.byetype) == ("ended", -8)
    [hangup] = hangups(sim.sim)
    assert hangup["byetype"] == -8 and hangup["userData"] == "load-0"
    assert call.result()["state"] == "ended"


async def test_a_jy_call_whose_scenario_breaks_still_hangs_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = JySimulator(settings())
    sim.sim.timing = FAST
    sim.sim.faults.delivery.drop = 1.0
    form = {"To": "+8613800000001", "BridgeTo": "+8613900000002", "TimeLimit": "x",
            "StatusCallback": "http://cc/hook", "Tag": "jy-broken"}  # fmt: skip
    call = JyCall(sid="CA1", form=form, created=0)
    original = sim.callback

    def broken(call: JyCall, leg: str, status: str, sip: str, at: int) -> None:
        if (leg, status) == ("B", "in-progress"):
            raise RuntimeError("scenario bug")
        original(call, leg, status, sip, at)

    monkeypatch.setattr(sim, "callback", broken)
    await asyncio.wait_for(sim.run_call(call), 5)
    assert call.ended_at is not None and call.status in ("failed", "completed")
    assert any("CallStatus=failed" in e["body"] for e in sim.sim.events)


async def test_an_hw_call_whose_scenario_breaks_still_hangs_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = HwSimulator(settings())
    sim.sim.timing = FAST
    seat = sim.desk.seats["10001"]
    call = HwCall(call_id="1-1", seq=1, seat="10001", phonenum="8613800000001",
                  called="13900000002", caller="", callappdata="hw-broken", created=0)  # fmt: skip
    seat.call = call

    def broken(call: HwCall, beat: Beat, at: int, record: bool) -> list[Any]:
        if beat.step is Step.BRIDGED:
            raise RuntimeError("scenario bug")
        return hw_events.call_events(call, beat, at, record)

    monkeypatch.setattr(hw_sim, "call_events", broken)
    await asyncio.wait_for(sim.run_call(seat, call), 5)
    assert call.ended_at is not None and call.reason is Reason.VENDOR_ERROR
    assert seat.call is None  # the seat is free for the next call
