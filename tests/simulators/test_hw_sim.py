"""The hw simulator checks Huawei-style auth and serves polled events, CDR, recordings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from channels.base import CallEvent, PlaceCallRequest, VendorOutcomeUnknown, VendorRejected
from channels.hw import CLICK2CALL, HwChannel, aksk_headers
from channels.registry import Settings
from core.types import EventKind
from simulators.hw import create_app
from tests.support import ServerThread, free_port, wait_for

KEY, SECRET = "hw-key", "hw-secret"


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    port = free_port()
    settings = Settings(
        hw_base_url=f"http://127.0.0.1:{port}", hw_app_key=KEY, hw_app_secret=SECRET
    )
    server = ServerThread(create_app(settings), port).start()
    yield settings.hw_base_url
    server.stop()


@pytest.fixture
async def hw(base: str) -> AsyncIterator[HwChannel]:
    async with httpx.AsyncClient(base_url=base) as control:
        await control.put("/_sim/faults", json={})
        await control.put(
            "/_sim/timing", json={"ring_ms": 40, "talk_ms": 3100, "recording_delay_ms": 0}
        )
    channel = HwChannel(base, KEY, SECRET)
    yield channel
    await channel.aclose()


def request(cc_id: str, called: str = "+8613900000002") -> PlaceCallRequest:
    return PlaceCallRequest(cc_call_id=cc_id, caller="+8613800000001", called=called,
                            display_to_a="+861088000100", display_to_b="+8613800000001",
                            agent="seat-1", max_duration_s=60)  # fmt: skip


async def test_reused_nonce_and_stale_created_are_refused(base: str) -> None:
    headers = aksk_headers(KEY, SECRET)
    async with httpx.AsyncClient(base_url=base) as http:
        first = await http.get(CLICK2CALL + "/events", params={"sessionId": "x"}, headers=headers)
        replay = await http.get(CLICK2CALL + "/events", params={"sessionId": "x"}, headers=headers)
        stale = aksk_headers(KEY, SECRET)
        stale["X-AKSK"] = stale["X-AKSK"].replace('Created="20', 'Created="19')
        old = await http.get(CLICK2CALL + "/events", params={"sessionId": "x"}, headers=stale)
    assert first.json()["resultcode"] == "0" and first.json()["events"] == []  # the probe
    assert replay.json()["resultcode"] == "1023006"
    assert old.json()["resultcode"] == "1023006"


async def test_wrong_secret_is_rejected(base: str) -> None:
    bad = HwChannel(base, KEY, "wrong")
    with pytest.raises(VendorRejected, match="1023006"):
        await bad.place_call(request("bad"))
    await bad.aclose()


async def test_polled_call_ends_with_cdr_and_a_301_recording(hw: HwChannel, base: str) -> None:
    placed = await hw.place_call(request("hw-normal"))
    seen: list[EventKind] = []
    cursor: list[str | None] = [None]

    async def final() -> bool:
        batch = await hw.poll(placed.vendor_call_id, cursor[0])
        cursor[0] = batch.cursor
        seen.extend(e.kind for e in batch.events)
        return batch.final

    await wait_for(final, 15, "the CDR")
    assert {EventKind.BRIDGED, EventKind.HANGUP, EventKind.RECORDING_READY} <= set(seen)
    assert (await hw.poll(placed.vendor_call_id, cursor[0])).events == []
    async with httpx.AsyncClient(base_url=base) as http:
        query = {"fileName": f"{placed.vendor_call_id}.wav", "recordDomain": "sim.hw"}
        redirect = await http.get("/rest/provision/voice/record/v1.0", params=query,
                                  headers=aksk_headers(KEY, SECRET))  # fmt: skip
        assert redirect.status_code == 301
        audio = await http.get(redirect.headers["location"])
    assert audio.headers["content-type"] == "audio/wav" and audio.content[:4] == b"RIFF"


async def test_call_result_reads_the_call_from_the_start(hw: HwChannel, base: str) -> None:
    placed = await hw.place_call(request("hw-result"))
    assert await hw.call_result("no-such-session", "cc") == []

    async def cdr() -> list[CallEvent] | None:
        events = await hw.call_result(placed.vendor_call_id, "hw-result")
        return events if any(e.dedupe_key.endswith("fee:hangup") for e in events) else None

    await wait_for(cdr, 15, "the CDR")
    events = await hw.call_result(placed.vendor_call_id, "hw-result")
    kinds = {e.kind for e in events}
    assert {EventKind.A_DIALING, EventKind.BRIDGED, EventKind.HANGUP} <= kinds
    assert {(e.cc_call_id, e.vendor_call_id) for e in events} == {
        ("hw-result", placed.vendor_call_id)
    }
    assert await hw.call_result(placed.vendor_call_id, "hw-result") == events  # same keys
    polled = await hw.poll(placed.vendor_call_id, None)
    assert {e.dedupe_key for e in polled.events} <= {e.dedupe_key for e in events}


async def test_timeout_after_accept_is_an_unknown_outcome_but_the_call_runs(base: str) -> None:
    impatient = HwChannel(base, KEY, SECRET, timeout_s=0.5)
    async with httpx.AsyncClient(base_url=base) as control:
        await control.put("/_sim/faults", json={"place_call": "timeout_after_accept"})
        await control.put("/_sim/timing", json={"ring_ms": 20, "talk_ms": 50})
        try:
            with pytest.raises(VendorOutcomeUnknown):
                await impatient.place_call(request("hw-unknown"))
            [session] = [c for c in (await control.get("/_sim/calls")).json()
                         if c["userData"] == "hw-unknown"]  # fmt: skip
            events = await wait_for(
                lambda: impatient.call_result(session["sessionId"], "hw-unknown"), 10, "events"
            )
            assert events and events[0].cc_call_id == "hw-unknown"  # the call runs
        finally:
            await control.put("/_sim/faults", json={})  # releases the held answer
            await impatient.aclose()
