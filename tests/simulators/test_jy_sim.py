"""The jy simulator: Basic auth, 429 with Retry-After (honoured by the adapter), callbacks
signed with Twilio's algorithm, recordings behind Basic auth."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from channels.base import PlaceCallRequest, VendorRejected, VendorServerError
from channels.jy import JyChannel, twilio_signature
from core.config import Settings
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


def request(cc_id: str) -> PlaceCallRequest:
    return PlaceCallRequest(cc_call_id=cc_id, caller="+8613800000001", called="+8613900000002",
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
    placed = await jy.place_call(request("jy-1"))
    assert await jy.find_call("jy-1") == placed.vendor_call_id

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


async def test_rate_limit_is_retried_after_retry_after(
    stack: tuple[str, str, list[tuple[str, bytes]]],
) -> None:
    base, hook, _ = stack
    jy = JyChannel(base, SID, TOKEN, hook)
    async with httpx.AsyncClient(base_url=base) as control:
        await control.put("/_sim/faults", json={"place_call": "rate_limit"})
        with pytest.raises(VendorServerError, match="rate limited"):
            await jy.place_call(request("jy-429"))
        await control.put("/_sim/faults", json={})
        log = (await control.get("/_sim/log")).json()["requests"]
    tries = [r for r in log if "jy-429" in r["body"]]
    assert len(tries) == 4  # the first answer and three retries, each after Retry-After
    assert all(b["at"] - a["at"] >= 900 for a, b in zip(tries, tries[1:], strict=False))
    bad = JyChannel(base, SID, "wrong", hook)
    with pytest.raises(VendorRejected, match="20003"):
        await bad.place_call(request("jy-401"))
    await bad.aclose()
    await jy.aclose()
