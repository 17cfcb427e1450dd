"""Simulator of vendor hw (Huawei VoiceCall click2Call v2.0 style, polled), per VENDORS.md.

Written from the protocol table, not from ``channels/hw.py``. ``python -m simulators.hw``
serves it on the port of ``CC_HW_BASE_URL``. It serves only hw's own endpoints (plus
``/_sim/``): there is no lookup by userData.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from channels.registry import Settings, get_settings
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

CLICK2CALL = "/rest/httpsessions/click2Call/v2.0"
MAX_SKEW_S = 300
PAGE = 20
NUMBER = re.compile(r"^\+?\d{7,15}$")
AKSK = re.compile(r'(\w+)="([^"]*)"')
# step → (eventType, partyType)
EVENT_TYPES = {
    Step.A_DIALING: ("callout", 0), Step.A_RINGING: ("alerting", 0), Step.A_ANSWERED: ("answer", 0),
    Step.B_DIALING: ("callout", 1), Step.B_RINGING: ("alerting", 1), Step.B_ANSWERED: ("answer", 1),
}  # fmt: skip
STATE_CODES = {
    Reason.A_HUNG_UP: 0, Reason.B_HUNG_UP: 0, Reason.CANCELLED: 0, Reason.A_NO_ANSWER: 8107,
    Reason.A_BUSY: 8108, Reason.A_UNREACHABLE: 8109, Reason.B_NO_ANSWER: 8101,
    Reason.B_BUSY: 8102, Reason.B_UNREACHABLE: 8103, Reason.MAX_DURATION: 8010,
    Reason.VENDOR_ERROR: 8000,
}  # fmt: skip
CDR_FIELDS = {
    Step.A_DIALING: "callOutStartTime", Step.A_RINGING: "callOutAlertingTime",
    Step.A_ANSWERED: "callOutAnswerTime", Step.B_DIALING: "fwdStartTime",
    Step.B_RINGING: "fwdAlertingTime", Step.B_ANSWERED: "fwdAnswerTime",
}  # fmt: skip


def utc(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def result(code: str = "0", desc: str = "Success", status: int = 200, **extra: Any) -> JSONResponse:
    return JSONResponse({"resultcode": code, "resultdesc": desc, **extra}, status_code=status)


@dataclass
class Session:
    id: str
    body: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    times: dict[str, str] = field(default_factory=dict)
    bridged_at: int | None = None
    ended_at: int | None = None
    talk_ms: int = 0
    cancel: asyncio.Event = field(default_factory=asyncio.Event)

    def view(self) -> dict[str, Any]:
        return {"sessionId": self.id, "userData": self.body.get("userData"),
                "bridged_at": self.bridged_at, "ended": self.ended_at is not None}  # fmt: skip


class HwSimulator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sim = SimState(retry_scale=settings.sim_retry_scale)
        self.sessions: dict[str, Session] = {}
        self.nonces: dict[str, float] = {}
        self.files: dict[str, tuple[str, int]] = {}  # download token → (session, expiry ms)

    def authorised(self, request: Request) -> bool:
        fields = dict(AKSK.findall(request.headers.get("x-aksk", "")))
        try:
            created = datetime.strptime(fields["Created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            nonce, digest = fields["Nonce"], fields["PasswordDigest"]
        except (KeyError, ValueError):
            return False
        secret = self.settings.hw_app_secret.encode()
        expected = base64.b64encode(
            hmac.new(secret, (nonce + fields["Created"]).encode(), hashlib.sha256).digest()
        ).decode()
        now = time.time()
        self.nonces = {n: t for n, t in self.nonces.items() if now - t < 2 * MAX_SKEW_S}
        fresh = abs(now - created.timestamp()) <= MAX_SKEW_S and nonce not in self.nonces
        ok = fields.get("Username") == self.settings.hw_app_key and hmac.compare_digest(
            digest.encode(), expected.encode()
        )
        if ok and fresh:
            self.nonces[nonce] = now
        return ok and fresh

    def denied(self) -> JSONResponse:
        return result("1023006", "authentication failed", status=401)

    async def click2call(self, request: Request) -> Response:
        fault = self.sim.faults.place_call
        if (faulty := await transport_fault(fault)) is not None:
            return faulty
        if fault == "auth_reject" or not self.authorised(request):
            return self.denied()
        try:
            body = json.loads(await request.body())
            assert isinstance(body, dict)
        except (ValueError, AssertionError):
            return result("1010002", "illegal request", status=400)
        if not all(NUMBER.match(str(body.get(k, ""))) for k in ("callerNbr", "calleeNbr")):
            return result("1010002", "illegal request", status=400)
        if not NUMBER.match(str(body.get("displayNbr", ""))):
            return result("1010023", "invalid displayNbr", status=400)
        session = Session(id=uuid.uuid4().hex, body=body)
        self.sessions[session.id] = session
        self.sim.spawn(self.run_call(session))
        if fault == "timeout_after_accept":
            await self.sim.hold()  # the call runs; the client never hears of it
        return result(sessionId=session.id)

    async def run_call(self, session: Session) -> None:
        minutes = as_int(session.body.get("maxDuration"))
        beats = timeline(
            str(session.body["callerNbr"]),
            str(session.body["calleeNbr"]),
            self.sim.timing,
            minutes * 60,
        )

        async def emit(beat: Beat) -> None:
            at = now_ms()
            if beat.step in CDR_FIELDS:
                session.times[CDR_FIELDS[beat.step]] = utc(at)
            if beat.step is Step.BRIDGED:
                session.bridged_at = at
                return  # hw has no bridge event: B answering is the bridge
            if beat.step is Step.HANGUP:
                session.ended_at = at
                session.talk_ms = at - session.bridged_at if session.bridged_at else 0
                self.add_event(
                    session,
                    "disconnect",
                    at,
                    1,
                    stateCode=STATE_CODES[beat.reason or Reason.VENDOR_ERROR],
                    stateDesc=str(beat.reason),
                    called=session.body["callerNbr"],
                )  # the quirk
                self.add_cdr(session, beat)
                return
            event_type, party = EVENT_TYPES[beat.step]
            self.add_event(session, event_type, at, party)

        await play(beats, emit, session.cancel)

    def add_event(
        self, session: Session, event_type: str, at: int, party: int, **extra: Any
    ) -> None:
        info = {"sessionId": session.id, "timestamp": utc(at), "caller": session.body["callerNbr"],
                "called": session.body["calleeNbr"], "partyType": party,
                "userData": session.body.get("userData", ""), **extra}  # fmt: skip
        session.events.append(
            {"seq": len(session.events) + 1, "eventType": event_type, "statusInfo": info}
        )

    def add_cdr(self, session: Session, beat: Beat) -> None:
        recorded = session.body.get("recordFlag") == "true" and session.talk_ms >= 3000
        cdr = {field_name: "" for field_name in CDR_FIELDS.values()} | session.times
        self.add_event(session, "fee", session.ended_at or now_ms(), 0, **cdr,
                       callEndTime=utc(session.ended_at or now_ms()),
                       ulFailReason=STATE_CODES[beat.reason or Reason.VENDOR_ERROR],
                       recordFlag=1 if recorded else 0,
                       recordObjectName=f"{session.id}.wav" if recorded else "",
                       recordDomain="sim.hw" if recorded else "")  # fmt: skip

    async def events(self, request: Request) -> Response:
        if (faulty := await transport_fault(self.sim.faults.poll)) is not None:
            return faulty
        if not self.authorised(request):
            return self.denied()
        session = self.sessions.get(request.query_params.get("sessionId", ""))
        since = as_int(request.query_params.get("since"))
        pending = [e for e in session.events if e["seq"] > since] if session else []
        return result(events=self.disturbed(pending[:PAGE]), more=len(pending) > PAGE)

    def disturbed(self, page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The delivery faults, as a polled vendor shows them: repeats and shuffled pages."""
        faults, rng = self.sim.faults.delivery, self.sim.rng
        page = [
            copy
            for event in page
            for copy in [event] * (2 if rng.random() < faults.duplicate else 1)
        ]
        if faults.reorder:
            rng.shuffle(page)
        return page

    async def call_stop(self, request: Request) -> Response:
        if not self.authorised(request):
            return self.denied()
        with contextlib.suppress(ValueError, AttributeError):
            session = self.sessions.get(json.loads(await request.body()).get("sessionid", ""))
            if session is not None:
                session.cancel.set()
                return result()
        return result("1010002", "no such session", status=404)

    def recording(self, request: Request) -> Response:
        if not self.authorised(request):
            return self.denied()
        session = self.sessions.get(request.query_params.get("fileName", "").removesuffix(".wav"))
        if session is None or session.ended_at is None or session.talk_ms < 3000:
            return result("1010002", "no such recording", status=404)
        if now_ms() - session.ended_at < self.sim.timing.recording_delay_ms:
            return result("1010002", "recording not ready", status=404)
        token = uuid.uuid4().hex
        self.files[token] = (session.id, now_ms() + self.sim.timing.recording_ttl_ms)
        return RedirectResponse(f"{self.settings.hw_base_url}/_files/{token}.wav", status_code=301)

    def download(self, token: str) -> Response:
        session_id, expires = self.files.get(token.removesuffix(".wav"), ("", 0))
        if now_ms() > expires:
            return Response(status_code=403)
        return Response(tone_wav(), media_type="audio/wav")

    def calls_view(self) -> list[dict[str, Any]]:
        return [s.view() for s in self.sessions.values()]

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route(CLICK2CALL, self.click2call, methods=["POST"])
        router.add_api_route(CLICK2CALL + "/events", self.events, methods=["GET"])
        router.add_api_route("/rest/httpsessions/callStop/v2.0", self.call_stop, methods=["POST"])
        router.add_api_route("/rest/provision/voice/record/v1.0", self.recording, methods=["GET"])
        router.add_api_route("/_files/{token}", self.download, methods=["GET"])
        return router


def create_app(settings: Settings | None = None) -> FastAPI:
    return simulator_app("hw vendor simulator", HwSimulator(settings or get_settings()))


if __name__ == "__main__":
    serve(create_app, lambda settings: settings.hw_base_url, __doc__ or "")
