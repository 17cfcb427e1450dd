"""The jy adapter: Twilio's request validation (published vectors), per-leg statuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest

from channels.errors import InvalidSignature, MalformedEvent
from channels.jy import JyChannel, twilio_signature
from channels.jy_events import resource_events
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


@pytest.fixture
async def jy() -> AsyncIterator[JyChannel]:
    channel = JyChannel("http://127.0.0.1:1", "AC1", "t", "u")
    yield channel
    await channel.aclose()


async def test_completed_carries_the_call_duration(jy: JyChannel) -> None:
    [event] = jy.parse_webhook(callback("A", "completed", CallDuration="12"), "")
    assert event.duration_s == 12
    [event] = jy.parse_webhook(callback("A", "completed", CallDuration="x"), "")
    assert event.duration_s is None
    [event] = jy.parse_webhook(callback("A", "ringing", CallDuration="12"), "")
    assert event.duration_s is None  # only a hang-up says how long the call talked


@pytest.mark.parametrize("signature", ["é" * 28, "\u2603", "GvWf1cFY/Q7PnoempGyD5oXAezc\u00e9"])
async def test_a_non_ascii_signature_is_invalid_not_a_crash(jy: JyChannel, signature: str) -> None:
    with pytest.raises(InvalidSignature):
        jy.verify_webhook(TWILIO_URL, {"x-jy-signature": signature}, b"CallSid=CA1")


@pytest.mark.parametrize("tag", ["", "x" * 33, "x" * 10_000_000, "ç" * 8, "cc\n1"])
async def test_a_tag_that_is_not_a_cc_id_gives_no_call_id(jy: JyChannel, tag: str) -> None:
    [event] = jy.parse_webhook(callback("A", "initiated", Tag=tag), "")
    assert event.cc_call_id is None


async def test_a_repeated_tag_is_read_as_one_string(jy: JyChannel) -> None:
    body = callback("A", "initiated") + b"&Tag=cc2"
    [event] = jy.parse_webhook(body, "")
    assert event.cc_call_id == "cc2"


async def test_vendor_strings_fit_the_record_columns(jy: JyChannel) -> None:
    long_url = "http://v/" + "r" * 600
    body = callback("B", "completed", CallSid="CA" + "9" * 200, RecordingUrl=long_url,
                    SequenceNumber="1" * 200)  # fmt: skip
    [event] = jy.parse_webhook(body, "")
    assert event.vendor_call_id is not None and len(event.vendor_call_id) <= 64
    assert len(event.dedupe_key) <= 128
    assert event.recording_url == long_url + ".wav"
    [other] = jy.parse_webhook(body.replace(b"SequenceNumber=1", b"SequenceNumber=2"), "")
    assert other.dedupe_key != event.dedupe_key


@pytest.mark.parametrize(
    "body",
    [b"", b"\xff\xfe", callback("A", "initiated", Timestamp="garbage"),
     callback("A", "initiated", Timestamp="Thu, 01 Jan 99999 00:00:05 +0000"),
     callback("A", "initiated", SequenceNumber="9" * 5000), callback("C", "initiated"),
     callback("A", "dancing")],
)  # fmt: skip
async def test_odd_bodies_are_malformed_not_a_crash(jy: JyChannel, body: bytes) -> None:
    with pytest.raises(MalformedEvent):
        jy.parse_webhook(body, "")


def test_call_resource_translation() -> None:
    live = {"sid": "CA9", "status": "in-progress", "start_time": "Thu, 01 Jan 2026 00:00:01 +0000",
            "end_time": None, "duration": None, "recording_url": None}  # fmt: skip
    [dialing] = resource_events("CA9", "cc1", live)  # no bridge time: no bridge event
    assert (dialing.kind, dialing.at, dialing.cc_call_id) == (
        EventKind.A_DIALING, 1_767_225_601_000, "cc1")  # fmt: skip
    assert resource_events("CA9", "cc1", {"sid": "CA9", "status": "queued"}) == []
    over = {**live, "status": "completed", "end_time": "Thu, 01 Jan 2026 00:01:01 +0000",
            "duration": "42", "recording_url": "http://v/RE9"}  # fmt: skip
    events = resource_events("CA9", "cc1", over)
    hangup = events[-1]
    assert (hangup.kind, hangup.at, hangup.close_type, hangup.duration_s) == (
        EventKind.HANGUP, 1_767_225_661_000, CloseType.NORMAL, 42)  # fmt: skip
    assert hangup.recording_url == "http://v/RE9.wav"
    assert [e.dedupe_key for e in events] == ["result:CA9:a_dialing", "result:CA9:hangup"]
    assert resource_events("CA9", "cc1", over) == events
    unbridged = {**over, "duration": "0", "recording_url": None}
    assert resource_events("CA9", "cc1", unbridged)[-1].close_type is CloseType.OTHER
    busy = {**unbridged, "status": "busy"}
    assert resource_events("CA9", "cc1", busy)[-1].close_type is CloseType.A_BUSY
    odd = {"status": 5, "start_time": 3, "end_time": ["x"], "duration": {}, "recording_url": 1}
    assert resource_events("CA9", "cc1", odd) == []


def test_child_call_gives_leg_b_and_the_close() -> None:
    """Leg B is the child call: A's answer is its creation, B's answer ``duration`` whole
    seconds before its end; a failed child names the close of a ``completed`` parent."""
    parent = {"sid": "CA9", "status": "completed", "start_time": "Thu, 01 Jan 2026 00:00:01 +0000",
              "end_time": "Thu, 01 Jan 2026 00:00:30 +0000", "duration": "20"}  # fmt: skip
    child = {"sid": "CAb", "parent_call_sid": "CA9", "status": "completed",
             "date_created": "Thu, 01 Jan 2026 00:00:05 +0000",
             "start_time": "Thu, 01 Jan 2026 00:00:05 +0000",
             "end_time": "Thu, 01 Jan 2026 00:00:30 +0000", "duration": "20"}  # fmt: skip
    events = resource_events("CA9", "cc1", parent, child)
    t0 = 1_767_225_600_000
    assert [(e.kind, e.at) for e in events] == [
        (EventKind.A_DIALING, t0 + 1000), (EventKind.A_ANSWERED, t0 + 5000),
        (EventKind.B_DIALING, t0 + 5000), (EventKind.B_ANSWERED, t0 + 10_000),
        (EventKind.BRIDGED, t0 + 10_000), (EventKind.HANGUP, t0 + 30_000),
    ]  # fmt: skip
    assert events[-1].close_type is CloseType.NORMAL
    assert {e.dedupe_key for e in events} == {f"result:CA9:{e.kind.value}" for e in events}
    assert events[3].ch_state == "child:completed"
    unbridged = {**parent, "duration": "0"}
    for status, close in (
        ("busy", CloseType.B_BUSY),
        ("no-answer", CloseType.B_UNREACHABLE),
        ("failed", CloseType.B_UNREACHABLE),
        ("canceled", CloseType.NORMAL),
    ):
        failed = {**child, "status": status, "duration": "0"}
        got = resource_events("CA9", "cc1", unbridged, failed)
        assert [e.kind for e in got] == [
            EventKind.A_DIALING,
            EventKind.A_ANSWERED,
            EventKind.B_DIALING,
            EventKind.HANGUP,
        ]
        assert got[-1].close_type is close
    # a child still ringing or talking gives its times so far, nothing invented
    live = {**parent, "status": "in-progress", "end_time": None, "duration": None}
    ringing = {**child, "status": "ringing", "end_time": None, "duration": None}
    assert [e.kind for e in resource_events("CA9", "cc1", live, ringing)] == [
        EventKind.A_DIALING, EventKind.A_ANSWERED, EventKind.B_DIALING]  # fmt: skip
    # a parent that failed itself keeps its own reason whatever the child says
    busy = {**unbridged, "status": "busy"}
    assert resource_events("CA9", "cc1", busy, None)[-1].close_type is CloseType.A_BUSY
