"""The e9 adapter's vendor quirks: signatures, Beijing times, byetype mapping."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from channels.e9 import E9Channel, request_sig
from channels.e9_events import parse_beijing_ts, result_events
from channels.errors import InvalidSignature, MalformedEvent
from core.types import CloseType, EventKind

TOKEN = "tok"


@pytest.fixture
async def e9() -> E9Channel:
    return E9Channel("http://127.0.0.1:1", "sid", TOKEN, "http://cc/webhooks/e9")


def signed(body: bytes, ts: str) -> dict[str, str]:
    sig = hmac.new(TOKEN.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"x-e9-timestamp": ts, "x-e9-signature": sig}


def test_request_sig_is_upper_md5_of_sid_token_ts() -> None:
    expected = hashlib.md5(b"sidtok20261124120000").hexdigest().upper()
    assert request_sig("sid", "tok", "20261124120000") == expected


def test_beijing_time_is_utc_plus_8() -> None:
    # 2026-01-01 08:00:00 in Beijing is midnight UTC
    assert parse_beijing_ts("20260101080000") == 1_767_225_600_000


async def test_webhook_signature_checked_over_exact_body(e9: E9Channel) -> None:
    import time

    ts = str(int(time.time()))
    body = b'{"event": "bridge"}'
    e9.verify_webhook("u", signed(body, ts), body)
    with pytest.raises(InvalidSignature):
        e9.verify_webhook("u", signed(body, ts), body.replace(b"bridge", b"bridgE"))
    with pytest.raises(InvalidSignature):
        e9.verify_webhook("u", {"x-e9-timestamp": ts}, body)
    stale = str(int(time.time()) - 7200)
    with pytest.raises(InvalidSignature):
        e9.verify_webhook("u", signed(body, stale), body)


@pytest.mark.parametrize(
    ("byetype", "close_type"),
    [(0, CloseType.NORMAL), (1, CloseType.NORMAL), (-1, CloseType.A_UNREACHABLE),
     (-2, CloseType.A_BUSY), (-3, CloseType.A_UNREACHABLE), (-4, CloseType.B_UNREACHABLE),
     (-5, CloseType.B_BUSY), (-6, CloseType.B_UNREACHABLE), (-7, CloseType.MAX_DURATION),
     (-8, CloseType.CHANNEL_SERVER_ERROR), (-9, CloseType.NORMAL), (-42, CloseType.OTHER)],
)  # fmt: skip
async def test_hangup_byetype_maps_to_close_type(
    e9: E9Channel, byetype: int, close_type: CloseType
) -> None:
    body = json.dumps(
        {"eventId": "ev1", "callSid": "S1", "event": "hangup", "timestamp": "20260101080001",
         "userData": "cc1", "byetype": byetype, "recordurl": "http://x/r.wav"}
    ).encode()  # fmt: skip
    [event] = e9.parse_webhook(body, "application/json")
    assert event.kind is EventKind.HANGUP
    assert event.close_type is close_type
    assert (event.cc_call_id, event.vendor_call_id, event.dedupe_key) == ("cc1", "S1", "ev1")
    assert event.at == 1_767_225_601_000
    assert event.recording_url == "http://x/r.wav"


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"event": "dance", "eventId": "1"}'])
async def test_malformed_bodies_are_rejected(e9: E9Channel, body: bytes) -> None:
    with pytest.raises(MalformedEvent):
        e9.parse_webhook(body, "application/json")


def hangup_body(**fields: object) -> bytes:
    event = {"eventId": "ev1", "callSid": "S1", "event": "hangup", "timestamp": "20260101080001",
             "userData": "cc1", "byetype": 1, "duration": 7, **fields}  # fmt: skip
    return json.dumps(event).encode()


async def test_hangup_carries_the_vendors_talk_seconds(e9: E9Channel) -> None:
    [event] = e9.parse_webhook(hangup_body(), "application/json")
    assert event.duration_s == 7
    for odd in (-3, "x", None, 2**40, 1.5e300, True):
        [event] = e9.parse_webhook(hangup_body(duration=odd), "application/json")
        assert event.duration_s is None


@pytest.mark.parametrize("signature", ["é" * 64, "\u2603", "ab\x00cd", "Ω" + "0" * 63])
async def test_a_non_ascii_signature_is_invalid_not_a_crash(e9: E9Channel, signature: str) -> None:
    import time

    headers = {"x-e9-timestamp": str(int(time.time())), "x-e9-signature": signature}
    with pytest.raises(InvalidSignature):
        e9.verify_webhook("u", headers, b"{}")


@pytest.mark.parametrize("timestamp", ["²", "١٢٣", "9" * 5000, "-1", " 1", "é"])
async def test_an_odd_timestamp_is_invalid_not_a_crash(e9: E9Channel, timestamp: str) -> None:
    with pytest.raises(InvalidSignature):
        e9.verify_webhook("u", signed(b"{}", timestamp), b"{}")


@pytest.mark.parametrize(
    "user_data",
    [123, 1.5, {"id": "cc1"}, ["cc1"], None, True, "", "x" * 33, "x" * 10_000_000, "ç" * 8,
     "cc\n1", "\ud800"],
)  # fmt: skip
async def test_user_data_that_is_not_a_cc_id_gives_no_call_id(
    e9: E9Channel, user_data: object
) -> None:
    [event] = e9.parse_webhook(hangup_body(userData=user_data), "application/json")
    assert event.cc_call_id is None


async def test_vendor_strings_fit_the_record_columns(e9: E9Channel) -> None:
    long_url = "http://x/" + "r" * 600 + ".wav"
    body = hangup_body(callSid="S" * 100, eventId="E" * 300, byetype=int("7" * 100),
                       recordurl=long_url)  # fmt: skip
    [event] = e9.parse_webhook(body, "application/json")
    assert event.vendor_call_id is not None and len(event.vendor_call_id) <= 64
    assert len(event.dedupe_key) <= 128 and event.ch_state is not None
    assert len(event.ch_state) <= 32
    assert event.recording_url == long_url  # kept whole: the store decides what to do
    [other] = e9.parse_webhook(hangup_body(eventId="E" * 299 + "F"), "application/json")
    assert other.dedupe_key != event.dedupe_key  # digests keep distinct keys distinct
    [short] = e9.parse_webhook(hangup_body(eventId="E" * 128), "application/json")
    assert short.dedupe_key == "E" * 128  # a key that fits is kept as is


@pytest.mark.parametrize(
    "body",
    [b"[]", b'"x"', b"null", b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe", b'{"event": []}',
     b'{"event": {"a": 1}}', hangup_body(timestamp=["x"]), hangup_body(timestamp="99999999999999"),
     hangup_body(eventId=None)[:-1]],
)  # fmt: skip
async def test_odd_bodies_are_malformed_not_a_crash(e9: E9Channel, body: bytes) -> None:
    with pytest.raises(MalformedEvent):
        e9.parse_webhook(body, "application/json")


async def test_odd_field_types_never_raise_anything_else(e9: E9Channel) -> None:
    import random

    rng = random.Random(9)
    odd: list[object] = [None, True, 0, -1, 2**70, 1.5, float("inf"), "", "x" * 300, "\ud800",
                         "20260101080001", [], ["a"], {}, {"a": 1}, "hangup", "bridge"]  # fmt: skip
    fields = ["eventId", "callSid", "event", "timestamp", "userData", "byetype", "duration",
              "recordurl"]  # fmt: skip
    for _ in range(2000):
        event: dict[str, object] = json.loads(hangup_body())
        for name in rng.sample(fields, rng.randint(1, 4)):
            if rng.random() < 0.2:
                event.pop(name, None)
            else:
                event[name] = rng.choice(odd)
        try:
            for parsed in e9.parse_webhook(json.dumps(event).encode(), "application/json"):
                assert parsed.vendor_call_id is None or len(parsed.vendor_call_id) <= 64
                assert len(parsed.dedupe_key) <= 128 and len(parsed.ch_state or "") <= 32
                assert parsed.recording_url is None or isinstance(parsed.recording_url, str)
        except MalformedEvent:
            pass


def test_call_result_translation() -> None:
    ringing = {"state": "ringing", "byetype": None, "duration": 0, "recordurl": "",
               "callTime": "", "endTime": ""}  # fmt: skip
    assert result_events("S1", "cc1", ringing) == []
    talking = {**ringing, "state": "talking", "callTime": "20260101080001"}
    [dialing] = result_events("S1", "cc1", talking)
    assert (dialing.kind, dialing.at, dialing.cc_call_id) == (
        EventKind.A_DIALING, 1_767_225_601_000, "cc1")  # fmt: skip
    ended = {**talking, "state": "ended", "byetype": -7, "duration": 30,
             "recordurl": "http://x/r.wav", "endTime": "20260101080101"}  # fmt: skip
    events = result_events("S1", "cc1", ended)
    assert [e.kind for e in events] == [EventKind.A_DIALING, EventKind.HANGUP]
    hangup = events[1]
    assert (hangup.at, hangup.close_type, hangup.duration_s, hangup.recording_url) == (
        1_767_225_661_000, CloseType.MAX_DURATION, 30, "http://x/r.wav")  # fmt: skip
    assert [e.dedupe_key for e in events] == ["result:S1:a_dialing", "result:S1:hangup"]
    assert result_events("S1", "cc1", ended) == events
    # an ended call without its end time gives no hang-up: no time is invented
    assert [e.kind for e in result_events("S1", "cc1", {**ended, "endTime": ""})] == [
        EventKind.A_DIALING
    ]
    odd = {"state": ["x"], "byetype": "x", "duration": "x", "recordurl": 5, "callTime": 3,
           "endTime": "garbage"}  # fmt: skip
    assert result_events("S1", "cc1", odd) == []
    [no_bye] = result_events("S1", "cc1", {**ended, "byetype": None, "callTime": ""})
    assert no_bye.close_type is CloseType.OTHER


def test_call_result_per_leg_times() -> None:
    """Each per-leg time gives its event in any state; a missing one gives none."""
    talking = {"state": "talking", "byetype": None, "duration": 0, "recordurl": "",
               "callTime": "20260101080001", "answerATime": "20260101080003",
               "callBTime": "20260101080003", "answerBTime": "20260101080006",
               "bridgeTime": "20260101080006", "endTime": ""}  # fmt: skip
    t0 = 1_767_225_600_000
    assert [(e.kind, e.at) for e in result_events("S1", "cc1", talking)] == [
        (EventKind.A_DIALING, t0 + 1000), (EventKind.A_ANSWERED, t0 + 3000),
        (EventKind.B_DIALING, t0 + 3000), (EventKind.B_ANSWERED, t0 + 6000),
        (EventKind.BRIDGED, t0 + 6000),
    ]  # fmt: skip
    ringing = {k: v for k, v in talking.items() if k not in ("answerBTime", "bridgeTime")}
    ringing["state"] = "ringing"
    assert [e.kind for e in result_events("S1", "cc1", ringing)] == [
        EventKind.A_DIALING, EventKind.A_ANSWERED, EventKind.B_DIALING]  # fmt: skip
    ended = {**talking, "state": "ended", "byetype": 1, "duration": 4,
             "endTime": "20260101080010"}  # fmt: skip
    events = result_events("S1", "cc1", ended)
    assert [e.dedupe_key for e in events] == [
        f"result:S1:{k}" for k in ("a_dialing", "a_answered", "b_dialing", "b_answered",
                                   "bridged", "hangup")
    ]  # fmt: skip
    assert result_events("S1", "cc1", {**ended, "bridgeTime": "garbage"})[4].kind is (
        EventKind.HANGUP)  # fmt: skip
