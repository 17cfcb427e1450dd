"""Simulator of vendor jy (Twilio-style form REST and per-leg callbacks), per VENDORS.md.

Written from the protocol table, not from ``channels/jy.py``. ``python -m simulators.jy``
serves it on the port of ``CC_JY_BASE_URL``. It serves only jy's own endpoints (plus
``/_sim/``): there is no lookup by Tag. The call resource carries Twilio's ``start_time``,
``end_time`` and ``duration``, and ``recording_url`` once a recorded call is over.

Leg B is, as in Twilio, a child call of leg A (its own ``sid``, ``parent_call_sid`` = A's),
created by the dial when A answers (its ``date_created``), dialled at its ``start_time``; it
is listed by Twilio's filter ``GET .../Calls.json?ParentCallSid=<A's sid>`` (the only list
served) and fetched like any call. Its ``duration`` counts whole seconds from B's answer to
``end_time`` (on the callbacks' one-second clock). Every time in a resource is the very
moment the matching callback carries. The B-leg callbacks carry the parent's ``CallSid``.
The calls and their resources are in ``simulators/jy_calls.py``.

``POST /_sim/inbound`` plays a customer calling a 400 number: Twilio's voice webhook goes to
the number's URL (``CC_JY_INBOUND_URL``), signed as callbacks, and the TwiML CC answers is
obeyed (``simulators/jy_inbound.py``). The dial's callbacks carry both legs' statuses.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from twilio.request_validator import RequestValidator

from channels.registry import Settings, get_settings
from core.types import Direction
from simulators import common, control
from simulators.inbound import InboundReply, InboundResult, InboundStart, answer_customer
from simulators.jy_calls import NUMBER, ChildCall, JyCall, rfc2822
from simulators.jy_inbound import WEBHOOK_TIMEOUT_S, dialled_call, read_twiml, voice_webhook
from simulators.scenario import Beat, Reason, Step, inbound_timeline, timeline

ROOT = "/2010-04-01/Accounts/{account_sid}"
# step → (Leg, CallStatus)
STATUSES = {
    Step.A_DIALING: ("A", "initiated"),
    Step.A_RINGING: ("A", "ringing"),
    Step.A_ANSWERED: ("A", "in-progress"),
    Step.B_DIALING: ("B", "initiated"),
    Step.B_RINGING: ("B", "ringing"),
    Step.B_ANSWERED: ("B", "in-progress"),
}
# hangup reason → the callbacks that end the call: (Leg, CallStatus, SipResponseCode)
ENDINGS = {
    Reason.A_BUSY: [("A", "busy", "486")],
    Reason.A_NO_ANSWER: [("A", "no-answer", "480")],
    Reason.A_UNREACHABLE: [("A", "failed", "404")],
    Reason.B_BUSY: [("B", "busy", "486"), ("A", "completed", "200")],
    Reason.B_NO_ANSWER: [("B", "no-answer", "480"), ("A", "completed", "200")],
    Reason.B_UNREACHABLE: [("B", "failed", "404"), ("A", "completed", "200")],
    Reason.VENDOR_ERROR: [("A", "failed", "500")],
}
BRIDGED_END = [("B", "completed", "200"), ("A", "completed", "200")]
# hangup reason → the child (B) call's final status when B never answered.
CHILD_ENDS = {
    Reason.B_BUSY: "busy",
    Reason.B_NO_ANSWER: "no-answer",
    Reason.B_UNREACHABLE: "failed",
}
# A status → the ``statusCallbackEvent`` that asks for it (any other status: "completed").
STATUS_EVENTS = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}


def error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message, "status": status}, status_code=status, headers=headers
    )


def signature(token: str, url: str, params: dict[str, str]) -> str:
    """``X-Jy-Signature``: Twilio's request signature, by Twilio's own library."""
    return str(RequestValidator(token).compute_signature(url, params))


class JySimulator(common.CallSimulator[JyCall]):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.children: dict[str, ChildCall] = {}  # B legs, by their own sid
        rate = settings.sim_jy_cps  # calls per second, a second's worth at once
        self.bucket = common.TokenBucket(rate=rate, capacity=max(rate, 1.0))

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

    async def create_call(self, account_sid: str, request: Request) -> Response:
        fault = self.sim.faults.place_call
        if fault == "rate_limit" or not self.bucket.take():
            return error(429, 20429, "Too Many Requests", {"Retry-After": "1"})
        if (faulty := await common.transport_fault(fault)) is not None:
            return faulty
        if fault == "auth_reject" or not self.authorised(account_sid, request):
            return error(401, 20003, "Authenticate")
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        for name in ("To", "BridgeTo"):
            if not NUMBER.match(form.get(name, "")):
                return error(400, 21211, f"Invalid '{name}' Phone Number")
        if not form.get("StatusCallback"):
            return error(400, 21205, "StatusCallback is required")
        call = JyCall(
            sid="CA" + uuid.uuid4().hex,
            form=form,
            created=common.now_ms(),
            shown_to_a=common.text_or_none(form.get("From")),
            shown_to_b=common.text_or_none(form.get("BridgeCallerId")),
        )
        await self.start(call, fault)
        return JSONResponse(call.view(), status_code=201)

    async def run_call(self, call: JyCall) -> None:
        limit = common.as_int(call.form.get("TimeLimit"))
        if call.direction is Direction.IN:  # the customer (From) called the 400 number (To)
            beats = inbound_timeline(
                call.form["From"], call.form["BridgeTo"], self.sim.timing, limit
            )
        else:
            beats = timeline(call.form["To"], call.form["BridgeTo"], self.sim.timing, limit)

        async def emit(beat: Beat) -> None:
            at = common.now_ms()  # one moment for the callback and the resources
            if beat.step is Step.A_DIALING:
                call.started_at = at
            if beat.step is Step.A_ANSWERED:  # the dial of leg B begins: its child call
                call.child = ChildCall(sid="CA" + uuid.uuid4().hex, parent=call, created=at)
                self.children[call.child.sid] = call.child
            child = call.child
            if child is not None and beat.step is Step.B_DIALING:
                child.status, child.started_at = "ringing", at
            if child is not None and beat.step is Step.B_ANSWERED:
                child.status, child.answered_at = "in-progress", at
            if beat.step is Step.BRIDGED:
                call.status, call.bridged_at = "in-progress", at
                return  # the bridge is reported as Leg=B in-progress
            if beat.step is not Step.HANGUP:
                call.status = "ringing" if beat.step is not Step.A_ANSWERED else call.status
                self.callback(call, *STATUSES[beat.step], "", at)
                return
            call.ended_at = at
            if call.form.get("Record") == "true" and call.bridged_at:
                account = ROOT.format(account_sid=self.settings.jy_account_sid)
                call.recording_url = (
                    f"{self.settings.jy_base_url}{account}/Recordings/RE{call.sid[2:]}"
                )
            reason = beat.reason or Reason.VENDOR_ERROR
            if child is not None:
                child.ended_at = at
                child.status = (
                    "completed" if child.answered_at else CHILD_ENDS.get(reason, "canceled")
                )
            endings = (
                BRIDGED_END if call.bridged_at else ENDINGS.get(reason, [("A", "canceled", "487")])
            )
            call.status = endings[-1][1]
            for leg, status, sip in endings:
                self.callback(call, leg, status, sip, at)

        await self.play(call, beats, emit)

    def callback(self, call: JyCall, leg: str, status: str, sip: str, at: int) -> None:
        url = call.form.get("StatusCallback", "")
        wanted = call.status_events
        if not url or (wanted is not None and STATUS_EVENTS.get(status, "completed") not in wanted):
            return
        call.seq += 1
        params = {
            "AccountSid": self.settings.jy_account_sid,
            "CallSid": call.sid,
            "Leg": leg,
            "CallStatus": status,
            "SequenceNumber": str(call.seq),
            "Tag": call.form.get("Tag", ""),
            "Timestamp": rfc2822(at) or "",
            "SipResponseCode": sip or "200",
        }
        if status == "completed":
            params["CallDuration"] = call.duration
            if call.recording_url:
                params["RecordingUrl"] = call.recording_url
        body, headers = urlencode(params).encode(), self.signed(url, params)
        self.sim.send(call.sid, url, body, lambda: headers)

    def signed(self, url: str, params: dict[str, str]) -> dict[str, str]:
        sig = signature(self.settings.jy_auth_token, url, params)
        return {"Content-Type": "application/x-www-form-urlencoded", "X-Jy-Signature": sig}

    async def call(self, account_sid: str, sid: str, request: Request) -> Response:
        if not self.authorised(account_sid, request):
            return error(401, 20003, "Authenticate")
        sid = sid.removesuffix(".json")
        call = self.calls.get(sid)
        if call is None and (child := self.children.get(sid)) is not None:
            if request.method == "POST":  # hanging up leg B ends the dial, hence the call
                return await self.call(account_sid, child.parent.sid + ".json", request)
            return JSONResponse(child.view())
        if call is None:
            return error(404, 20404, "The requested resource was not found")
        if request.method == "POST":
            wanted = dict(parse_qsl((await request.body()).decode())).get("Status")
            if wanted not in ("completed", "canceled"):
                return error(400, 21218, "Invalid Status")
            call.cancel.set()
        return JSONResponse(call.view())

    def list_calls(self, account_sid: str, request: Request) -> Response:
        """Twilio's call list, filtered by ``ParentCallSid`` (the only filter served)."""
        if not self.authorised(account_sid, request):
            return error(401, 20003, "Authenticate")
        params = request.query_params
        parent = params.get("ParentCallSid")
        if not parent or set(params) - {"ParentCallSid", "PageSize", "Page"}:
            return error(400, 20001, "Only the ParentCallSid filter is supported")
        call = self.calls.get(parent)
        children = [call.child.view()] if call is not None and call.child is not None else []
        return JSONResponse({"calls": children, "page": 0, "page_size": 50, "next_page_uri": None})

    def recording(self, account_sid: str, name: str, request: Request) -> Response:
        if not self.authorised(account_sid, request):
            return error(401, 20003, "Authenticate")
        call = self.calls.get("CA" + name.removesuffix(".wav").removeprefix("RE"))
        if call is None or call.ended_at is None or not call.bridged_at:
            return error(404, 20404, "The requested resource was not found")
        if common.now_ms() - call.ended_at < self.sim.timing.recording_delay_ms:
            return error(404, 20404, "The requested resource was not found")
        return Response(common.tone_wav(), media_type="audio/wav")

    # -- a customer calling a 400 number (simulators/jy_inbound.py) -------------------------
    async def inbound(self, start: InboundStart) -> InboundResult:
        sid = "CA" + uuid.uuid4().hex

        async def ask(url: str, digits: str | None) -> InboundReply:
            params = voice_webhook(self.settings.jy_account_sid, sid, start, digits)
            body, headers = urlencode(params).encode(), self.signed(url, params)
            return read_twiml(await self.sim.ask_cc(url, body, headers, WEBHOOK_TIMEOUT_S), url)

        async def dial(reply: InboundReply) -> None:
            await self.start(dialled_call(sid, start, reply), None)

        return await answer_customer(sid, start, self.settings.jy_inbound_url, ask, dial)

    def router(self) -> APIRouter:
        router = APIRouter(prefix=ROOT)
        router.add_api_route("/Calls.json", self.create_call, methods=["POST"])
        router.add_api_route("/Calls.json", self.list_calls, methods=["GET"])
        router.add_api_route("/Calls/{sid}", self.call, methods=["GET", "POST"])
        router.add_api_route("/Recordings/{name}", self.recording, methods=["GET"])
        return router


def create_app(settings: Settings | None = None) -> FastAPI:
    return control.simulator_app("jy vendor simulator", JySimulator(settings or get_settings()))


if __name__ == "__main__":
    control.serve(create_app, lambda settings: settings.jy_base_url, __doc__ or "")
