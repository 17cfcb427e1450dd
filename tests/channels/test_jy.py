"""The jy adapter: Twilio's request validation (published vectors), per-leg statuses."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from channels.base import InvalidSignature, MalformedEvent
from channels.jy import JyChannel, twilio_signature
from core.types import CloseType, EventKind

# Twilio's own documented examples (api-snippets, security/signature_validation).
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"


def twilio_params(number: str) -> dict[str, str]:
    return {"CallSid": "CA1234567890ABCDE", "Caller": number, "Digits": "1234",
            "From": number, "To": "+18005551212"}  # fmt: skip


@pytest.mark.parametrize(
    ("number", "signature"),
    [("+14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="),
     ("+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")],
)  # fmt: skip
async def test_twilio_published_vectors_verify(number: str, signature: str) -> None:
    jy = JyChannel("http://127.0.0.1:1", "AC1", "12345", TWILIO_URL)
    body = urlencode(twilio_params(number)).encode()
    jy.verify_webhook(TWILIO_URL, {"x-jy-signature": signature}, body)
    assert twilio_signature("12345", TWILIO_URL, sorted(twilio_params(number).items())) == signature
    await jy.aclose()


@pytest.mark.parametrize("field", ["CallSid", "Caller", "Digits", "From", "To"])
async def test_one_altered_byte_in_any_param_is_refused(field: str) -> None:
    jy = JyChannel("http://127.0.0.1:1", "AC1", "12345", TWILIO_URL)
    params = twilio_params("+14158675310")
    params[field] = params[field][:-1] + chr(ord(params[field][-1]) ^ 1)
    with pytest.raises(InvalidSignature):
        jy.verify_webhook(TWILIO_URL, {"x-jy-signature": "GvWf1cFY/Q7PnoempGyD5oXAezc="},
                          urlencode(params).encode())  # fmt: skip
    with pytest.raises(InvalidSignature):  # and the URL is part of what is signed
        jy.verify_webhook(TWILIO_URL + "&x=1", {"x-jy-signature": "GvWf1cFY/Q7PnoempGyD5oXAezc="},
                          urlencode(twilio_params("+14158675310")).encode())  # fmt: skip
    await jy.aclose()


def callback(leg: str, status: str, **extra: str) -> bytes:
    form = {"CallSid": "CA9", "Leg": leg, "CallStatus": status, "SequenceNumber": "3",
            "Timestamp": "Thu, 01 Jan 2026 00:00:05 +0000", "Tag": "cc1", **extra}  # fmt: skip
    return urlencode(form).encode()


@pytest.mark.parametrize(
    ("leg", "status", "kinds", "close_type"),
    [("A", "initiated", [EventKind.A_DIALING], None),
     ("A", "in-progress", [EventKind.A_ANSWERED], None),
     ("B", "in-progress", [EventKind.B_ANSWERED, EventKind.BRIDGED], None),
     ("A", "busy", [EventKind.HANGUP], CloseType.A_BUSY),
     ("A", "no-answer", [EventKind.HANGUP], CloseType.A_UNREACHABLE),
     ("B", "busy", [EventKind.HANGUP], CloseType.B_BUSY),
     ("B", "failed", [EventKind.HANGUP], CloseType.B_UNREACHABLE),
     ("B", "completed", [EventKind.HANGUP], CloseType.NORMAL),
     ("A", "canceled", [EventKind.HANGUP], CloseType.NORMAL)],
)  # fmt: skip
async def test_leg_statuses(
    leg: str, status: str, kinds: list[EventKind], close_type: CloseType | None
) -> None:
    jy = JyChannel("http://127.0.0.1:1", "AC1", "t", "u")
    events = jy.parse_webhook(callback(leg, status, RecordingUrl="http://v/RE1"), "")
    assert [e.kind for e in events] == kinds
    assert {e.close_type for e in events} == {close_type}
    assert events[0].at == 1_767_225_605_000 and events[0].cc_call_id == "cc1"
    assert events[0].recording_url == "http://v/RE1.wav"
    assert len({e.dedupe_key for e in events}) == len(events)
    with pytest.raises(MalformedEvent):
        jy.parse_webhook(b"CallSid=CA9", "")
    await jy.aclose()
