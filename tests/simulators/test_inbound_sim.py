"""The e9 and jy simulators play a customer calling a 400 number (``POST /_sim/inbound``)
against a tiny CC that verifies, parses and answers with the real adapters: ivr then dial,
reject, no digits, an answer the vendor refuses; the dialled call's events are ordinary
events carrying CC's call id, and the agent's phone is shown main_num, never the customer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from channels.e9 import E9Channel
from channels.errors import InvalidSignature
from channels.events import CallEvent, InboundAnswer, InboundCall
from channels.jy import JyChannel
from channels.protocols import InboundChannel
from channels.registry import Settings
from core.types import CloseType, EventKind, InboundAction
from simulators import e9, jy
from tests.support import ServerThread, free_port, wait_for

MAIN, CUSTOMER = "+864008001234", "+8613812345678"
AGENTS = {"1234": "+8613900000002", "8181": "+8613900000081", "8585": "+8613900000085"}
# main numbers whose answer the test writes itself: (body, media type) per channel
RAW_MAIN = "+864008009999"
CHANNELS = ["e9", "jy"]


@dataclass
class FakeCC:
    """CC's inbound and event webhooks, with the real adapters and a scripted decision."""

    public: str
    channels: dict[str, InboundChannel]
    asked: list[tuple[str, InboundCall]] = field(default_factory=list)
    events: list[CallEvent] = field(default_factory=list)
    raw: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # channel → a reply

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/webhooks/{name}/inbound")
        async def inbound(name: str, request: Request) -> Response:
            channel, url, body = await self.verified(name, request)
            if body is None:
                return Response(status_code=401)
            call = channel.parse_inbound(body, request.headers.get("content-type", ""))
            self.asked.append((name, call))
            if call.main_num == RAW_MAIN:
                content, media_type = self.raw[name]
                return Response(content, media_type=media_type)
            reply, media_type = channel.inbound_reply(decide(call), url)
            return Response(reply, media_type=media_type)

        @app.post("/webhooks/{name}")
        async def events(name: str, request: Request) -> Response:
            channel, _, body = await self.verified(name, request)
            if body is None:
                return Response(status_code=401)
            self.events.extend(channel.parse_webhook(body, request.headers.get("content-type", "")))
            return Response('{"statusCode": "000000"}', media_type="application/json")

        return app

    async def verified(
        self, name: str, request: Request
    ) -> tuple[InboundChannel, str, bytes | None]:
        channel, body = self.channels[name], await request.body()
        url = self.public + request.url.path
        url += f"?{request.url.query}" if request.url.query else ""
        try:
            channel.verify_webhook(url, request.headers, body)
        except InvalidSignature:
            return channel, url, None
        return channel, url, body


def decide(call: InboundCall) -> InboundAnswer:
    if call.main_num != MAIN:
        return InboundAnswer(action=InboundAction.REJECT, prompt="Unknown number.")
    if call.ext_num is None:
        return InboundAnswer(action=InboundAction.IVR, prompt="Extension, please.", collect=4)
    if call.ext_num not in AGENTS:
        return InboundAnswer(action=InboundAction.REJECT, prompt="No such extension.")
    return InboundAnswer(action=InboundAction.DIAL, cc_call_id="in-" + call.vendor_call_id[-12:],
                         to=AGENTS[call.ext_num], display=call.main_num, record=True)  # fmt: skip


@dataclass
class Stack:
    cc: FakeCC
    sims: dict[str, httpx.AsyncClient]
    channels: dict[str, InboundChannel]


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    e9_port, jy_port, cc_port = free_port(), free_port(), free_port()
    public = f"http://127.0.0.1:{cc_port}"
    settings = Settings(
        e9_base_url=f"http://127.0.0.1:{e9_port}", jy_base_url=f"http://127.0.0.1:{jy_port}",
        e9_account_sid="sid-in", e9_auth_token="e9-in-token", jy_account_sid="ACin",
        jy_auth_token="jy-in-token", public_base_url=public, sim_retry_scale=0.01,
    )  # fmt: skip
    channels: dict[str, InboundChannel] = {
        "e9": E9Channel(settings.e9_base_url, "sid-in", "e9-in-token", f"{public}/webhooks/e9"),
        "jy": JyChannel(settings.jy_base_url, "ACin", "jy-in-token", f"{public}/webhooks/jy"),
    }
    cc = FakeCC(public, channels)
    servers = [ServerThread(e9.create_app(settings), e9_port).start(),
               ServerThread(jy.create_app(settings), jy_port).start(),
               ServerThread(cc.app(), cc_port).start()]  # fmt: skip
    sims = {"e9": httpx.AsyncClient(base_url=settings.e9_base_url),
            "jy": httpx.AsyncClient(base_url=settings.jy_base_url)}  # fmt: skip
    for sim in sims.values():
        await sim.put("/_sim/timing", json={"ring_ms": 30, "talk_ms": 200, "no_answer_ms": 60,
                                            "recording_delay_ms": 0})  # fmt: skip
    yield Stack(cc, sims, channels)
    for sim in sims.values():
        await sim.aclose()
    for channel in channels.values():
        await channel.aclose()
    for server in servers:
        server.stop()


async def call_in(stack: Stack, channel: str, status: int = 200, **body: str) -> dict[str, Any]:
    start = {"main_num": MAIN, "caller": CUSTOMER, **body}
    answer = await stack.sims[channel].post("/_sim/inbound", json=start)
    assert answer.status_code == status, answer.text
    result: dict[str, Any] = answer.json()
    return result


def asked(stack: Stack, channel: str, sid: str) -> list[InboundCall]:
    return [call for name, call in stack.cc.asked if name == channel and call.vendor_call_id == sid]


async def events_until_hangup(stack: Stack, sid: str) -> list[CallEvent]:
    async def ended() -> list[CallEvent] | None:
        mine = [e for e in stack.cc.events if e.vendor_call_id == sid]
        return mine if any(e.kind is EventKind.HANGUP for e in mine) else None

    return await wait_for(ended, 10, f"the hang-up of {sid}")


async def sim_call(stack: Stack, channel: str, sid: str) -> dict[str, Any]:
    calls = (await stack.sims[channel].get("/_sim/calls")).json()
    [call] = [c for c in calls if c.get("callSid", c.get("sid")) == sid]
    return dict(call)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_ivr_then_dial_bridges_the_customer_to_the_agent(stack: Stack, channel: str) -> None:
    result = await call_in(stack, channel, ext="1234")
    sid = result["call_sid"]
    assert result["outcome"] == "dialled"
    first, second = asked(stack, channel, sid)  # no digits yet, then the keyed extension
    assert (first.ext_num, second.ext_num) == (None, "1234")
    assert (first.caller, first.main_num) == (CUSTOMER, MAIN)

    events = await events_until_hangup(stack, sid)
    cc_call_id = "in-" + sid[-12:]
    assert {e.cc_call_id for e in events} == {cc_call_id}
    by_kind = {e.kind: e for e in events}
    assert set(by_kind) == {EventKind.A_DIALING, EventKind.A_ANSWERED, EventKind.B_DIALING,
                            EventKind.B_RINGING, EventKind.B_ANSWERED, EventKind.BRIDGED,
                            EventKind.HANGUP}  # fmt: skip
    # The customer is on the line already: leg A is dialled and answered at once.
    assert by_kind[EventKind.A_ANSWERED].at - by_kind[EventKind.A_DIALING].at < 1000
    assert by_kind[EventKind.A_ANSWERED].at <= by_kind[EventKind.B_RINGING].at
    hangups = [e for e in events if e.kind is EventKind.HANGUP]
    assert {e.close_type for e in hangups} == {CloseType.NORMAL}
    assert any(e.recording_url for e in hangups)  # record: true

    call = await sim_call(stack, channel, sid)
    assert call["direction"] == "in"
    assert call["shown_to_b"] == MAIN  # the agent's phone showed the 400 number
    assert CUSTOMER not in (call["shown_to_a"], call["shown_to_b"])
    assert call["bridged_at"] and call["ended_at"]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_busy_agent_ends_the_call_as_b_busy(stack: Stack, channel: str) -> None:
    result = await call_in(stack, channel, ext="8181")
    events = await events_until_hangup(stack, result["call_sid"])
    assert CloseType.B_BUSY in {e.close_type for e in events if e.kind is EventKind.HANGUP}
    assert EventKind.BRIDGED not in {e.kind for e in events}


@pytest.mark.parametrize("channel", CHANNELS)
async def test_the_vendor_hangs_up_an_inbound_call_on_request(stack: Stack, channel: str) -> None:
    """CC can hang up an inbound call as one it placed: the vendor knows it by its id."""
    result = await call_in(stack, channel, ext="8585")  # the agent never hangs up
    sid = result["call_sid"]

    async def bridged() -> bool:
        return any(e.kind is EventKind.BRIDGED for e in stack.cc.events if e.vendor_call_id == sid)

    await wait_for(bridged, 10, "the bridge")
    await stack.channels[channel].hangup(sid)
    events = await events_until_hangup(stack, sid)
    assert {e.close_type for e in events if e.kind is EventKind.HANGUP} == {CloseType.NORMAL}


@pytest.mark.parametrize("channel", CHANNELS)
async def test_an_unknown_extension_is_rejected(stack: Stack, channel: str) -> None:
    result = await call_in(stack, channel, ext="4040")
    assert result["outcome"] == "rejected"
    assert [c.ext_num for c in asked(stack, channel, result["call_sid"])] == [None, "4040"]
    calls = (await stack.sims[channel].get("/_sim/calls")).json()
    assert result["call_sid"] not in {c.get("callSid", c.get("sid")) for c in calls}


@pytest.mark.parametrize("channel", CHANNELS)
async def test_an_unknown_main_number_is_rejected_at_once(stack: Stack, channel: str) -> None:
    result = await call_in(stack, channel, main_num="+864008000000", ext="1234")
    assert result["outcome"] == "rejected"
    assert len(asked(stack, channel, result["call_sid"])) == 1


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_customer_who_keys_nothing_ends_the_call(stack: Stack, channel: str) -> None:
    result = await call_in(stack, channel)
    assert result["outcome"] == "ivr_no_digits"
    assert [c.ext_num for c in asked(stack, channel, result["call_sid"])] == [None]


BAD_ANSWERS = {
    "e9": [(b'{"action": "dial", "to": "+8613900000002", "display": "+864008001234", '
            b'"record": "yes", "userData": "in-1"}', "application/json"),
           (b'{"action": "ivr", "playText": "x", "collect": 4, "extra": 1}', "application/json"),
           (b'{"action": "transfer"}', "application/json"),
           (b'{"action": "reject", "playText": "x"}', "text/html"),
           (b"not json", "application/json")],
    "jy": [(b"<Response><Play>http://x/a.wav</Play></Response>", "application/xml"),
           (b"<Response><Dial><Number>+86139</Number></Dial></Response>", "application/xml"),
           (b"<Response><Dial action='http://x'><Number>+8613900000002</Number></Dial>"
            b"</Response>", "application/xml"),
           (b"<Response><Gather numDigits='four'><Say>x</Say></Gather></Response>",
            "application/xml"),
           (b"<Response><Say>x</Say><Hangup/>", "application/xml"),
           (b'{"action": "reject"}', "application/json")],
}  # fmt: skip


@pytest.mark.parametrize(
    ("channel", "raw"), [(name, raw) for name, raws in BAD_ANSWERS.items() for raw in raws]
)
async def test_an_answer_the_vendor_does_not_take_fails_the_call(
    stack: Stack, channel: str, raw: tuple[bytes, str]
) -> None:
    stack.cc.raw[channel] = raw
    result = await call_in(stack, channel, status=502, main_num=RAW_MAIN, ext="1234")
    assert result["outcome"] == "failed" and result["detail"]
    calls = (await stack.sims[channel].get("/_sim/calls")).json()
    assert result["call_sid"] not in {c.get("callSid", c.get("sid")) for c in calls}


async def test_jy_plays_twiml_as_twilio_does(stack: Stack) -> None:
    """No callerId: the agent is shown the customer's number (Twilio's default, what CC must
    never let happen); only the statusCallbackEvents asked for are called back; the Tag of
    the statusCallback URL is the callbacks' Tag."""
    callback = f"{stack.cc.public}/webhooks/jy?Tag=in-raw"
    stack.cc.raw["jy"] = (
        f'<?xml version="1.0"?><Response><Dial><Number statusCallback="{callback}">'
        f"+8613900000002</Number></Dial></Response>".encode(),
        "text/xml",
    )
    result = await call_in(stack, "jy", main_num=RAW_MAIN)
    assert result["outcome"] == "dialled"
    events = await events_until_hangup(stack, result["call_sid"])
    assert {e.kind for e in events} == {EventKind.HANGUP}  # "completed" only, by default
    assert {e.cc_call_id for e in events} == {"in-raw"}
    assert not any(e.recording_url for e in events)  # record: do-not-record by default
    call = await sim_call(stack, "jy", result["call_sid"])
    assert call["shown_to_b"] == CUSTOMER


async def test_e9_inbound_events_go_to_the_accounts_status_url(stack: Stack) -> None:
    result = await call_in(stack, "e9", ext="1234")
    await events_until_hangup(stack, result["call_sid"])
    log = (await stack.sims["e9"].get("/_sim/log")).json()["events"]
    mine = [entry for entry in log if result["call_sid"] in entry["body"]]
    inbound = [entry for entry in mine if '"callin"' in entry["body"]]
    assert {entry["url"] for entry in inbound} == {f"{stack.cc.public}/webhooks/e9/inbound"}
    assert [entry["answer"] for entry in inbound][-1].startswith('{"action": "dial"')
    assert {entry["url"] for entry in mine if entry not in inbound} == {
        f"{stack.cc.public}/webhooks/e9"
    }
