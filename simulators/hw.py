"""Simulator of vendor hw: a Huawei CEC CC-Gateway (agent interface, polled per seat).

Written from VENDORS.md (hw) and Huawei's public AgentGateway reference, not from
``channels/hw.py``. ``python -m simulators.hw`` serves it on the port of
``CC_HW_BASE_URL``. Seats ``10001``–``10003`` sign in with ``CC_HW_SEAT_PASSWORD``; every other
call carries the seat's ``Guid`` header and replays the sign-in's cookie; events come one per
long poll. ``/_sim/gateway`` sets the gateway's timers and shows its seats and how many
concurrent polls it refused; ``/_sim/faults`` takes ``gateway`` faults besides the shared ones.

``POST /_sim/inbound {"main_num", "caller", "ext"}`` plays a customer calling a 400 number
CEC hosts. CEC routes it itself, nothing asks CC: its IVR takes the extension keyed, and
**CEC's extension is the agent's work number** (the seat id), so ``ext`` names the seat. A
signed-in, idle seat is offered the call (its poll shows ``AgentEvent_Ringing``, then the
call runs like a callout with the customer as leg A and the seat's phone, shown ``main_num``
and never the customer's number, as leg B; ``scenario.inbound_timeline`` by both numbers'
last two digits); otherwise CEC answers the customer itself and nothing reaches CC. The
answer: ``{"callid", "routed", "reason"}`` (``reason`` why not: ``no_ext``, ``unknown_ext``,
``not_signed_in``, ``busy``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any, Literal

import phonenumbers
from fastapi import APIRouter, Body, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError

from channels.registry import Settings, get_settings
from core.types import Direction
from simulators.common import Faults, SimState, now_ms, transport_fault
from simulators.control import control_router, serve, simulator_app
from simulators.hw_events import HwCall, alaw_wav, call_events
from simulators.hw_seats import COOKIE, NO_RIGHT, ROOT, GatewayConfig, Seat, SeatDesk, reply
from simulators.inbound import InboundStart
from simulators.scenario import Beat, Reason, Step, inbound_timeline, play, timeline

log = logging.getLogger("cc.sim.hw")

# The gateway's seats, all with the password CC_HW_SEAT_PASSWORD: `make run` signs in the
# demo seats 10001-10003; the tests' stack uses more of them.
SEATS = tuple(str(workno) for workno in range(10001, 10100))
CALLED = re.compile(r"^[0-9*#]{1,24}$")  # national digits: no "+"
CALLER = re.compile(r"^[0-9]{0,24}$")
PHONE = re.compile(r"^[0-9]{1,24}$")
CALLAPPDATA_MAX = 1024
GatewayFault = Literal["guid_expired", "signed_out", "failover", "slow_poll", "seat_taken"]


class HwFaults(Faults):
    """The shared faults plus the gateway's own: ``guid_expired`` (the next call answers
    000-003 once), ``signed_out`` (the next call of a seat with a call signs it out: 100-006,
    the call goes on), ``failover`` (105-006 for every signed-in seat until it signs in again),
    ``slow_poll`` (polls answered ``slow_poll_ms`` late), ``seat_taken`` (sign-ins 100-015)."""

    gateway: GatewayFault | None = None


def national(number: str) -> str:
    """A number as CEC shows it to a seat: national digits for a Chinese number (a landline
    with its trunk ``0``), ``00``… for another country's; digits given without ``+`` as they
    are."""
    if number.startswith("+"):
        try:
            parsed = phonenumbers.parse(number)
        except phonenumbers.NumberParseException:
            return ""
        number = phonenumbers.format_out_of_country_calling_number(parsed, "CN")
    return "".join(ch for ch in number if ch.isdigit())


def _not_routed(ext: str | None, seat: Seat | None) -> str | None:
    """Why CEC's IVR answers a customer who keyed ``ext`` itself; None: ``seat`` takes it."""
    if not ext:
        return "no_ext"
    if seat is None:
        return "unknown_ext"
    if not seat.online:
        return "not_signed_in"
    return None if seat.idle else "busy"


async def json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class HwGatewaySimulator:
    def __init__(self, settings: Settings) -> None:
        self.sim = SimState(retry_scale=settings.sim_retry_scale)
        self.desk = SeatDesk(self.sim, SEATS, settings.hw_seat_password)
        self.calls: dict[str, HwCall] = {}
        self.seq = 0

    # -- sessions ------------------------------------------------------------------------
    async def sign_in(self, workno: str, request: Request) -> Response:
        return await self._sign_in(workno, request, force=False)

    async def force_login(self, workno: str, request: Request) -> Response:
        return await self._sign_in(workno, request, force=True)

    async def _sign_in(self, workno: str, request: Request, force: bool) -> Response:
        seat, body, desk = self.desk.seats.get(workno), await json_object(request), self.desk
        if body is None:
            return reply("100-001", "sign-in parameters are empty or invalid")
        password = str(body.get("password", "")).encode()
        if seat is None or not hmac.compare_digest(password, seat.password.encode()):
            return reply("100-004", "wrong user name or password")
        if desk.fault == "seat_taken":
            return reply("100-015", "agent already signed in and cannot be forced out")
        desk.expire_idle(seat)
        if seat.online and not force:
            return reply("100-002", "agent already signed in")
        phonenum = str(body.get("phonenum", ""))
        if not PHONE.match(phonenum):
            return reply("100-013", "the agent phone is invalid")
        autoanswer = body.get("autoanswer", True) is not False
        seat.sign_in(phonenum, desk.node_name, autoanswer)
        state = "AgentState_Busy" if seat.call and seat.call.talking else "AgentState_Ready"
        for event_type in ("AgentOther_InService", state):
            seat.push(seat.make(event_type, None))
        result = {
            "vdnid": 1,
            "workno": workno,
            "mediatype": "TFF",
            "loginTime": str(seat.login_ms),
            "isForceChange": "false",
            "serverName": desk.node_name,
        }
        cookie = f"{COOKIE}={desk.node_name}; Path=/agentgateway; HttpOnly"
        return reply(
            value=result, headers={"Set-GUID": f"JSESSIONID={seat.guid}", "Set-Cookie": cookie}
        )

    def logout(self, workno: str, request: Request) -> Response:
        return self._sign_out(workno, request, force=False)

    def force_logout(self, workno: str, request: Request) -> Response:
        return self._sign_out(workno, request, force=True)

    def _sign_out(self, workno: str, request: Request, force: bool) -> Response:
        seat = self.desk.authorise(request, workno)
        if not isinstance(seat, Seat):
            return seat
        if seat.call is not None and not force:
            return reply("100-010", "the agent state does not allow signing out")
        seat.sign_out()  # a call of the seat goes on: the agent's phone stays connected
        return reply()

    def agent_status(self, workno: str, request: Request) -> Response:
        seat = self.desk.authorise(request, workno)
        if not isinstance(seat, Seat):
            return seat
        # 7 "talking" covers the CTI's states 2-5: from the callout (the seat's phone
        # ringing) to the call's end; ``isWorking`` only once the phone is off-hook.
        call = seat.call
        in_call = call is not None and call.ended_at is None
        talking = call is not None and call.talking
        return self.desk.ok(
            seat, request, {"agentState": 7 if in_call else 4, "isWorking": talking}
        )

    async def agent_event(self, workno: str, request: Request) -> Response:
        """The long poll: one event, or ``null`` after ``poll_hold_ms``; one poll at a time."""
        if (faulty := await transport_fault(self.sim.faults.poll)) is not None:
            return faulty
        desk, seat = self.desk, self.desk.seats.get(workno)
        if seat is not None:
            desk.expire_idle(seat)
            if (farewell := seat.take_farewell(request.headers.get("guid", ""))) is not None:
                desk.log_event(seat, farewell, "sent")
                return reply(message="", value=farewell, key="event")
        checked = desk.authorise(request, workno, key="event")
        if not isinstance(checked, Seat):
            return checked
        seat = checked
        if seat.polling:
            desk.polls_refused += 1
            return reply("000-007", "repeated call: this agent is being polled", key="event")
        seat.polling, session = True, seat.session
        try:
            if desk.fault == "slow_poll":
                await asyncio.sleep(desk.config.slow_poll_ms / 1000)
            event = await seat.next_event(session, desk.config.poll_hold_ms / 1000)
        finally:
            seat.polling, seat.last_poll = False, time.monotonic()
        if not seat.live(session):
            return desk.session_ended(seat)
        if event is not None:
            desk.log_event(seat, event, "sent")
        return desk.ok(seat, request, event, key="event")

    # -- calls ---------------------------------------------------------------------------
    async def callout(self, workno: str, request: Request) -> Response:
        fault = self.sim.faults.place_call
        if (faulty := await transport_fault(fault)) is not None:
            return faulty
        seat = self.desk.authorise(request, workno)
        if not isinstance(seat, Seat):
            return seat
        if fault == "auth_reject":
            return reply(*NO_RIGHT)
        body = await json_object(request)
        if body is None or len(str(body.get("callappdata", ""))) > CALLAPPDATA_MAX:
            return reply("000-002", "invalid parameter")
        called, caller = str(body.get("called", "")), str(body.get("caller", ""))
        if not CALLED.match(called) or not CALLER.match(caller):
            return reply("200-001", "call out number error")
        if seat.call is not None:
            return reply("100-007", "the agent is not idle")
        self.seq += 1
        call = HwCall(
            call_id=f"{int(time.time())}-{self.seq}",
            seq=self.seq,
            seat=workno,
            phonenum=seat.phonenum,
            called=called,
            caller=caller,
            callappdata=str(body.get("callappdata", "")),
            created=now_ms(),
        )
        self.calls[call.call_id] = seat.call = call
        self.sim.spawn(self.run_call(seat, call))
        if fault == "timeout_after_accept":
            await self.sim.hold()  # the call runs; the client never hears of it
        return self.desk.ok(seat, request, call.call_id)

    async def customer_calls(self, start: InboundStart) -> JSONResponse:
        """A customer dials ``main_num`` and keys ``ext``: CEC's IVR offers the call to the
        seat whose work number is ``ext`` if it is signed in and idle (see the module)."""
        main_num, caller = national(start.main_num), national(start.caller)
        if not main_num:
            return JSONResponse({"detail": "main_num is not a number"}, status_code=422)
        self.seq += 1
        call_id = f"{int(time.time())}-{self.seq}"
        seat = self.desk.seats.get(start.ext or "")
        if seat is not None:
            self.desk.expire_idle(seat)
        reason = _not_routed(start.ext, seat)
        if seat is None or reason is not None:
            log.info("inbound call %s answered by CEC itself: %s", call_id, reason)
            return JSONResponse({"callid": call_id, "routed": False, "reason": reason})
        call = HwCall(
            call_id=call_id,
            seq=self.seq,
            seat=seat.workno,
            phonenum=seat.phonenum,
            called=main_num,
            caller=caller,
            callappdata="",
            created=now_ms(),
            direction=Direction.IN,
            autoanswer=seat.autoanswer,
        )
        self.calls[call_id] = seat.call = call
        self.sim.spawn(self.run_call(seat, call))
        return JSONResponse({"callid": call_id, "routed": True, "reason": None})

    async def run_call(self, seat: Seat, call: HwCall) -> None:
        """The scenario of the call's legs (a callout: the seat's phone, then ``called``; an
        inbound call: the customer, then the seat's phone), shown as events."""
        config, timing = self.desk.config, self.sim.timing
        if call.inbound:
            beats = inbound_timeline(call.caller, call.phonenum, timing, config.max_call_s)
        else:
            beats = timeline(call.phonenum, call.called, timing, config.max_call_s)

        async def show(beat: Beat) -> None:
            for event_type, content in call_events(call, beat, now_ms(), config.record):
                self.desk.deliver(seat, call, seat.make(event_type, content))

        try:
            await play(beats, show, call.cancel)
        except Exception:  # a scenario bug: the platform still ends the call, as a fault
            log.exception("hw call %s broke; ending it", call.call_id)
            if call.ended_at is None:
                with contextlib.suppress(Exception):
                    await show(Beat(0, Step.HANGUP, Reason.VENDOR_ERROR))
        finally:
            if seat.call is call:
                seat.call = None

    def release(self, workno: str, request: Request) -> Response:
        seat = self.desk.authorise(request, workno)
        if not isinstance(seat, Seat):
            return seat
        if seat.call is None or seat.call.ended_at is not None:
            return reply("200-017", "no call to release")
        seat.call.cancel.set()
        return self.desk.ok(seat, request)

    def record_file(self, workno: str, request: Request) -> Response:
        """A recording (A-law WAV) from ``recording_delay_ms`` after its call ended, for
        ``recording_ttl_ms``; ``104-005`` (not found) before and after."""
        seat = self.desk.authorise(request, workno)
        if not isinstance(seat, Seat):
            return seat
        record_id = request.query_params.get("recordId") or None
        ended = [c.ended_at for c in self.calls.values() if c.record_file == record_id]
        age = now_ms() - ended[0] if ended and ended[0] is not None else -1
        delay, ttl = self.sim.timing.recording_delay_ms, self.sim.timing.recording_ttl_ms
        if not delay <= age <= delay + ttl:
            return reply("104-005", "recording file does not exist")
        headers = self.desk.guid_headers(seat, request)
        return Response(alaw_wav(), media_type="audio/wav", headers=headers)

    # -- views and the gateway's control -------------------------------------------------
    def calls_view(self) -> list[dict[str, Any]]:
        return [call.view() for call in self.calls.values()]

    def gateway_view(self) -> dict[str, Any]:
        return self.desk.view()

    def put_gateway(self, update: dict[str, Any] = Body(...)) -> Any:
        """Change some of the gateway's timers (``GatewayConfig``); the rest stay."""
        try:
            config = GatewayConfig.model_validate(self.desk.config.model_dump() | update)
        except ValidationError as exc:
            return JSONResponse({"detail": json.loads(exc.json())}, status_code=422)
        self.desk.config = config
        return self.desk.view()

    def router(self) -> APIRouter:
        router = APIRouter()
        agent, call = ROOT + "/onlineagent/{workno}", ROOT + "/voicecall/{workno}"
        routes: list[tuple[str, Callable[..., Any], str]] = [
            (agent, self.sign_in, "PUT"),
            (agent + "/forcelogin", self.force_login, "PUT"),
            (agent + "/logout", self.logout, "DELETE"),
            (agent + "/forcelogout", self.force_logout, "DELETE"),
            (agent + "/agentstatus", self.agent_status, "GET"),
            (ROOT + "/agentevent/{workno}", self.agent_event, "GET"),
            (call + "/callout", self.callout, "PUT"),
            (call + "/release", self.release, "DELETE"),
            (ROOT + "/recordfile/{workno}", self.record_file, "GET"),
            ("/_sim/gateway", self.gateway_view, "GET"),
            ("/_sim/gateway", self.put_gateway, "PUT"),
            ("/_sim/inbound", self.customer_calls, "POST"),
        ]
        for path, endpoint, method in routes:
            router.add_api_route(path, endpoint, methods=[method])
        return router


def extend_faults_route(
    app: FastAPI, gateway: HwGatewaySimulator, on_change: Callable[[HwFaults], None]
) -> None:
    """``PUT /_sim/faults`` takes ``HwFaults``: the shared handler runs, then ``on_change``.
    The route goes first, so it answers before the shared one (which drops unknown fields)."""
    shared = next(
        route
        for route in control_router(gateway.sim, gateway.calls_view).routes
        if isinstance(route, APIRoute) and route.path == "/_sim/faults"
    )

    @app.put("/_sim/faults", tags=["simulator control"])
    async def put_gateway_faults(faults: HwFaults) -> HwFaults:
        await shared.endpoint(faults)
        on_change(faults)
        return faults

    app.router.routes.insert(0, app.router.routes.pop())


def create_app(settings: Settings | None = None) -> FastAPI:
    gateway = HwGatewaySimulator(settings or get_settings())
    app = simulator_app("hw CC-Gateway simulator", gateway)
    extend_faults_route(app, gateway, lambda faults: gateway.desk.on_fault(faults.gateway))
    return app


if __name__ == "__main__":
    serve(create_app, lambda settings: settings.hw_base_url, __doc__ or "")
