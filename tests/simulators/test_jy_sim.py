"""The jy simulator: Basic auth, 429 with Retry-After (honoured by the adapter), callbacks
signed with Twilio's algorithm, recordings behind Basic auth."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from channels.errors import (
    VendorOutcomeUnknown,
    VendorRateLimited,
    VendorRejected,
)
from channels.events import CallEvent, PlaceCallRequest
from channels.jy import JyChannel, twilio_signature
from channels.registry import Settings
from core.types import CloseType, EventKind
from simulators.jy import create_app
from tests.support import ServerThread, free_port, wait_for

SID, TOKEN = "ACsimtest", "jy-token"


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[str, str, list[tuple[str, bytes]]]]:
    sim_port, hook_port = free_port(), free_port()
    settings = Settings(jy_base_url=f"http://127.0.0.1:{sim_port}", jy_account_sid=SID,
                        jy_auth_token=TOKEN, sim_retry_scale=0.01)  # fmt: skip
    got: list[tuple[str, bytes]] = []
    hook = FastAPI()

    @hook.post("/hook")
    async def receive(request: Request) -> Response:
        got.append((request.headers.get("x-jy-signature", ""), await request.body()))
        return Response(status_code=204)

    servers = [ServerThread(create_app(settings), sim_port).start(),
               ServerThread(hook, hook_port).start()]  # fmt: skip
    yield settings.jy_base_url, f"http://127.0.0.1:{hook_port}/hook", got
    for server in servers:
        server.stop()


Stack = tuple[str, str, list[tuple[str, bytes]]]


def request(cc_id: str, called: str = "+8613900000002") -> PlaceCallRequest:
    return PlaceCallRequest(cc_call_id=cc_id, caller="+8613800000001", called=called,
                            display_to_a="+861088000300", display_to_b="+8613800000001",
                            agent="jy-1", max_duration_s=60)  # fmt: skip


async def test_callbacks_are_signed_with_twilios_algorithm(
    stack: tuple[str, str, list[tuple[str, bytes]]],
) -> None:
    base, hook, got = stack
    async with httpx.AsyncClient(base_url=base) as control:
        await control.put("/_sim/faults", json={})
        await control.put(
            "/_sim/timing", json={"ring_ms": 30, "talk_ms": 100, "recording_delay_ms": 0}
        )
    jy = JyChannel(base, SID, TOKEN, hook)
    await jy.place_call(request("jy-1"))

    def mine() -> list[dict[str, str]]:
        return [dict(parse_qsl(body.decode())) for _, body in got if b"jy-1" in body]

    async def completed() -> bool:
        return sum(f["CallStatus"] == "completed" for f in mine()) == 2

    await wait_for(completed, 10, "both legs to complete")
    for signature, body in got:
        assert signature == twilio_signature(TOKEN, hook, parse_qsl(body.decode()))
    statuses = [(f["Leg"], f["CallStatus"]) for f in mine()]
    assert ("B", "in-progress") in statuses
    recording = next(f["RecordingUrl"] for f in mine() if "RecordingUrl" in f)
    async with httpx.AsyncClient() as http:
        assert (await http.get(recording + ".wav")).status_code == 401  # Basic auth needed
        audio = await http.get(recording + ".wav", auth=(SID, TOKEN))
    assert audio.content[:4] == b"RIFF"
    await jy.aclose()


async def test_a_rate_limited_place_request_is_handed_back_with_its_retry_after(
    stack: tuple[str, str, list[tuple[str, bytes]]],
) -> None:
    """Sent once: the wait is the workflow's (a durable timer), not the activity's, which
    would outlast the place activity's timeout and turn the 429 into an unknown outcome."""
    base, hook, _ = stack
    jy = JyChannel(base, SID, TOKEN, hook)
    async with httpx.AsyncClient(base_url=base) as control:
        await control.put("/_sim/faults", json={"place_call": "rate_limit"})
        with pytest.raises(VendorRateLimited, match="HTTP 429") as limited:
            await jy.place_call(request("jy-429"))
        await control.put("/_sim/faults", json={})
        log = (await control.get("/_sim/log")).json()["requests"]
    assert limited.value.retry_after_s == 1.0
    assert [r["status"] for r in log if "jy-429" in r["body"]] == [429]  # sent once
    bad = JyChannel(base, SID, "wrong", hook)
    with pytest.raises(VendorRejected, match="20003"):
        await bad.place_call(request("jy-401"))
    await bad.aclose()
    await jy.aclose()


async def reset(base: str, **faults: object) -> None:
    async with httpx.AsyncClient(base_url=base) as control:
        await control.put("/_sim/faults", json=faults)
        await control.put(
            "/_sim/timing", json={"ring_ms": 30, "talk_ms": 1100, "recording_delay_ms": 0}
        )


async def resource_of(jy: JyChannel, sid: str, cc_id: str) -> list[CallEvent]:
    """call_result, asked until the call is over."""

    async def over() -> list[CallEvent] | None:
        events = await jy.call_result(sid, cc_id)
        return events if any(e.kind is EventKind.HANGUP for e in events) else None

    return await wait_for(over, 10, f"call {sid} to end")


async def test_call_result_rebuilds_a_call_whose_callbacks_were_all_dropped(stack: Stack) -> None:
    base, hook, got = stack
    await reset(base, delivery={"drop": 1.0})
    jy = JyChannel(base, SID, TOKEN, hook)
    try:
        placed = await jy.place_call(request("jy-lost"))
        live = await jy.call_result(placed.vendor_call_id, "jy-lost")  # while it rings
        events = await resource_of(jy, placed.vendor_call_id, "jy-lost")
        # Nothing invented mid-call: what it told then is how the call began. (How far it had
        # got depends on the machine's speed: A ringing 30 ms, or more on a loaded machine.)
        told = [(e.kind, e.at) for e in live]
        assert told == [(e.kind, e.at) for e in events[: len(told)]] and len(told) < len(events)
        assert not [body for _, body in got if b"jy-lost" in body]  # every callback dropped
        by_kind = {e.kind: e for e in events}
        assert [e.kind for e in events] == [EventKind.A_DIALING, EventKind.A_ANSWERED,
                                            EventKind.B_DIALING, EventKind.B_ANSWERED,
                                            EventKind.BRIDGED, EventKind.HANGUP]  # fmt: skip
        hangup = by_kind[EventKind.HANGUP]
        assert (hangup.close_type, hangup.ch_state) == (CloseType.NORMAL, "call:completed")
        assert hangup.duration_s == 1  # 1.1 s of talk, in whole seconds
        assert str(hangup.recording_url).endswith(f"/Recordings/RE{placed.vendor_call_id[2:]}.wav")
        assert [e.at for e in events] == sorted(e.at for e in events)
        assert {(e.cc_call_id, e.vendor_call_id) for e in events} == {
            ("jy-lost", placed.vendor_call_id)
        }
        assert await jy.call_result(placed.vendor_call_id, "jy-lost") == events  # same keys
        async with httpx.AsyncClient() as http:
            audio = await http.get(str(hangup.recording_url), auth=(SID, TOKEN))
        assert audio.content[:4] == b"RIFF"
    finally:
        await reset(base)
        await jy.aclose()


@pytest.mark.parametrize(("caller", "called", "close_type"),
                         [("+8613800000081", "+8613900000002", CloseType.A_BUSY),
                          ("+8613800000001", "+8613900000081", CloseType.B_BUSY)])  # fmt: skip
async def test_call_result_of_a_failed_call(
    stack: Stack, caller: str, called: str, close_type: CloseType
) -> None:
    """The resource speaks for leg A; a B-leg failure is told by the child call (leg B)."""
    base, hook, _ = stack
    await reset(base, delivery={"drop": 1.0})
    jy = JyChannel(base, SID, TOKEN, hook)
    try:
        place = request(f"jy-fail-{caller[-2:]}-{called[-2:]}", called)
        placed = await jy.place_call(place.model_copy(update={"caller": caller}))
        events = await resource_of(jy, placed.vendor_call_id, place.cc_call_id)
        [hangup] = [e for e in events if e.kind is EventKind.HANGUP]
        assert hangup.close_type is close_type and hangup.duration_s == 0
        assert hangup.recording_url is None
    finally:
        await reset(base)
        await jy.aclose()


async def test_probe_and_unknown_call(stack: Stack) -> None:
    base, hook, _ = stack
    jy = JyChannel(base, SID, TOKEN, hook)
    await jy.probe()  # the vendor's 404 for a call that cannot exist: up, credentials good
    with pytest.raises(VendorRejected, match="20404"):
        await jy.call_result("CAnope", "cc")
    bad = JyChannel(base, SID, "wrong", hook)
    with pytest.raises(VendorRejected, match="20003"):
        await bad.probe()
    await bad.aclose()
    await jy.aclose()
    async with httpx.AsyncClient(base_url=base) as http:  # no listing by Tag (VENDORS.md)
        url = f"/2010-04-01/Accounts/{SID}/Calls.json"
        for params in ({"Tag": "x"}, {}, {"ParentCallSid": "CAnope", "Tag": "x"}):
            listing = await http.get(url, params=params, auth=(SID, TOKEN))
            assert listing.status_code == 400 and "calls" not in listing.json()
        unknown = await http.get(url, params={"ParentCallSid": "CAnope"}, auth=(SID, TOKEN))
        assert unknown.json()["calls"] == []
        unauthorised = await http.get(url, params={"ParentCallSid": "CAnope"})
        assert unauthorised.status_code == 401


async def test_timeout_after_accept_is_an_unknown_outcome_but_the_call_runs(
    stack: Stack,
) -> None:
    base, hook, got = stack
    await reset(base, place_call="timeout_after_accept")
    impatient = JyChannel(base, SID, TOKEN, hook, timeout_s=0.5)
    try:
        with pytest.raises(VendorOutcomeUnknown):
            await impatient.place_call(request("jy-unknown"))
        async with httpx.AsyncClient(base_url=base) as control:
            calls = (await control.get("/_sim/calls")).json()
        assert [c["tag"] for c in calls].count("jy-unknown") == 1  # it was placed

        async def completed() -> bool:
            return any(b"jy-unknown" in body and b"completed" in body for _, body in got)

        await wait_for(completed, 10, "its callbacks")  # and it runs
    finally:
        await reset(base)  # releases the held answer
        await impatient.aclose()
