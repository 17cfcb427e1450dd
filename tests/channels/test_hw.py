"""The hw adapter's vendor quirks: AKSK auth, zone-less UTC times, stateCodes, the CDR."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from channels.base import VendorServerError
from channels.hw import HwChannel, aksk_headers, close_type_of, parse_utc
from core.types import CloseType, EventKind


def test_aksk_digest_is_hmac_sha256_of_nonce_and_created() -> None:
    headers = aksk_headers("key", "secret")
    fields = dict(re.findall(r'(\w+)="([^"]*)"', headers["X-AKSK"]))
    expected = base64.b64encode(
        hmac.new(b"secret", (fields["Nonce"] + fields["Created"]).encode(), hashlib.sha256).digest()
    ).decode()
    assert fields["PasswordDigest"] == expected and fields["Username"] == "key"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", fields["Created"])
    assert headers["Authorization"].startswith('AKSK realm="SDP"')
    assert aksk_headers("key", "secret")["X-AKSK"] != headers["X-AKSK"]  # fresh nonce


def test_times_are_utc_without_zone() -> None:
    assert parse_utc("2026-01-01 00:00:01") == 1_767_225_601_000


@pytest.mark.parametrize(
    ("code", "party", "close_type"),
    [(0, 1, CloseType.NORMAL), (8010, 1, CloseType.MAX_DURATION), (8102, 1, CloseType.B_BUSY),
     (8101, 1, CloseType.B_UNREACHABLE), (8108, 0, CloseType.A_BUSY),
     (8107, 0, CloseType.A_UNREACHABLE), (8003, 0, CloseType.A_UNREACHABLE),
     (8003, 1, CloseType.B_UNREACHABLE), (8000, 1, CloseType.CHANNEL_SERVER_ERROR),
     (1234, 1, CloseType.OTHER), (None, 1, CloseType.OTHER)],
)  # fmt: skip
def test_state_codes(code: int | None, party: int, close_type: CloseType) -> None:
    assert close_type_of(code, party) is close_type


async def test_disconnect_ignores_the_called_quirk_and_cdr_gives_every_time() -> None:
    hw = HwChannel("http://127.0.0.1:1", "k", "s")
    info = {"sessionId": "S", "timestamp": "2026-01-01 00:00:09", "caller": "+861",
            "called": "+861", "partyType": 1, "userData": "cc1", "stateCode": 8102}  # fmt: skip
    [hangup] = hw._events_of({"seq": 5, "eventType": "disconnect", "statusInfo": info})
    assert (hangup.kind, hangup.close_type, hangup.cc_call_id) == (
        EventKind.HANGUP, CloseType.B_BUSY, "cc1")  # fmt: skip
    answer_b = {**info, "partyType": 1}
    kinds = [
        e.kind for e in hw._events_of({"seq": 4, "eventType": "answer", "statusInfo": answer_b})
    ]
    assert kinds == [EventKind.B_ANSWERED, EventKind.BRIDGED]
    cdr = {"sessionId": "S", "userData": "cc1", "callOutStartTime": "2026-01-01 00:00:01",
           "callOutAlertingTime": "", "callOutAnswerTime": "2026-01-01 00:00:02",
           "fwdStartTime": "2026-01-01 00:00:03", "fwdAlertingTime": "",
           "fwdAnswerTime": "2026-01-01 00:00:04", "callEndTime": "2026-01-01 00:00:09",
           "ulFailReason": 0, "recordFlag": 1, "recordObjectName": "S.wav",
           "recordDomain": "d"}  # fmt: skip
    events = hw._events_of({"seq": 6, "eventType": "fee", "statusInfo": cdr})
    by_kind = {e.kind: e for e in events}
    assert by_kind[EventKind.BRIDGED].at == parse_utc("2026-01-01 00:00:04")
    assert by_kind[EventKind.HANGUP].close_type is CloseType.NORMAL
    assert "fileName=S.wav" in str(by_kind[EventKind.RECORDING_READY].recording_url)
    assert len({e.dedupe_key for e in events}) == len(events)
    await hw.aclose()


@pytest.mark.parametrize("user_data", [123, ["cc1"], {"a": 1}, "x" * 33, None, ""])
async def test_odd_user_data_and_long_ids_are_not_stored(user_data: object) -> None:
    hw = HwChannel("http://127.0.0.1:1", "k", "s")
    info = {"sessionId": "S" * 300, "timestamp": "2026-01-01 00:00:09", "partyType": 1,
            "userData": user_data}  # fmt: skip
    [event] = hw._events_of({"seq": 5, "eventType": "alerting", "statusInfo": info})
    assert event.cc_call_id is None
    assert event.vendor_call_id is not None and len(event.vendor_call_id) <= 64
    assert len(event.dedupe_key) <= 128
    await hw.aclose()


@pytest.mark.parametrize(
    "item", [{"seq": "x"}, {"seq": 1, "eventType": "answer", "statusInfo": "S1"}, "junk", None]
)
async def test_an_unreadable_event_is_a_vendor_error(item: object) -> None:
    hw = HwChannel("http://127.0.0.1:1", "k", "s")
    with pytest.raises(VendorServerError):
        hw._events_of(item)  # type: ignore[arg-type]
    await hw.aclose()
