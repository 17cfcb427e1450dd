"""The e9 adapter's vendor quirks: signatures, Beijing times, byetype mapping."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from channels.base import InvalidSignature, MalformedEvent
from channels.e9 import E9Channel, parse_beijing_ts, request_sig
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
