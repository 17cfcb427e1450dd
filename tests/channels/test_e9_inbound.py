"""The e9 adapter's side of a customer calling a 400 number: the signed ``callin`` webhook
in, CC's JSON action out."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from channels.e9 import E9Channel, E9Settings, webhook_signature
from channels.errors import InvalidSignature, MalformedEvent
from channels.events import InboundAnswer
from channels.protocols import InboundChannel
from core.types import InboundAction

TOKEN = "e9-token"
CALLIN = {"eventId": "ev-1", "callSid": "sid-1", "event": "callin", "caller": "13812345678",
          "called": "4008001234", "ext": "", "timestamp": "20260101080005",
          "userData": ""}  # fmt: skip


def callin(**changes: Any) -> bytes:
    return json.dumps({**CALLIN, **changes}).encode()


@pytest.fixture
async def e9() -> AsyncIterator[E9Channel]:
    channel = E9Channel("http://127.0.0.1:1", "sid", TOKEN, "http://cc/webhooks/e9")
    yield channel
    await channel.aclose()


async def test_e9_is_an_inbound_channel(e9: E9Channel) -> None:
    assert isinstance(e9, InboundChannel)


async def test_a_first_callin_has_no_extension(e9: E9Channel) -> None:
    call = e9.parse_inbound(callin(), "application/json")
    assert (call.vendor_call_id, call.caller, call.main_num, call.ext_num) == (
        "sid-1", "13812345678", "4008001234", None)  # fmt: skip
    assert call.at == 1_767_225_605_000  # 08:00:05 Beijing is midnight UTC
    assert call.dedupe_key == "ev-1"


async def test_a_callin_without_the_ext_field_has_no_extension(e9: E9Channel) -> None:
    body = json.dumps({k: v for k, v in CALLIN.items() if k != "ext"}).encode()
    assert e9.parse_inbound(body, "application/json").ext_num is None


async def test_a_callin_after_the_ivr_carries_the_digits(e9: E9Channel) -> None:
    call = e9.parse_inbound(callin(ext="1234", eventId="ev-2"), "application/json")
    assert (call.ext_num, call.dedupe_key, call.vendor_call_id) == ("1234", "ev-2", "sid-1")


async def test_a_callin_is_signed_as_the_events(e9: E9Channel) -> None:
    body, ts = callin(), str(int(time.time()))
    headers = {"x-e9-timestamp": ts, "x-e9-signature": webhook_signature(TOKEN, ts, body)}
    e9.verify_webhook("http://cc/webhooks/e9/inbound", headers, body)
    with pytest.raises(InvalidSignature):
        e9.verify_webhook("http://cc/webhooks/e9/inbound", headers, callin(ext="9999"))


@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b"\xff", b"null", callin(event="callA"), callin(event="hangup"),
     json.dumps({k: v for k, v in CALLIN.items() if k != "callSid"}).encode(),
     callin(callSid=""), callin(called=""), callin(caller=None), callin(ext=12),
     callin(ext="12a"), callin(ext="1" * 40), callin(timestamp="garbage"),
     callin(timestamp="99999999999999"), callin(eventId=["x"]), callin(caller="1" * 100),
     callin(callSid="\ud800"), callin(ext="\ud800")],
)  # fmt: skip
async def test_anything_but_a_callin_is_malformed(e9: E9Channel, body: bytes) -> None:
    with pytest.raises(MalformedEvent):
        e9.parse_inbound(body, "application/json")


async def test_an_ordinary_event_is_not_a_callin(e9: E9Channel) -> None:
    event = {"eventId": "e", "callSid": "s", "event": "callA", "timestamp": "20260101080005",
             "userData": "cc1"}  # fmt: skip
    with pytest.raises(MalformedEvent):
        e9.parse_inbound(json.dumps(event).encode(), "application/json")
    with pytest.raises(MalformedEvent):  # nor is a callin an event
        e9.parse_webhook(callin(), "application/json")


def reply(e9: E9Channel, answer: InboundAnswer) -> dict[str, Any]:
    body, media_type = e9.inbound_reply(answer, "http://cc/webhooks/e9/inbound")
    assert media_type == "application/json"
    decoded: dict[str, Any] = json.loads(body)
    return decoded


async def test_dial_names_the_agent_and_shows_main_num(e9: E9Channel) -> None:
    answer = InboundAnswer(action=InboundAction.DIAL, cc_call_id="in123", to="+8613900000002",
                           display="+864008001234", record=True)  # fmt: skip
    assert reply(e9, answer) == {"action": "dial", "to": "+8613900000002",
                                 "display": "+864008001234", "record": True,
                                 "userData": "in123"}  # fmt: skip
    unrecorded = reply(e9, answer.model_copy(update={"record": False}))
    assert unrecorded["record"] is False


async def test_ivr_and_reject(e9: E9Channel) -> None:
    ivr = InboundAnswer(action=InboundAction.IVR, prompt="Extension, please.", collect=4)
    assert reply(e9, ivr) == {"action": "ivr", "playText": "Extension, please.", "collect": 4}
    reject = InboundAnswer(action=InboundAction.REJECT, prompt="No such extension.")
    assert reply(e9, reject) == {"action": "reject", "playText": "No such extension."}


async def test_a_dial_without_its_agent_is_a_bug_not_a_reply(e9: E9Channel) -> None:
    with pytest.raises(ValueError, match="dial"):
        e9.inbound_reply(InboundAnswer(action=InboundAction.DIAL, cc_call_id="in1"), "u")


def test_the_inbound_url_defaults_to_ccs_own() -> None:
    assert E9Settings(public_base_url="https://cc.example/").e9_inbound_url == (
        "https://cc.example/webhooks/e9/inbound"
    )
    assert E9Settings(api_host="10.0.0.5", api_port=8100).e9_inbound_url == (
        "http://10.0.0.5:8100/webhooks/e9/inbound"
    )
    assert (
        E9Settings(e9_inbound_url="https://elsewhere/in").e9_inbound_url == "https://elsewhere/in"
    )
