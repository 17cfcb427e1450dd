"""Channel hw against the CC-Gateway simulator: seats, guids, callouts, parsed call events."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from channels.errors import (
    RecordingNotReady,
    SeatRefused,
    SeatSignedOut,
    SeatTaken,
    VendorNetworkError,
    VendorOutcomeUnknown,
    VendorRejected,
    VendorServerError,
)
from channels.events import CallEvent, PlaceCallRequest, SeatContext, SeatLogin, SeatStatus
from channels.hw import HwChannel, HwSettings, build
from channels.hw_session import dial
from channels.protocols import MemorySessions, PolledChannel
from core.types import CloseType, EventKind
from tests.simulators.hw_support import BASE, PASSWORD, hw_simulator

SEAT = "10001"
PHONE, B, SHOWN = "+8613800000001", "+8613900000002", "+861088000100"
LOGIN = SeatLogin(seat=SEAT, password="", phonenum=PHONE)  # "": the channel's default password
NORMAL = [EventKind.A_DIALING, EventKind.A_RINGING, EventKind.A_ANSWERED, EventKind.B_DIALING,
          EventKind.B_RINGING, EventKind.B_ANSWERED, EventKind.BRIDGED,
          EventKind.RECORDING_READY]  # fmt: skip


@dataclass
class Rig:
    control: httpx.AsyncClient
    transport: httpx.ASGITransport
    sessions: MemorySessions
    hw: HwChannel

    def worker(self) -> HwChannel:
        """Another process's channel: the same gateway and SessionStore, its own client."""
        return HwChannel(BASE, PASSWORD, self.sessions, transport=self.transport)

    async def gateway(self, **config: Any) -> dict[str, Any]:
        answer = await self.control.request("PUT" if config else "GET", "/_sim/gateway",
                                            json=config or None)  # fmt: skip
        return dict(answer.json())

    async def seat(self) -> dict[str, Any]:
        return next(s for s in (await self.gateway())["seats"] if s["workno"] == SEAT)

    async def calls(self) -> list[dict[str, Any]]:
        return list((await self.control.get("/_sim/calls")).json())

    async def requests(self, suffix: str) -> int:
        log = (await self.control.get("/_sim/log")).json()["requests"]
        return sum(1 for r in log if r["path"].endswith(suffix))

    async def guid(self) -> str:
        return str(json.loads(await self.sessions.load("hw", f"seat:{SEAT}") or "{}")["guid"])


@dataclass
class Polled:
    events: list[CallEvent]
    types: list[str]
    context: SeatContext

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.events]

    def hangups(self) -> list[CallEvent]:
        """The call's ends, once per dedupe key (as the inbox keeps them)."""
        ends = {e.dedupe_key: e for e in reversed(self.events) if e.kind is EventKind.HANGUP}
        return list(ends.values())


async def follow(rig: Rig, context: SeatContext, hw: HwChannel | None = None) -> Polled:
    """Poll the seat until its call is over and every event of it was taken."""
    polled = Polled([], [], context)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = await (hw or rig.hw).poll_seat(LOGIN, polled.context)
        polled.context, polled.events = answer.context, polled.events + answer.events
        if event := json.loads(answer.raw)["event"]:
            polled.types.append(event["eventType"])
        seat = await rig.seat()
        if seat["callid"] is None and seat["queued"] == 0:
            return polled
    raise AssertionError(f"the call did not end: {polled.types}")


async def signed_in(rig: Rig, phone: str = PHONE) -> SeatContext:
    """Sign the seat in and take its first two events (no call events among them)."""
    await rig.hw.sign_in(LOGIN.model_copy(update={"phonenum": phone}))
    context = SeatContext()
    for expected in ("AgentOther_InService", "AgentState_Ready"):
        polled = await rig.hw.poll_seat(LOGIN, context)
        assert json.loads(polled.raw)["event"]["eventType"] == expected and not polled.events
        context = polled.context
    return context


def request(cc_id: str = "cc-1", called: str = B) -> PlaceCallRequest:
    return PlaceCallRequest(cc_call_id=cc_id, caller=PHONE, called=called, display_to_a=SHOWN,
                            display_to_b=SHOWN, agent=SEAT, max_duration_s=60)  # fmt: skip


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with hw_simulator() as (control, transport):
        sessions = MemorySessions()
        hw = HwChannel(BASE, PASSWORD, sessions, transport=transport)
        rig = Rig(control, transport, sessions, hw)
        await rig.gateway(poll_hold_ms=200)
        yield rig
        await hw.aclose()


def test_build_and_kind() -> None:
    channel = build(HwSettings(hw_base_url=BASE))
    assert isinstance(channel, PolledChannel)
    assert HwSettings().hw_poll_timeout_s > 10 and HwSettings().hw_seat_idle_s == 300


@pytest.mark.parametrize(("number", "digits"), [
    ("+8613900000002", "13900000002"), ("+861088000100", "01088000100"),
    ("+864001234567", "4001234567"), ("+16502530000", "0016502530000"), ("70001", "70001"),
])  # fmt: skip
def test_numbers_are_dialled_as_national_digits(number: str, digits: str) -> None:
    assert dial(number, "CN") == digits


# -- sessions -----------------------------------------------------------------------------
async def test_sign_in_keeps_the_guid_and_cookie_and_forces_a_second_sign_in(rig: Rig) -> None:
    await signed_in(rig)
    session = json.loads(await rig.sessions.load("hw", f"seat:{SEAT}") or "")
    assert session["guid"].endswith(".AgentGateway1") and session["cookies"]["AGW_ROUTE"]
    assert (await rig.seat())["phonenum"] == "13800000001"
    assert await rig.hw.seat_status(SEAT) is SeatStatus.IDLE
    other = rig.worker()
    await other.sign_in(LOGIN)  # already signed in: 100-002, then forcelogin
    assert await rig.requests("/forcelogin") == 1 and await rig.guid() != session["guid"]
    await other.aclose()


async def test_sign_in_refusals(rig: Rig) -> None:
    with pytest.raises(SeatRefused) as wrong:
        await rig.hw.sign_in(LOGIN.model_copy(update={"password": "wrong"}))
    assert wrong.value.code == "100-004" and not isinstance(wrong.value, SeatTaken)
    await rig.control.put("/_sim/faults", json={"gateway": "seat_taken"})
    with pytest.raises(SeatRefused) as taken:
        await rig.hw.sign_in(LOGIN)
    assert taken.value.code == "100-015"
    assert isinstance(taken.value, SeatTaken)  # only this seat's line leaves service


async def test_the_guid_rotates_mid_call_and_every_answer_keeps_up(rig: Rig) -> None:
    await rig.gateway(guid_interval_ms=50, guid_grace_ms=120)
    context = await signed_in(rig)
    first = await rig.guid()
    await rig.hw.place_call(request(called=B[:-2] + "85"))  # talks until released
    polled = await follow_until(rig, context, "AgentEvent_Talking")
    assert await rig.guid() != first
    await rig.hw.hangup((await rig.calls())[0]["callid"])
    polled = await follow(rig, polled.context)
    assert polled.hangups()[0].close_type is CloseType.NORMAL
    assert await rig.requests("/forcelogin") == 0  # never stale: the newest guid was used


async def follow_until(rig: Rig, context: SeatContext, event_type: str) -> Polled:
    polled = Polled([], [], context)
    while event_type not in polled.types:
        answer = await rig.hw.poll_seat(LOGIN, polled.context)
        polled.context, polled.events = answer.context, polled.events + answer.events
        if event := json.loads(answer.raw)["event"]:
            polled.types.append(event["eventType"])
    return polled


async def test_a_stale_guid_is_retried_then_the_seat_signs_in_again(rig: Rig) -> None:
    context = await signed_in(rig)
    await rig.control.put("/_sim/faults", json={"gateway": "guid_expired"})  # 000-003 once
    await rig.hw.poll_seat(LOGIN, context)
    assert await rig.requests(f"/onlineagent/{SEAT}") == 1  # the retry did it
    session = json.loads(await rig.sessions.load("hw", f"seat:{SEAT}") or "")
    await rig.sessions.save("hw", f"seat:{SEAT}", json.dumps(session | {"guid": "gone"}))
    polled = await rig.hw.poll_seat(LOGIN, context)  # stale twice: forcelogin, poll again
    assert await rig.requests("/forcelogin") == 1
    assert json.loads(polled.raw)["event"]["eventType"] == "AgentOther_InService"


async def test_a_lost_session_raises_seat_signed_out(rig: Rig) -> None:
    with pytest.raises(SeatSignedOut):  # 100-006: never signed in
        await rig.hw.poll_seat(LOGIN, SeatContext())
    assert await rig.hw.seat_status(SEAT) is SeatStatus.SIGNED_OUT
    await signed_in(rig)
    await rig.control.put("/_sim/faults", json={"gateway": "failover"})
    with pytest.raises(SeatSignedOut):  # 105-006
        await rig.hw.poll_seat(LOGIN, SeatContext())
    with pytest.raises(VendorServerError):  # a refused callout placed nothing
        await rig.hw.place_call(request())
    await rig.hw.sign_in(LOGIN)
    assert await rig.hw.seat_status(SEAT) is SeatStatus.IDLE
    await rig.hw.sign_out(SEAT)
    await rig.hw.sign_out(SEAT)  # already signed out: fine
    assert await rig.hw.seat_status(SEAT) is SeatStatus.SIGNED_OUT


# -- calls --------------------------------------------------------------------------------
async def test_a_callout_sends_national_digits_and_cc_s_id(rig: Rig) -> None:
    context = await signed_in(rig)
    placed = await rig.hw.place_call(request("cc-42"))
    [call] = await rig.calls()
    assert (call["callid"], call["called"], call["caller"], call["callappdata"]) == (
        placed.vendor_call_id, "13900000002", "01088000100", "cc-42")  # fmt: skip
    assert await rig.sessions.load("hw", f"call:{placed.vendor_call_id}") == SEAT
    assert await rig.hw.seat_status(SEAT) is SeatStatus.BUSY  # the seat's phone rings
    polled = await follow(rig, context)
    kinds = polled.kinds()
    assert kinds[: len(NORMAL)] == NORMAL and set(kinds[len(NORMAL) :]) == {EventKind.HANGUP}
    assert [e.close_type for e in polled.hangups()] == [CloseType.NORMAL]
    assert all(e.cc_call_id is None for e in polled.events)
    assert {e.vendor_call_id for e in polled.events[3:]} == {placed.vendor_call_id}
    assert all(e.ch_state for e in polled.events)
    assert len({e.dedupe_key for e in polled.events}) == len(NORMAL) + 1  # one end per call
    assert await rig.hw.seat_status(SEAT) is SeatStatus.IDLE
    assert await rig.hw.call_result(placed.vendor_call_id, "cc-42") == []
    with pytest.raises(VendorRejected) as bad:
        await rig.hw.place_call(request(called=""))
    assert bad.value.code == "200-001"


@pytest.mark.parametrize(("phone", "called", "close_type"), [
    (PHONE[:-2] + "81", B, CloseType.A_BUSY), (PHONE[:-2] + "82", B, CloseType.A_UNREACHABLE),
    (PHONE, B[:-2] + "81", CloseType.B_BUSY), (PHONE, B[:-2] + "82", CloseType.B_UNREACHABLE),
    (PHONE, B[:-2] + "83", CloseType.B_UNREACHABLE), (PHONE, B[:-2] + "84", CloseType.B_BUSY),
])  # fmt: skip
async def test_a_failed_leg_closes_with_its_cause(
    rig: Rig, phone: str, called: str, close_type: CloseType
) -> None:
    context = await signed_in(rig, phone)
    await rig.hw.place_call(request(called=called))
    polled = await follow(rig, context)
    assert "OUTBOUND_DETECT_EVENT" in polled.types  # the simulator's first call shows it
    assert [e.close_type for e in polled.hangups()] == [close_type]
    a_failed = close_type in (CloseType.A_BUSY, CloseType.A_UNREACHABLE)
    assert (EventKind.A_ANSWERED in polled.kinds()) is not a_failed
    assert EventKind.A_DIALING in polled.kinds() and EventKind.BRIDGED not in polled.kinds()
    assert (EventKind.B_DIALING in polled.kinds()) is not a_failed
    assert polled.context.vendor_call_id is None or a_failed  # Ready starts afresh


async def test_both_release_orders_give_one_normal_hangup(rig: Rig) -> None:
    context = await signed_in(rig)
    orders = []
    for cc_id in ("cc-1", "cc-2"):
        await rig.hw.place_call(request(cc_id))
        polled = await follow(rig, context)
        context = polled.context
        orders.append([t for t in polled.types if t.endswith("_Release")])
        [end] = polled.hangups()  # both releases and the phone's on-hook: one key
        assert end.close_type is CloseType.NORMAL
        assert end.at == min(e.at for e in polled.events if e.kind is EventKind.HANGUP)
    assert orders[0][:2] == orders[1][1::-1]


async def test_a_duplicated_event_keeps_its_dedupe_key(rig: Rig) -> None:
    context = await signed_in(rig)
    await rig.control.put("/_sim/faults", json={"delivery": {"duplicate": 1.0}})
    await rig.hw.place_call(request())
    polled = await follow(rig, context)
    assert len(polled.types) == 20
    assert len({e.dedupe_key for e in polled.events}) == len(NORMAL) + 1  # + one hangup


async def test_the_recording_is_not_ready_then_a_wav(rig: Rig) -> None:
    context = await signed_in(rig)
    await rig.hw.place_call(request())
    polled = await follow(rig, context)
    [url] = [e.recording_url for e in polled.events if e.kind is EventKind.RECORDING_READY]
    assert url and url.startswith(f"{BASE}/agentgateway/resource/recordfile/{SEAT}?recordId=")
    await rig.control.put("/_sim/timing", json={"recording_delay_ms": 60_000})
    with pytest.raises(RecordingNotReady):
        async with rig.hw.open_recording(url):
            pass
    await rig.control.put("/_sim/timing", json={"recording_delay_ms": 0})
    other = rig.worker()  # any process: the seat's guid comes from the SessionStore
    async with other.open_recording(url) as recording:
        audio = b"".join([chunk async for chunk in recording.chunks])
    assert recording.content_type == "audio/wav" and audio[:4] == b"RIFF"
    await other.aclose()


async def test_two_workers_share_the_seat_s_session(rig: Rig) -> None:
    await rig.gateway(guid_interval_ms=50, guid_grace_ms=100)
    context = await signed_in(rig)
    placer = rig.worker()  # places and hangs up; rig.hw polls
    placed = await placer.place_call(request(called=B[:-2] + "85"))
    polled = await follow_until(rig, context, "AgentEvent_Talking")
    await placer.hangup(placed.vendor_call_id)
    polled = await follow(rig, polled.context)
    assert [e.close_type for e in polled.hangups()] == [CloseType.NORMAL]
    await placer.hangup(placed.vendor_call_id)  # 200-017: already ended, fine
    await rig.hw.place_call(request("cc-2", called=B[:-2] + "85"))
    await placer.hangup(placed.vendor_call_id)  # the old call: the seat's new one stays up
    assert (await rig.seat())["callid"] is not None
    assert await rig.requests("/forcelogin") == 0
    await placer.aclose()


async def test_the_probe_asks_the_gateway(rig: Rig) -> None:
    await rig.hw.probe()  # no seat known: the gateway's refusal proves it answers
    await signed_in(rig)
    await rig.hw.probe()
    broken = HwChannel(BASE, PASSWORD, rig.sessions,
                       transport=httpx.MockTransport(lambda _: httpx.Response(503)))  # fmt: skip
    with pytest.raises(VendorServerError):
        await broken.probe()
    await broken.aclose()


def mocked(rig: Rig, handler: Any) -> HwChannel:
    return HwChannel(BASE, PASSWORD, rig.sessions, transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(("error", "outcome"), [
    (httpx.ReadTimeout, VendorOutcomeUnknown), (httpx.RemoteProtocolError, VendorOutcomeUnknown),
    (httpx.ConnectError, VendorNetworkError),
])  # fmt: skip
async def test_a_callout_lost_after_sending_has_an_unknown_outcome(
    rig: Rig, error: type[httpx.TransportError], outcome: type[Exception]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    hw = mocked(rig, handler)
    with pytest.raises(outcome) as caught:
        await hw.place_call(request())
    assert caught.type is outcome
    with pytest.raises(VendorNetworkError) as polled:
        await hw.poll_seat(LOGIN, SeatContext())
    assert not isinstance(polled.value, VendorOutcomeUnknown)
    await hw.aclose()


async def test_a_long_poll_waits_longer_than_the_gateway_holds(rig: Rig) -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        return httpx.Response(200, json={"message": "", "retcode": "0", "event": None})

    hw = mocked(rig, handler)
    polled = await hw.poll_seat(LOGIN, SeatContext(seq=5))
    assert polled.events == [] and polled.context == SeatContext(seq=5)
    assert seen[0]["read"] == 15.0 and seen[0]["connect"] == 5.0
    await hw.aclose()


class LoginsToo(MemorySessions):
    """Sessions that can also tell how a seat signs in (``SeatLogins``), as the worker's do."""

    def __init__(self) -> None:
        super().__init__()
        self.logins: list[str] = []

    async def seat_login(self, channel: str, seat: str, phonenum: str) -> SeatLogin:
        self.logins.append(seat)
        return SeatLogin(seat=seat, password="", phonenum=phonenum)


async def test_a_callout_refused_for_no_right_is_a_rejection_after_a_fresh_sign_in(
    rig: Rig,
) -> None:
    """Chaos scenario 5 (issue 19): the gateway refusing a seat's callout (``000-003`` on the
    newest guid, then again once signed in anew) is a rejection, never a server error that
    fails the call over to another vendor (and dials the customer from another number)."""
    sessions = LoginsToo()
    hw = HwChannel(BASE, PASSWORD, sessions, transport=rig.transport)
    await hw.sign_in(LOGIN)
    await rig.control.put("/_sim/faults", json={"place_call": "auth_reject"})
    with pytest.raises(VendorRejected) as refused:
        await hw.place_call(request())
    assert refused.value.code == "000-003" and sessions.logins == [SEAT]
    assert await rig.calls() == []
    # A session lost for good (the seat signed in anew elsewhere: this guid is dead) that a
    # fresh sign-in cures is no refusal: the call is placed.
    await rig.control.put("/_sim/faults", json={})
    await rig.hw.sign_in(LOGIN)
    assert (await hw.place_call(request())).vendor_call_id
    assert sessions.logins == [SEAT, SEAT] and len(await rig.calls()) == 1
    await hw.aclose()
