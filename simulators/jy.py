"""Simulator of vendor jy (Twilio-style form REST and per-leg callbacks), per VENDORS.md.

Written from the protocol table, not from ``channels/jy.py``. ``python -m simulators.jy``
serves it on the port of ``CC_JY_BASE_URL``. It serves only jy's own endpoints (plus
``/_sim/``): there is no lookup by Tag. The call resource carries Twilio's ``start_time``,
``end_time`` and ``duration``, and ``recording_url`` once a recorded call is over.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from core.config import Settings, get_settings
from simulators.common import (
    SimState,
    as_int,
    now_ms,
    serve,
    simulator_app,
    tone_wav,
    transport_fault,
)
from simulators.scenario import Beat, Reason, Step, play, timeline

ROOT = "/2010-04-01/Accounts/{account_sid}"
NUMBER = re.compile(r"^\+?\d{7,15}$")
CALLS_PER_SECOND = 20
# step → (Leg, CallStatus)
STATUSES = {
    Step.A_DIALING: ("A", "initiated"), Step.A_RINGING: ("A", "ringing"),
    Step.A_ANSWERED: ("A", "in-progress"), Step.B_DIALING: ("B", "initiated"),
    Step.B_RINGING: ("B", "ringing"), Step.B_ANSWERED: ("B", "in-progress"),
}  # fmt: skip
# hangup reason → the callbacks that end the call: (Leg, CallStatus, SipResponseCode)
ENDINGS = {
    Reason.A_BUSY: [("A", "busy", "486")], Reason.A_NO_ANSWER: [("A", "no-answer", "480")],
    Reason.A_UNREACHABLE: [("A", "failed", "404")],
    Reason.B_BUSY: [("B", "busy", "486"), ("A", "completed", "200")],
    Reason.B_NO_ANSWER: [("B", "no-answer", "480"), ("A", "completed", "200")],
    Reason.B_UNREACHABLE: [("B", "failed", "404"), ("A", "completed", "200")],
    Reason.VENDOR_ERROR: [("A", "failed", "500")],
}  # fmt: skip
BRIDGED_END = [("B", "completed", "200"), ("A", "completed", "200")]


def error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message, "status": status}, status_code=status, headers=headers
    )


def signature(token: str, url: str, params: dict[str, str]) -> str:
    payload = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(
        hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    ).decode()


@dataclass
class JyCall:
    sid: str
    form: dict[str, str]
    created: int
    status: str = "queued"
    started_at: int | None = None
    bridged_at: int | None = None
    ended_at: int | None = None
    seq: int = 0
    recording_url: str | None = None
    cancel: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def duration(self) -> str:
        """Whole talk seconds (rounded down); "0" for a call never bridged."""
        talk_ms = self.ended_at - self.bridged_at if self.ended_at and self.bridged_at else 0
        return str(talk_ms // 1000)

    def view(self) -> dict[str, Any]:
        """The call resource (Twilio's fields; ``tag`` and ``recording_url`` are jy's)."""
        return {
            "sid": self.sid,
            "status": self.status,
            "to": self.form.get("To"),
            "from": self.form.get("From"),
            "tag": self.form.get("Tag"),
            "date_created": rfc2822(self.created),
            "start_time": rfc2822(self.started_at),
            "end_time": rfc2822(self.ended_at),
            "duration": self.duration if self.ended_at else None,  # empty while live
            "recording_url": self.recording_url,
        }


def rfc2822(at_ms: int | None) -> str | None:
    return format_datetime(datetime.fromtimestamp(at_ms / 1000, UTC)) if at_ms else None


class JySimulator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sim = SimState(retry_scale=settings.sim_retry_scale)
        self.calls: dict[str, JyCall] = {}
        self.recent: list[float] = []  # request times, for the calls-per-second limit

    def authorised(self, account_sid: str, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        sid, token = self.settings.jy_account_sid, self.settings.jy_auth_token
        return (
            scheme.lower() == "basic"
            and account_sid == user == sid
            and hmac.compare_digest(password.encode(), token.encode())
        )

    def over_limit(self) -> bool:
        now = time.monotonic()
        self.recent = [t for t in self.recent if now - t < 1.0]
        self.recent.append(now)
        return len(self.recent) > CALLS_PER_SECOND

    async def create_call(self, account_sid: str, request: Request) -> Response:
        fault = self.sim.faults.place_call
        if fault == "rate_limit" or self.over_limit():
            return error(429, 20429, "Too Many Requests", {"Retry-After": "1"})
        if (faulty := await transport_fault(fault)) is not None:
            return faulty
        if fault == "auth_reject" or not self.authorised(account_sid, request):
            return error(401, 20003, "Authenticate")
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        for name in ("To", "BridgeTo"):
            if not NUMBER.match(form.get(name, "")):
                return error(400, 21211, f"Invalid '{name}' Phone Number")
        if not form.get("StatusCallback"):
            return error(400, 21205, "StatusCallback is required")
        call = JyCall(sid="CA" + uuid.uuid4().hex, form=form, created=now_ms())
        self.calls[call.sid] = call
        self.sim.spawn(self.run_call(call))
        if fault == "timeout_after_accept":
            await self.sim.hold()  # the call runs; the client never hears of it
        return JSONResponse(call.view(), status_code=201)

    async def run_call(self, call: JyCall) -> None:
        beats = timeline(
            call.form["To"],
            call.form["BridgeTo"],
            self.sim.timing,
            as_int(call.form.get("TimeLimit")),
        )

        async def emit(beat: Beat) -> None:
            if beat.step is Step.A_DIALING:
                call.started_at = now_ms()
            if beat.step is Step.BRIDGED:
                call.status, call.bridged_at = "in-progress", now_ms()
                return  # the bridge is reported as Leg=B in-progress
            if beat.step is not Step.HANGUP:
                call.status = "ringing" if beat.step is not Step.A_ANSWERED else call.status
                self.callback(call, *STATUSES[beat.step], "")
                return
            call.ended_at = now_ms()
            if call.form.get("Record") == "true" and call.bridged_at:
                account = ROOT.format(account_sid=self.settings.jy_account_sid)
                call.recording_url = (
                    f"{self.settings.jy_base_url}{account}/Recordings/RE{call.sid[2:]}"
                )
            reason = beat.reason or Reason.VENDOR_ERROR
            endings = (
                BRIDGED_END if call.bridged_at else ENDINGS.get(reason, [("A", "canceled", "487")])
            )
            call.status = endings[-1][1]
            for leg, status, sip in endings:
                self.callback(call, leg, status, sip)

        try:
            await play(beats, emit, call.cancel)
        finally:
            self.sim.flush(call.sid)

    def callback(self, call: JyCall, leg: str, status: str, sip: str) -> None:
        call.seq += 1
        params = {
            "AccountSid": self.settings.jy_account_sid,
            "CallSid": call.sid,
            "Leg": leg,
            "CallStatus": status,
            "SequenceNumber": str(call.seq),
            "Tag": call.form.get("Tag", ""),
            "Timestamp": format_datetime(datetime.now(UTC)),
            "SipResponseCode": sip or "200",
        }
        if status == "completed":
            params["CallDuration"] = call.duration
            if call.recording_url:
                params["RecordingUrl"] = call.recording_url
        url = call.form["StatusCallback"]
        body = urlencode(params).encode()
        sig = signature(self.settings.jy_auth_token, url, params)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Jy-Signature": sig}
        self.sim.send(call.sid, url, body, lambda: headers)

    async def call(self, account_sid: str, sid: str, request: Request) -> Response:
        if not self.authorised(account_sid, request):
            return error(401, 20003, "Authenticate")
        call = self.calls.get(sid.removesuffix(".json"))
        if call is None:
            return error(404, 20404, "The requested resource was not found")
        if request.method == "POST":
            wanted = dict(parse_qsl((await request.body()).decode())).get("Status")
            if wanted not in ("completed", "canceled"):
                return error(400, 21218, "Invalid Status")
            call.cancel.set()
        return JSONResponse(call.view())

    def recording(self, account_sid: str, name: str, request: Request) -> Response:
        if not self.authorised(account_sid, request):
            return error(401, 20003, "Authenticate")
        call = self.calls.get("CA" + name.removesuffix(".wav").removeprefix("RE"))
        if call is None or call.ended_at is None or not call.bridged_at:
            return error(404, 20404, "The requested resource was not found")
        if now_ms() - call.ended_at < self.sim.timing.recording_delay_ms:
            return error(404, 20404, "The requested resource was not found")
        return Response(tone_wav(), media_type="audio/wav")

    def calls_view(self) -> list[dict[str, Any]]:
        return [c.view() for c in self.calls.values()]

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route(ROOT + "/Calls.json", self.create_call, methods=["POST"])
        router.add_api_route(ROOT + "/Calls/{sid}", self.call, methods=["GET", "POST"])
        router.add_api_route(ROOT + "/Recordings/{name}", self.recording, methods=["GET"])
        return router


def create_app(settings: Settings | None = None) -> FastAPI:
    return simulator_app("jy vendor simulator", JySimulator(settings or get_settings()))


if __name__ == "__main__":
    serve(create_app, lambda settings: settings.jy_base_url, __doc__ or "")
