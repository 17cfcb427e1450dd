"""The jy adapter's side of a customer calling a 400 number: Twilio's voice webhook in
(checked with Twilio's own RequestValidator), TwiML out (read back as XML)."""

from __future__ import annotations

import base64
import hmac
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.etree import ElementTree

import pytest
from twilio.request_validator import RequestValidator

from channels.errors import InvalidSignature, MalformedEvent
from channels.events import InboundAnswer
from channels.jy import JyChannel, JySettings
from channels.protocols import InboundChannel
from core.types import EventKind, InboundAction

TOKEN = "jy-token"
INBOUND_URL = "https://cc.example/webhooks/jy/inbound"
STATUS_URL = "https://cc.example/webhooks/jy"
VOICE = {"AccountSid": "AC1", "ApiVersion": "2010-04-01", "CallSid": "CAin1",
         "CallStatus": "ringing", "Called": "+864008001234", "Caller": "+8613812345678",
         "Direction": "inbound", "From": "+8613812345678", "To": "+864008001234"}  # fmt: skip


def voice(**changes: str) -> dict[str, str]:
    return {**VOICE, **changes}


@pytest.fixture
async def jy() -> AsyncIterator[JyChannel]:
    channel = JyChannel("http://127.0.0.1:1", "AC1", TOKEN, STATUS_URL)
    yield channel
    await channel.aclose()


async def test_jy_is_an_inbound_channel(jy: JyChannel) -> None:
    assert isinstance(jy, InboundChannel)


async def test_request_validator_round_trip(jy: JyChannel) -> None:
    """What Twilio's library signs, the adapter accepts; one altered param or URL, it refuses."""
    params = voice(Digits="1234")
    signature = RequestValidator(TOKEN).compute_signature(INBOUND_URL, params)
    jy.verify_webhook(INBOUND_URL, {"x-jy-signature": signature}, urlencode(params).encode())
    for name in params:
        tampered = {**params, name: params[name] + "9"}
        with pytest.raises(InvalidSignature):
            jy.verify_webhook(INBOUND_URL, {"x-jy-signature": signature},
                              urlencode(tampered).encode())  # fmt: skip
    with pytest.raises(InvalidSignature):
        jy.verify_webhook(INBOUND_URL + "?x=1", {"x-jy-signature": signature},
                          urlencode(params).encode())  # fmt: skip
    with pytest.raises(InvalidSignature):
        jy.verify_webhook(INBOUND_URL, {}, urlencode(params).encode())
    other = JyChannel("http://127.0.0.1:1", "AC1", "another-token", STATUS_URL)
    with pytest.raises(InvalidSignature):
        other.verify_webhook(INBOUND_URL, {"x-jy-signature": signature},
                             urlencode(params).encode())  # fmt: skip
    await other.aclose()


async def test_a_repeated_param_is_signed_with_all_its_values(jy: JyChannel) -> None:
    body = b"CallSid=CA1&Tag=a&Tag=b"
    payload = (STATUS_URL + "CallSidCA1" + "Taga" + "Tagb").encode()
    every = base64.b64encode(hmac.new(TOKEN.encode(), payload, "sha1").digest()).decode()
    jy.verify_webhook(STATUS_URL, {"x-jy-signature": every}, body)
    last_only = RequestValidator(TOKEN).compute_signature(
        STATUS_URL, {"CallSid": "CA1", "Tag": "b"}
    )
    with pytest.raises(InvalidSignature):
        jy.verify_webhook(STATUS_URL, {"x-jy-signature": last_only}, body)


async def test_a_status_callback_url_with_its_tag_verifies(jy: JyChannel) -> None:
    url = STATUS_URL + "?Tag=in123"
    params = {"CallSid": "CAin1", "Leg": "A", "CallStatus": "initiated", "Tag": "in123"}
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    jy.verify_webhook(url, {"x-jy-signature": signature}, urlencode(params).encode())
    with pytest.raises(InvalidSignature):  # the query is part of what is signed
        jy.verify_webhook(STATUS_URL, {"x-jy-signature": signature}, urlencode(params).encode())


async def test_the_first_voice_webhook_has_no_digits(jy: JyChannel) -> None:
    call = jy.parse_inbound(urlencode(voice()).encode(), "application/x-www-form-urlencoded")
    assert (call.vendor_call_id, call.caller, call.main_num, call.ext_num) == (
        "CAin1", "+8613812345678", "+864008001234", None)  # fmt: skip
    after = jy.parse_inbound(urlencode(voice(Digits="1234")).encode(), "")
    assert after.ext_num == "1234" and after.vendor_call_id == "CAin1"
    assert after.dedupe_key != call.dedupe_key  # the gathered digits are a new request
    again = jy.parse_inbound(urlencode(voice(Digits="1234")).encode(), "")
    assert again.dedupe_key == after.dedupe_key  # a resent one is not
    empty = jy.parse_inbound(urlencode(voice(Digits="")).encode(), "")
    assert empty.ext_num is None  # a Gather that timed out collected nothing


@pytest.mark.parametrize(
    "body",
    [b"", b"\xff\xfe", urlencode({k: v for k, v in VOICE.items() if k != "CallSid"}).encode(),
     urlencode({k: v for k, v in VOICE.items() if k != "To"}).encode(),
     urlencode({k: v for k, v in VOICE.items() if k != "From"}).encode(),
     urlencode(voice(CallSid="")).encode(), urlencode(voice(Digits="12a")).encode(),
     urlencode(voice(To="4" * 100)).encode(),
     b"CallSid=CA9&Leg=A&CallStatus=initiated&SequenceNumber=1&Tag=cc1"],
)  # fmt: skip
async def test_anything_but_a_voice_webhook_is_malformed(jy: JyChannel, body: bytes) -> None:
    with pytest.raises(MalformedEvent):
        jy.parse_inbound(body, "application/x-www-form-urlencoded")


def twiml(jy: JyChannel, answer: InboundAnswer) -> ElementTree.Element:
    body, media_type = jy.inbound_reply(answer, INBOUND_URL)
    assert media_type == "application/xml"
    root = ElementTree.fromstring(body)
    assert root.tag == "Response"
    return root


async def test_ivr_gathers_the_extension_and_posts_it_back(jy: JyChannel) -> None:
    root = twiml(jy, InboundAnswer(action=InboundAction.IVR, prompt="Extension?", collect=4))
    [gather] = root
    assert gather.tag == "Gather"
    assert gather.attrib == {"numDigits": "4", "action": INBOUND_URL, "method": "POST"}
    [say] = gather
    assert (say.tag, say.text) == ("Say", "Extension?")


async def test_dial_shows_main_num_and_tags_the_status_callback(jy: JyChannel) -> None:
    answer = InboundAnswer(action=InboundAction.DIAL, cc_call_id="in123", to="+8613900000002",
                           display="+864008001234", record=True)  # fmt: skip
    [dial] = twiml(jy, answer)
    assert dial.tag == "Dial"
    assert dial.attrib == {"callerId": "+864008001234", "record": "record-from-answer"}
    [number] = dial
    assert (number.tag, number.text) == ("Number", "+8613900000002")
    assert number.get("statusCallbackEvent") == "initiated ringing answered completed"
    callback = urlsplit(number.get("statusCallback", ""))
    assert callback._replace(query="").geturl() == STATUS_URL
    assert parse_qs(callback.query) == {"Tag": ["in123"]}
    [unrecorded] = twiml(jy, answer.model_copy(update={"record": False}))
    assert unrecorded.get("record") == "do-not-record"


async def test_the_tag_joins_a_status_url_that_has_a_query() -> None:
    jy = JyChannel("http://127.0.0.1:1", "AC1", TOKEN, STATUS_URL + "?k=v")
    answer = InboundAnswer(action=InboundAction.DIAL, cc_call_id="in 1&2", to="+8613900000002",
                           display="+864008001234")  # fmt: skip
    [dial] = twiml(jy, answer)
    query = parse_qs(urlsplit(dial[0].get("statusCallback", "")).query)
    assert query == {"k": ["v"], "Tag": ["in 1&2"]}
    await jy.aclose()


async def test_reject_says_why_and_hangs_up(jy: JyChannel) -> None:
    root = twiml(jy, InboundAnswer(action=InboundAction.REJECT, prompt="No such <extension>."))
    assert [(verb.tag, verb.text) for verb in root] == [
        ("Say", "No such <extension>."), ("Hangup", None)]  # fmt: skip


async def test_a_dial_without_its_agent_is_a_bug_not_a_reply(jy: JyChannel) -> None:
    with pytest.raises(ValueError, match="dial"):
        jy.inbound_reply(InboundAnswer(action=InboundAction.DIAL, to="+8613900000002"), "u")


async def test_the_inbound_calls_callbacks_carry_the_cc_call_id(jy: JyChannel) -> None:
    """jy echoes the statusCallback URL's Tag as the callbacks' Tag: ordinary events."""
    body = urlencode({"CallSid": "CAin1", "Leg": "B", "CallStatus": "in-progress",
                      "SequenceNumber": "4", "Timestamp": "Thu, 01 Jan 2026 00:00:05 +0000",
                      "Tag": "in123"}).encode()  # fmt: skip
    events = jy.parse_webhook(body, "application/x-www-form-urlencoded")
    assert [(e.kind, e.cc_call_id, e.vendor_call_id) for e in events] == [
        (EventKind.B_ANSWERED, "in123", "CAin1"),
        (EventKind.BRIDGED, "in123", "CAin1"),
    ]


def test_the_inbound_url_defaults_to_ccs_own() -> None:
    assert JySettings(public_base_url="https://cc.example").jy_inbound_url == INBOUND_URL
    assert (
        JySettings(jy_inbound_url="https://elsewhere/in").jy_inbound_url == "https://elsewhere/in"
    )
