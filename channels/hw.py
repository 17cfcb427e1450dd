"""Channel hw: polled (modelled on Huawei Cloud VoiceCall click2Call v2.0); see VENDORS.md.

Quirks kept here and nowhere else: the X-AKSK UsernameToken auth; times are
``yyyy-MM-dd HH:mm:ss`` in UTC with no zone; ``maxDuration`` is in minutes; on ``disconnect``
the ``called`` field holds the A number, so numbers on events are never trusted (the call is
identified by userData and sessionId); the ``fee`` event is the CDR and the last word.
``call_result`` reads a call's events from the start of the same poll endpoint.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import math
import secrets
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from channels.base import (
    VENDOR_ID_MAX,
    CallEvent,
    PlaceCallRequest,
    PlacedCall,
    PollBatch,
    Recording,
    RecordingUnavailable,
    VendorNetworkError,
    VendorOutcomeUnknown,
    VendorRejected,
    VendorServerError,
    cc_call_id_of,
    fit,
)
from channels.http import raise_for_recording, read_object, send, stream_recording
from core.config import CoreSettings
from core.types import ChannelMode, CloseType, EventKind

CLICK2CALL = "/rest/httpsessions/click2Call/v2.0"
CALL_STOP = "/rest/httpsessions/callStop/v2.0"
RECORDING = "/rest/provision/voice/record/v1.0"

_LEG_KINDS = {
    ("callout", 0): [EventKind.A_DIALING],
    ("alerting", 0): [EventKind.A_RINGING],
    ("answer", 0): [EventKind.A_ANSWERED],
    ("callout", 1): [EventKind.B_DIALING],
    ("alerting", 1): [EventKind.B_RINGING],
    ("answer", 1): [EventKind.B_ANSWERED, EventKind.BRIDGED],  # B answering is the bridge
}
STATE_CODES = {
    0: CloseType.NORMAL,
    8010: CloseType.MAX_DURATION,
    8100: CloseType.B_UNREACHABLE, 8101: CloseType.B_UNREACHABLE, 8102: CloseType.B_BUSY,
    8103: CloseType.B_UNREACHABLE, 8104: CloseType.B_UNREACHABLE,
    8106: CloseType.A_UNREACHABLE, 8107: CloseType.A_UNREACHABLE, 8108: CloseType.A_BUSY,
    8109: CloseType.A_UNREACHABLE, 8110: CloseType.A_UNREACHABLE,
    8000: CloseType.CHANNEL_SERVER_ERROR,
}  # fmt: skip
# CDR time field → the event it stands for
_CDR_TIMES = [
    ("callOutStartTime", EventKind.A_DIALING),
    ("callOutAlertingTime", EventKind.A_RINGING),
    ("callOutAnswerTime", EventKind.A_ANSWERED),
    ("fwdStartTime", EventKind.B_DIALING),
    ("fwdAlertingTime", EventKind.B_RINGING),
    ("fwdAnswerTime", EventKind.B_ANSWERED),
    ("fwdAnswerTime", EventKind.BRIDGED),
]


Body = dict[str, Any] | None
Params = dict[str, str] | None
# call_result reads at most this many pages of events (a call has a few dozen at most).
RESULT_MAX_PAGES = 50


class _EventMaker:
    """Builds the CallEvents of one hw session (ids and dedupe keys in one place)."""

    def __init__(self, session: str, cc_call_id: str | None) -> None:
        self.session, self.cc_call_id = fit(session, VENDOR_ID_MAX), cc_call_id

    def __call__(
        self,
        kind: EventKind,
        at: int,
        key: str,
        ch_state: str | None = None,
        close_type: CloseType | None = None,
        recording_url: str | None = None,
    ) -> CallEvent:
        return CallEvent(
            cc_call_id=self.cc_call_id,
            vendor_call_id=self.session,
            kind=kind,
            at=at,
            ch_state=ch_state,
            close_type=close_type,
            recording_url=recording_url,
            dedupe_key=f"{self.session}:{key}",
        )


class HwSettings(CoreSettings):
    """Channel hw's app, read as ``CC_HW_*`` (defaults point at the local simulator)."""

    hw_base_url: str = "http://127.0.0.1:9102"
    hw_app_key: str = "hw-demo-app-key"
    hw_app_secret: str = "hw-demo-app-secret"


def build(settings: HwSettings) -> HwChannel:
    return HwChannel(settings.hw_base_url, settings.hw_app_key, settings.hw_app_secret,
                     settings.vendor_timeout_s)  # fmt: skip


def parse_utc(value: str) -> int:
    moment = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def close_type_of(state_code: int | None, party: int | None) -> CloseType:
    if state_code == 8003:  # ring timeout: the leg that was ringing did not answer
        return CloseType.A_UNREACHABLE if party == 0 else CloseType.B_UNREACHABLE
    return (
        STATE_CODES.get(state_code, CloseType.OTHER) if state_code is not None else CloseType.OTHER
    )


def aksk_headers(app_key: str, app_secret: str) -> dict[str, str]:
    nonce = secrets.token_hex(16)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(
        hmac.new(app_secret.encode(), (nonce + created).encode(), hashlib.sha256).digest()
    ).decode()
    return {
        "Authorization": 'AKSK realm="SDP",profile="UsernameToken",type="Appkey"',
        "X-AKSK": f'UsernameToken Username="{app_key}",PasswordDigest="{digest}",'
        f'Nonce="{nonce}",Created="{created}"',
    }


class HwChannel:
    name = "hw"
    mode = ChannelMode.POLL

    def __init__(
        self, base_url: str, app_key: str, app_secret: str, timeout_s: float = 5.0
    ) -> None:
        self._base = base_url.rstrip("/")
        self._app_key, self._app_secret = app_key, app_secret
        self._http = httpx.AsyncClient(base_url=self._base, timeout=timeout_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def place_call(self, request: PlaceCallRequest) -> PlacedCall:
        body: dict[str, Any] = {
            "displayNbr": request.display_to_a,
            "callerNbr": request.caller,
            "displayCalleeNbr": request.display_to_b,
            "calleeNbr": request.called,
            "maxDuration": math.ceil(request.max_duration_s / 60),
            "recordFlag": "true" if request.record else "false",
            "userData": request.cc_call_id,
        }
        if request.ivr_url:
            body.update(playPreVoice="true", preVoice=request.ivr_url)
        _, answer = await self._request("POST", CLICK2CALL, json_body=body, placing=True)
        if not answer.get("sessionId"):
            raise VendorOutcomeUnknown("hw accepted without a sessionId")
        return PlacedCall(vendor_call_id=fit(str(answer["sessionId"]), VENDOR_ID_MAX))

    async def call_result(self, vendor_call_id: str, cc_call_id: str) -> list[CallEvent]:
        """Every event the vendor holds for the call, read from the start of its poll.

        The events and their dedupe keys are those the poller gets, so nothing is stored
        twice; the CDR (``fee``) among them is the last word. ``cc_call_id`` fills in an
        event that lost its userData.
        """
        events: list[CallEvent] = []
        cursor: str | None = None
        for _ in range(RESULT_MAX_PAGES):
            batch = await self.poll(vendor_call_id, cursor)
            events += batch.events
            if not batch.more or batch.cursor == cursor:
                break
            cursor = batch.cursor
        return [
            event if event.cc_call_id else event.model_copy(update={"cc_call_id": cc_call_id})
            for event in events
        ]

    async def hangup(self, vendor_call_id: str) -> None:
        await self._call(
            "POST", CALL_STOP, json_body={"sessionid": vendor_call_id, "signal": "call_stop"}
        )

    async def probe(self) -> None:
        # The poll endpoint answers an unknown session with no events (VENDORS.md).
        await self._call("GET", CLICK2CALL + "/events", params={"sessionId": "probe", "since": "0"})

    async def poll(self, vendor_call_id: str, cursor: str | None) -> PollBatch:
        params = {"sessionId": vendor_call_id, "since": cursor or "0"}
        raw, answer = await self._request("GET", CLICK2CALL + "/events", params=params)
        events: list[CallEvent] = []
        final = False
        seqs = [int(cursor or 0)]
        for item in answer.get("events") or []:
            events += self._events_of(item)
            seqs.append(int(item.get("seq", 0)))
            final = final or item.get("eventType") == "fee"
        last_seq = str(max(seqs))
        more = bool(answer.get("more"))
        return PollBatch(events=events, cursor=last_seq, more=more, final=final, raw=raw)

    def _events_of(self, item: Mapping[str, Any]) -> list[CallEvent]:
        try:
            info = item["statusInfo"]
            kind_name, seq = str(item["eventType"]), int(item["seq"])
            session = str(info["sessionId"])
            make = _EventMaker(session, cc_call_id_of(info.get("userData")))
            if kind_name == "fee":
                return self._cdr_events(make, info)
            at, party = parse_utc(str(info["timestamp"])), _int(info.get("partyType"))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise VendorServerError(f"unreadable hw event: {exc.__class__.__name__}") from exc
        if kind_name == "disconnect":
            code = _int(info.get("stateCode"))
            closed = close_type_of(code, party)
            return [make(EventKind.HANGUP, at, f"{seq}", f"disconnect:{code}", close_type=closed)]
        kinds = _LEG_KINDS.get((kind_name, party or 0), [])
        return [make(kind, at, f"{seq}:{kind.value}", kind_name) for kind in kinds]

    def _cdr_events(self, make: _EventMaker, cdr: Mapping[str, Any]) -> list[CallEvent]:
        events = [
            make(kind, parse_utc(str(cdr[field])), f"fee:{kind.value}")
            for field, kind in _CDR_TIMES
            if cdr.get(field)
        ]
        if not cdr.get("callEndTime"):
            return events
        end = parse_utc(str(cdr["callEndTime"]))
        closed = close_type_of(_int(cdr.get("ulFailReason")), None)
        events.append(make(EventKind.HANGUP, end, "fee:hangup", "fee", close_type=closed))
        if str(cdr.get("recordFlag")) == "1" and cdr.get("recordObjectName"):
            query = urlencode(
                {"fileName": cdr["recordObjectName"], "recordDomain": cdr.get("recordDomain", "")}
            )
            url = f"{self._base}{RECORDING}?{query}"
            events.append(make(EventKind.RECORDING_READY, end, "fee:recording", recording_url=url))
        return events

    @contextlib.asynccontextmanager
    async def open_recording(self, url: str) -> AsyncIterator[Recording]:
        """The provision URL (AKSK-signed) answers 301 to a short-lived download URL.

        The download URL is fetched fresh on every attempt (it expires) and without our
        AKSK headers: it is signed by the vendor and may live on another host.
        """
        headers = aksk_headers(self._app_key, self._app_secret)
        try:
            response = await self._http.get(url, headers=headers, follow_redirects=False)
        except httpx.TransportError as exc:
            raise VendorNetworkError(f"hw recording: {exc.__class__.__name__}") from exc
        location = response.headers.get("location")
        if not (response.is_redirect and location):
            raise_for_recording(response, "hw")
            raise RecordingUnavailable(f"hw recording: HTTP {response.status_code}, no redirect")
        async with stream_recording(self._http, str(response.url.join(location)), "hw") as rec:
            yield rec

    async def _call(
        self, method: str, path: str, json_body: Body = None, params: Params = None
    ) -> dict[str, Any]:
        return (await self._request(method, path, json_body, params))[1]

    async def _request(
        self,
        method: str,
        path: str,
        json_body: Body = None,
        params: Params = None,
        placing: bool = False,
    ) -> tuple[bytes, dict[str, Any]]:
        headers = aksk_headers(self._app_key, self._app_secret)
        response = await send(self._http, method, path, what=f"hw {path}", placing=placing,
                              json=json_body, params=params, headers=headers)  # fmt: skip
        answer = read_object(response, f"hw {path}")
        if str(answer.get("resultcode")) != "0":
            raise VendorRejected(str(answer.get("resultcode")), str(answer.get("resultdesc", "")))
        return response.content, answer


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return None
