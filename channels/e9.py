"""Channel e9: JSON REST with an MD5 ``sig``, events pushed by HMAC-signed webhooks.

Modelled on Chinese CPaaS callback APIs (e.g. Cloopen); see VENDORS.md. Vendor times are
``yyyyMMddHHmmss`` in Beijing time (UTC+8, no daylight saving).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from channels.base import (
    CallEvent,
    InvalidSignature,
    MalformedEvent,
    PlaceCallRequest,
    PlacedCall,
    Recording,
    VendorNetworkError,
    VendorRejected,
    VendorServerError,
    stream_recording,
)
from core.types import ChannelMode, CloseType, EventKind

BEIJING = timezone(timedelta(hours=8))
API_VERSION = "2013-12-26"
OK = "000000"
# A webhook older than this is refused even with a valid signature (replay protection).
WEBHOOK_MAX_AGE_S = 3600

EVENT_KINDS = {
    "callA": EventKind.A_DIALING,
    "ringA": EventKind.A_RINGING,
    "answerA": EventKind.A_ANSWERED,
    "callB": EventKind.B_DIALING,
    "ringB": EventKind.B_RINGING,
    "answerB": EventKind.B_ANSWERED,
    "bridge": EventKind.BRIDGED,
    "hangup": EventKind.HANGUP,
}

BYETYPE_CLOSE = {
    0: CloseType.NORMAL,  # A hung up
    1: CloseType.NORMAL,  # B hung up
    -1: CloseType.A_UNREACHABLE,  # A no answer
    -2: CloseType.A_BUSY,
    -3: CloseType.A_UNREACHABLE,
    -4: CloseType.B_UNREACHABLE,  # B no answer
    -5: CloseType.B_BUSY,
    -6: CloseType.B_UNREACHABLE,
    -7: CloseType.MAX_DURATION,
    -8: CloseType.CHANNEL_SERVER_ERROR,
    -9: CloseType.NORMAL,  # cancelled at CC's request: an ordinary hang-up for the app
}


def beijing_ts(at: datetime | None = None) -> str:
    return (at or datetime.now(BEIJING)).astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


def parse_beijing_ts(value: str) -> int:
    moment = datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    return int(moment.timestamp() * 1000)


def request_sig(account_sid: str, auth_token: str, ts: str) -> str:
    return hashlib.md5((account_sid + auth_token + ts).encode()).hexdigest().upper()


def webhook_signature(auth_token: str, timestamp: str, body: bytes) -> str:
    return hmac.new(auth_token.encode(), timestamp.encode() + b"." + body, "sha256").hexdigest()


class E9Channel:
    name = "e9"
    mode = ChannelMode.WEBHOOK

    def __init__(
        self,
        base_url: str,
        account_sid: str,
        auth_token: str,
        status_url: str,
        timeout_s: float = 5.0,
    ) -> None:
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._status_url = status_url
        self._root = f"/{API_VERSION}/Accounts/{account_sid}"
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def place_call(self, request: PlaceCallRequest) -> PlacedCall:
        body: dict[str, Any] = {
            "from": request.caller,
            "to": request.called,
            "fromSerNum": request.display_to_a,
            "customerSerNum": request.display_to_b,
            "maxCallTime": str(request.max_duration_s),
            "needRecord": "1" if request.record else "0",
            "userData": request.cc_call_id,
            "statusUrl": self._status_url,
        }
        if request.ivr_url:
            body["promptTone"] = request.ivr_url
        elif request.ivr_text:
            body["playText"] = request.ivr_text
        answer = await self._call("POST", "/Calls/Callback", json_body=body)
        try:
            return PlacedCall(vendor_call_id=str(answer["CallBack"]["callSid"]))
        except (KeyError, TypeError) as exc:
            raise VendorServerError(f"e9 answer without callSid: {answer!r:.200}") from exc

    async def find_call(self, cc_call_id: str) -> str | None:
        answer = await self._call("GET", "/Calls/Query", params={"userData": cc_call_id})
        found = answer.get("calls") or []
        return str(found[0]["callSid"]) if found else None

    async def hangup(self, vendor_call_id: str) -> None:
        await self._call("POST", "/Calls/CallCancel", json_body={"callSid": vendor_call_id})

    async def probe(self) -> None:
        await self._call("GET", "/AccountInfo")

    async def _call(
        self,
        method: str,
        path: str,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        ts = beijing_ts()
        auth = base64.b64encode(f"{self._account_sid}:{ts}".encode()).decode()
        query = {"sig": request_sig(self._account_sid, self._auth_token, ts), **(params or {})}
        try:
            response = await self._http.request(
                method,
                self._root + path,
                params=query,
                json=json_body,
                headers={"Authorization": auth, "Accept": "application/json"},
            )
        except httpx.TransportError as exc:
            raise VendorNetworkError(f"e9 {path}: {exc.__class__.__name__}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise VendorServerError(f"e9 {path}: HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError as exc:
            raise VendorServerError(f"e9 {path}: unreadable answer") from exc
        if not isinstance(answer, dict):
            raise VendorServerError(f"e9 {path}: unexpected answer")
        code = str(answer.get("statusCode", ""))
        if code != OK:
            raise VendorRejected(code, str(answer.get("statusMsg", "")))
        return answer

    def open_recording(self, url: str) -> contextlib.AbstractAsyncContextManager[Recording]:
        # ``recordurl`` is a plain unauthenticated GET: 404 until ready, 410 once expired.
        return stream_recording(self._http, url, "e9")

    def verify_webhook(self, url: str, headers: Mapping[str, str], body: bytes) -> None:
        timestamp = headers.get("x-e9-timestamp", "")
        given = headers.get("x-e9-signature", "")
        expected = webhook_signature(self._auth_token, timestamp, body)
        if not timestamp or not hmac.compare_digest(given.lower(), expected):
            raise InvalidSignature("e9 webhook signature does not verify")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > WEBHOOK_MAX_AGE_S:
            raise InvalidSignature("e9 webhook timestamp out of range")

    def parse_webhook(self, body: bytes, content_type: str) -> list[CallEvent]:
        try:
            payload = json.loads(body)
            kind = EVENT_KINDS[payload["event"]]
            at = parse_beijing_ts(str(payload["timestamp"]))
            event_id = str(payload["eventId"])
            call_sid = str(payload["callSid"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedEvent(f"not an e9 event: {exc.__class__.__name__}") from exc
        ch_state = payload["event"]
        close_type = None
        if kind is EventKind.HANGUP:
            byetype = _int_or_none(payload.get("byetype"))
            close_type = (
                BYETYPE_CLOSE.get(byetype, CloseType.OTHER) if byetype is not None else None
            )
            ch_state = f"hangup:{byetype}"
        return [
            CallEvent(
                cc_call_id=payload.get("userData") or None,
                vendor_call_id=call_sid,
                kind=kind,
                at=at,
                ch_state=ch_state,
                close_type=close_type,
                recording_url=payload.get("recordurl") or None,
                dedupe_key=event_id[:128],
            )
        ]

    def webhook_ack(self) -> dict[str, str]:
        return {"statusCode": OK}


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return None
