"""Channel e9: JSON REST with an MD5 ``sig``, events pushed by HMAC-signed webhooks.

Modelled on Chinese CPaaS callback APIs (e.g. Cloopen); see VENDORS.md. Vendor times are
``yyyyMMddHHmmss`` in Beijing time (UTC+8, no daylight saving). ``CallResult`` answers what
became of one call (by callSid) when its webhooks went missing.
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

from channels import base
from channels.http import read_object, send, stream_recording
from core.config import CoreSettings
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


# CallResult's per-leg times → the events they prove (in the order the call goes).
RESULT_TIMES = {
    "callTime": EventKind.A_DIALING,
    "answerATime": EventKind.A_ANSWERED,
    "callBTime": EventKind.B_DIALING,
    "answerBTime": EventKind.B_ANSWERED,
    "bridgeTime": EventKind.BRIDGED,
}


class E9Settings(CoreSettings):
    """Channel e9's account, read as ``CC_E9_*`` (defaults point at the local simulator)."""

    e9_base_url: str = "http://127.0.0.1:9101"
    e9_account_sid: str = "8a216da8e9demo0001"
    e9_auth_token: str = "e9-demo-auth-token"


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

    async def place_call(self, request: base.PlaceCallRequest) -> base.PlacedCall:
        body: dict[str, Any] = {
            "from": request.caller,
            "to": request.called,
            "fromSerNum": request.display_to_a,
            "customerSerNum": request.display_to_b,
            "maxCallTime": str(request.max_duration_s),
            "needRecord": "1" if request.record else "0",
            "userData": request.cc_call_id,
            "statusUrl": self._status_url,
            **request.prompt("promptTone", "playText"),
        }
        answer = await self._call("POST", "/Calls/Callback", json_body=body, placing=True)
        try:
            return base.PlacedCall(
                vendor_call_id=base.fit(str(answer["CallBack"]["callSid"]), base.VENDOR_ID_MAX)
            )
        except (KeyError, TypeError) as exc:
            raise base.VendorOutcomeUnknown(
                f"e9 accepted without a callSid: {answer!r:.200}"
            ) from exc

    async def call_result(self, vendor_call_id: str, cc_call_id: str) -> list[base.CallEvent]:
        """``CallResult`` of one call, as unified events (see ``result_events``)."""
        answer = await self._call("GET", "/CallResult", params={"callsid": vendor_call_id})
        result = answer.get("CallResult")
        if not isinstance(result, dict):
            raise base.VendorServerError("e9 /CallResult: answer without CallResult")
        return result_events(vendor_call_id, cc_call_id, result)

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
        placing: bool = False,
    ) -> dict[str, Any]:
        ts = beijing_ts()
        auth = base64.b64encode(f"{self._account_sid}:{ts}".encode()).decode()
        query = {"sig": request_sig(self._account_sid, self._auth_token, ts), **(params or {})}
        headers = {"Authorization": auth, "Accept": "application/json"}
        response = await send(
            self._http, method, self._root + path, what=f"e9 {path}", placing=placing,
            params=query, json=json_body, headers=headers,
        )  # fmt: skip
        answer = read_object(response, f"e9 {path}")
        code = str(answer.get("statusCode", ""))
        if code != OK:
            raise base.VendorRejected(code, str(answer.get("statusMsg", "")))
        return answer

    def open_recording(self, url: str) -> contextlib.AbstractAsyncContextManager[base.Recording]:
        # ``recordurl`` is a plain unauthenticated GET: 404 until ready, 410 once expired.
        return stream_recording(self._http, url, "e9")

    def verify_webhook(self, url: str, headers: Mapping[str, str], body: bytes) -> None:
        timestamp = headers.get("x-e9-timestamp", "")
        given = headers.get("x-e9-signature", "")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise base.InvalidSignature("e9 webhook signature does not verify")
        expected = webhook_signature(self._auth_token, timestamp, body)
        # Bytes, not str: compare_digest refuses non-ASCII str with a TypeError.
        if not hmac.compare_digest(given.lower().encode(), expected.encode()):
            raise base.InvalidSignature("e9 webhook signature does not verify")
        if abs(time.time() - int(timestamp)) > WEBHOOK_MAX_AGE_S:
            raise base.InvalidSignature("e9 webhook timestamp out of range")

    def parse_webhook(self, body: bytes, content_type: str) -> list[base.CallEvent]:
        try:
            payload = json.loads(body)
            kind = EVENT_KINDS[payload["event"]]
            at = parse_beijing_ts(str(payload["timestamp"]))
            event_id = str(payload["eventId"])
            call_sid = str(payload["callSid"])
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise base.MalformedEvent(f"not an e9 event: {exc.__class__.__name__}") from exc
        ch_state = str(payload["event"])
        close_type = duration_s = None
        if kind is EventKind.HANGUP:
            byetype = base.int_or_none(payload.get("byetype"))
            close_type = (
                BYETYPE_CLOSE.get(byetype, CloseType.OTHER) if byetype is not None else None
            )
            ch_state = f"hangup:{byetype}"
            duration_s = _seconds(payload.get("duration"))
        return [
            base.vendor_event(
                cc_call_id=base.cc_call_id_of(payload.get("userData")),
                vendor_call_id=call_sid,
                kind=kind,
                at=at,
                ch_state=ch_state,
                close_type=close_type,
                recording_url=_text(payload.get("recordurl")),
                dedupe_key=event_id,
                duration_s=duration_s,
            )
        ]

    def webhook_ack(self) -> dict[str, str]:
        return {"statusCode": OK}


def build(settings: E9Settings) -> E9Channel:
    return E9Channel(settings.e9_base_url, settings.e9_account_sid, settings.e9_auth_token,
                     base.status_url(settings, "e9"), settings.vendor_timeout_s)  # fmt: skip


def result_events(
    vendor_call_id: str, cc_call_id: str, result: Mapping[str, Any]
) -> list[base.CallEvent]:
    """Translate a ``CallResult`` into the events it proves, with stable dedupe keys.

    Each leg time the vendor reports gives its event, whatever the state (a ``ringing`` or
    ``talking`` call gives the leg events known so far): ``callTime`` → ``a_dialing``,
    ``answerATime`` → ``a_answered``, ``callBTime`` → ``b_dialing``, ``answerBTime`` →
    ``b_answered``, ``bridgeTime`` → ``bridged``. These are the moments the webhooks carry, so
    a record rebuilt from the result equals one built from the webhooks. An ``ended`` call
    adds its hang-up at ``endTime`` with ``byetype``, ``duration`` (so CC can derive conn_time
    when no bridge time is known) and ``recordurl``. No time is ever invented: a missing
    time gives no event. Asking twice yields the same keys, so nothing new is stored.
    """
    state = _text(result.get("state")) or "unknown"

    def event(kind: EventKind, at: int, ch_state: str, **extra: Any) -> base.CallEvent:
        key = f"result:{vendor_call_id}:{kind.value}"
        return base.vendor_event(cc_call_id=cc_call_id, vendor_call_id=vendor_call_id, kind=kind,
                                 at=at, ch_state=ch_state, dedupe_key=key, **extra)  # fmt: skip

    events = []
    for field, kind in RESULT_TIMES.items():
        if (at := _beijing_or_none(result.get(field))) is not None:
            events.append(event(kind, at, f"result:{state}"))
    ended_at = _beijing_or_none(result.get("endTime"))
    if state == "ended" and ended_at is not None:
        byetype = base.int_or_none(result.get("byetype"))
        close_type = CloseType.OTHER
        if byetype is not None:
            close_type = BYETYPE_CLOSE.get(byetype, CloseType.OTHER)
        events.append(
            event(
                EventKind.HANGUP,
                ended_at,
                f"hangup:{byetype}",
                close_type=close_type,
                duration_s=_seconds(result.get("duration")),
                recording_url=_text(result.get("recordurl")),
            )
        )
    return events


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value and base.encodable(value) else None


def _beijing_or_none(value: object) -> int | None:
    try:
        return parse_beijing_ts(value) if isinstance(value, str) and value else None
    except (ValueError, OverflowError):
        return None


def _seconds(value: object) -> int | None:
    seconds = base.int_or_none(value)
    return seconds if seconds is not None and 0 <= seconds < 2**31 else None
