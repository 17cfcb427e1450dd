"""Simulator of vendor e9 (JSON REST + HMAC-signed webhooks), per VENDORS.md.

Written from the protocol table, not from ``channels/e9.py``, so the two cross-check each
other. ``python -m simulators.e9`` serves it on the port of ``CC_E9_BASE_URL``.
It serves only e9's own endpoints (plus ``/_sim/``): there is no lookup by userData.

``POST /_sim/inbound`` plays a customer calling a 400 number: ``callin`` goes to the inbound
URL of the console (``CC_E9_INBOUND_URL``), signed as events, first with no ``ext``, again
with the keyed ``ext`` when CC answers ``ivr``; on ``dial`` the call runs with the customer
as leg A (on the line at once) and the agent as leg B, shown ``display``; its events go to
CC's e9 webhook URL, as the account's status URL, carrying the dial's ``userData``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from channels.helpers import status_url
from channels.registry import Settings, get_settings
from core.types import Direction, InboundAction
from simulators import common, control
from simulators.inbound import BadAnswer, InboundReply, InboundResult, InboundStart, answer_customer
from simulators.scenario import Beat, Reason, Step, inbound_timeline, timeline

BEIJING = timezone(timedelta(hours=8))
ROOT = "/2013-12-26/Accounts/{account_sid}"
MAX_SKEW_S = 300
NUMBER = re.compile(r"^\+?\d{7,15}$")

EVENT_NAMES = {
    Step.A_DIALING: "callA",
    Step.A_RINGING: "ringA",
    Step.A_ANSWERED: "answerA",
    Step.B_DIALING: "callB",
    Step.B_RINGING: "ringB",
    Step.B_ANSWERED: "answerB",
    Step.BRIDGED: "bridge",
    Step.HANGUP: "hangup",
}
BYETYPES = {
    Reason.A_HUNG_UP: 0,
    Reason.B_HUNG_UP: 1,
    Reason.A_NO_ANSWER: -1,
    Reason.A_BUSY: -2,
    Reason.A_UNREACHABLE: -3,
    Reason.B_NO_ANSWER: -4,
    Reason.B_BUSY: -5,
    Reason.B_UNREACHABLE: -6,
    Reason.MAX_DURATION: -7,
    Reason.VENDOR_ERROR: -8,
    Reason.CANCELLED: -9,
}
# CC's answer to ``callin``: exactly these fields per action.
ACTION_FIELDS = {
    "dial": {"action", "to", "display", "record", "userData"},
    "ivr": {"action", "playText", "collect"},
    "reject": {"action", "playText"},
}


def beijing(at_ms: int, fmt: str = "%Y%m%d%H%M%S") -> str:
    return datetime.fromtimestamp(at_ms / 1000, BEIJING).strftime(fmt)


@dataclass(kw_only=True)
class SimCall(common.SimulatedCall):
    body: dict[str, Any]
    state: str = "ringing"
    byetype: int | None = None
    dialled_at: int | None = None
    a_answered_at: int | None = None
    b_dialled_at: int | None = None
    b_answered_at: int | None = None
    duration: int = 0  # talk seconds, rounded up
    record_url: str = ""

    def view(self) -> dict[str, Any]:
        created = beijing(self.created, "%Y-%m-%d %H:%M:%S")
        return {
            "callSid": self.sid,
            "userData": self.body.get("userData"),
            "state": self.state,
            "byetype": self.byetype,
            "dateCreated": created,
        }

    def result(self) -> dict[str, Any]:
        """``CallResult``: what the vendor knows of the call, its times in Beijing time."""
        ended = self.ended_at is not None
        return {
            "state": self.state,
            "byetype": self.byetype if ended else None,
            "duration": self.duration if ended else 0,
            "recordurl": self.record_url,
            "callTime": beijing(self.dialled_at) if self.dialled_at else "",
            "endTime": beijing(self.ended_at) if self.ended_at else "",
            # Per-leg times (as in CDR queries of real vendors), each only once it happened:
            # the very moments the webhooks of the call carry.
            **{
                name: beijing(at)
                for name, at in (
                    ("answerATime", self.a_answered_at),
                    ("callBTime", self.b_dialled_at),
                    ("answerBTime", self.b_answered_at),
                    ("bridgeTime", self.bridged_at),
                )
                if at is not None
            },
        }


def answer(code: str = "000000", **extra: Any) -> JSONResponse:
    return JSONResponse({"statusCode": code, **extra})


class E9Simulator(common.CallSimulator[SimCall]):
    # -- auth ------------------------------------------------------------------------
    def authorised(self, account_sid: str, request: Request) -> bool:
        sid, token = self.settings.e9_account_sid, self.settings.e9_auth_token
        try:
            decoded = base64.b64decode(request.headers.get("authorization", ""), validate=True)
            header_sid, _, ts = decoded.decode().partition(":")
            sent = datetime.strptime(ts, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        expected = hashlib.md5((sid + token + ts).encode()).hexdigest().upper()
        return (
            account_sid == sid == header_sid
            and abs(time.time() - sent.timestamp()) <= MAX_SKEW_S
            and hmac.compare_digest(request.query_params.get("sig", "").encode(), expected.encode())
        )

    # -- placing a call ----------------------------------------------------------------
    async def callback(self, account_sid: str, request: Request) -> Response:
        fault = self.sim.faults.place_call
        if (faulty := await common.transport_fault(fault)) is not None:
            return faulty
        if fault == "auth_reject" or not self.authorised(account_sid, request):
            return answer("112300", statusMsg="auth failed")
        try:
            body = json.loads(await request.body())
            assert isinstance(body, dict)
        except (ValueError, AssertionError):
            return answer("111100", statusMsg="request body is not JSON")
        if not all(NUMBER.match(str(body.get(k, ""))) for k in ("from", "to")):
            return answer("111141", statusMsg="invalid number")
        if len(str(body.get("userData", ""))) > 255 or not body.get("statusUrl"):
            return answer("111143", statusMsg="invalid userData or statusUrl")
        call = SimCall(
            sid=uuid.uuid4().hex,
            body=body,
            created=common.now_ms(),
            shown_to_a=common.text_or_none(body.get("fromSerNum")),
            shown_to_b=common.text_or_none(body.get("customerSerNum")),
        )
        await self.start(call, fault)
        return answer(CallBack={"callSid": call.sid, "dateCreated": call.view()["dateCreated"]})

    async def run_call(self, call: SimCall) -> None:
        max_call = common.as_int(call.body.get("maxCallTime"))
        plan = inbound_timeline if call.direction is Direction.IN else timeline
        beats = plan(str(call.body["from"]), str(call.body["to"]), self.sim.timing, max_call)

        async def emit(beat: Beat) -> None:
            at = common.now_ms()
            if beat.step is Step.A_DIALING:
                call.dialled_at = at
            if beat.step is Step.A_ANSWERED:
                call.a_answered_at = at
            if beat.step is Step.B_DIALING:
                call.b_dialled_at = at
            if beat.step is Step.B_ANSWERED:
                call.b_answered_at = at
            if beat.step is Step.BRIDGED:
                call.state, call.bridged_at = "talking", at
            if beat.step is Step.HANGUP:
                call.state, call.ended_at = "ended", at
                call.byetype = BYETYPES[beat.reason or Reason.VENDOR_ERROR]
                talk_ms = at - call.bridged_at if call.bridged_at else 0
                call.duration = -(-talk_ms // 1000)
                if call.body.get("needRecord") == "1" and call.bridged_at:
                    call.record_url = f"{self.settings.e9_base_url}/recordings/{call.sid}.wav"
            self.send_event(call, beat, at)

        await self.play(call, beats, emit)

    def send_event(self, call: SimCall, beat: Beat, at: int) -> None:
        event: dict[str, Any] = {
            "eventId": uuid.uuid4().hex,
            "callSid": call.sid,
            "event": EVENT_NAMES[beat.step],
            "timestamp": beijing(at),
            "userData": call.body.get("userData", ""),
        }
        if beat.step is Step.HANGUP:
            event.update(byetype=call.byetype, duration=call.duration)
            if call.record_url:
                event["recordurl"] = call.record_url
        body = json.dumps(event).encode()
        self.sim.send(call.sid, str(call.body["statusUrl"]), body, lambda: self.signed(body))

    def signed(self, body: bytes) -> dict[str, str]:
        """A webhook's headers, signed now (each retry is signed afresh)."""
        ts = str(int(time.time()))
        token = self.settings.e9_auth_token.encode()
        sig = hmac.new(token, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        return {"Content-Type": "application/json", "X-E9-Timestamp": ts, "X-E9-Signature": sig}

    # -- a customer calling a 400 number ---------------------------------------------------
    async def inbound(self, start: InboundStart) -> InboundResult:
        sid = uuid.uuid4().hex

        async def ask(url: str, ext: str | None) -> InboundReply:
            callin = {
                "eventId": uuid.uuid4().hex,
                "callSid": sid,
                "event": "callin",
                "caller": start.caller,
                "called": start.main_num,
                "ext": ext or "",
                "timestamp": beijing(common.now_ms()),
                "userData": "",
            }
            body = json.dumps(callin).encode()
            answer = await self.sim.ask_cc(url, body, self.signed(body), common.DELIVERY_TIMEOUT_S)
            if answer.headers.get("content-type", "").split(";")[0] != "application/json":
                raise BadAnswer(f"answer is {answer.headers.get('content-type')!r}")
            return read_action(answer.content)

        async def dial(reply: InboundReply) -> None:
            body = {
                "from": start.caller,
                "to": reply.agent,
                "customerSerNum": reply.display,
                "needRecord": "1" if reply.record else "0",
                "userData": reply.tag,
                "statusUrl": status_url(self.settings, "e9"),
            }
            call = SimCall(
                sid=sid,
                body=body,
                created=common.now_ms(),
                direction=Direction.IN,
                shown_to_b=reply.display,
            )
            await self.start(call, None)

        return await answer_customer(sid, start, self.settings.e9_inbound_url, ask, dial)

    # -- the other vendor endpoints ----------------------------------------------------------
    async def cancel(self, account_sid: str, request: Request) -> Response:
        if not self.authorised(account_sid, request):
            return answer("112300", statusMsg="auth failed")
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            call = self.calls.get(json.loads(await request.body()).get("callSid", ""))
            if call is not None:
                call.cancel.set()
                return answer()
        return answer("111200", statusMsg="call not found")

    def call_result(self, account_sid: str, request: Request) -> Response:
        if not self.authorised(account_sid, request):
            return answer("112300", statusMsg="auth failed")
        call = self.calls.get(request.query_params.get("callsid", ""))
        if call is None:
            return answer("111200", statusMsg="call not found")
        return answer(CallResult=call.result())

    def recording(self, sid: str) -> Response:
        call = self.calls.get(sid.removesuffix(".wav"))
        if call is None or call.ended_at is None or call.bridged_at is None:
            return Response(status_code=404)
        age = common.now_ms() - call.ended_at
        if age < self.sim.timing.recording_delay_ms:
            return Response(status_code=404)
        if age > self.sim.timing.recording_delay_ms + self.sim.timing.recording_ttl_ms:
            return Response(status_code=410)
        return Response(common.tone_wav(), media_type="audio/wav")

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route(ROOT + "/Calls/Callback", self.callback, methods=["POST"])
        router.add_api_route(ROOT + "/Calls/CallCancel", self.cancel, methods=["POST"])
        router.add_api_route(ROOT + "/CallResult", self.call_result, methods=["GET"])
        router.add_api_route(ROOT + "/AccountInfo", self.account_info, methods=["GET"])
        router.add_api_route("/recordings/{sid}", self.recording, methods=["GET"])
        return router

    def account_info(self, account_sid: str, request: Request) -> Response:
        if not self.authorised(account_sid, request):
            return answer("112300", statusMsg="auth failed")
        return answer(Account={"balance": "100.00"})


def read_action(content: bytes) -> InboundReply:
    """CC's answer to ``callin``, checked as e9 does: exactly one action's fields, each of its
    type; ``BadAnswer`` otherwise."""
    try:
        action = json.loads(content)
    except (ValueError, RecursionError) as exc:
        raise BadAnswer("answer is not JSON") from exc
    fields = ACTION_FIELDS.get(str(action.get("action"))) if isinstance(action, dict) else None
    if fields is None or set(action) != fields:
        raise BadAnswer(f"not an e9 action: {content[:200]!r}")
    if action["action"] == "dial":
        to, display, record, user_data = (
            action[k] for k in ("to", "display", "record", "userData")
        )
        if not (
            _number_or_none(to)
            and _number_or_none(display)
            and isinstance(record, bool)
            and isinstance(user_data, str)
            and 0 < len(user_data) <= 255
        ):
            raise BadAnswer(f"a dial e9 cannot place: {content[:200]!r}")
        return InboundReply(
            action=InboundAction.DIAL, agent=to, display=display, record=record, tag=user_data
        )
    if not isinstance(action["playText"], str):
        raise BadAnswer("playText is not text")
    if action["action"] == "reject":
        return InboundReply(action=InboundAction.REJECT)
    collect = action["collect"]
    if isinstance(collect, bool) or not isinstance(collect, int) or not 1 <= collect <= 32:
        raise BadAnswer(f"collect is not a digit count: {collect!r}")
    return InboundReply(action=InboundAction.IVR, collect=collect)


def _number_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and NUMBER.fullmatch(value) else None


def create_app(settings: Settings | None = None) -> FastAPI:
    return control.simulator_app("e9 vendor simulator", E9Simulator(settings or get_settings()))


if __name__ == "__main__":
    control.serve(create_app, lambda settings: settings.e9_base_url, __doc__ or "")
