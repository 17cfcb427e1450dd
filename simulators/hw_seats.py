"""The CC-Gateway's seats: sign-in sessions, rotating guids, and the events each has to poll.

A guid is issued at sign-in and replaced every ``guid_interval_ms`` (the answer that replaces
it carries ``Set-GUID``); a replaced guid keeps working ``guid_grace_ms``, then it is stale.
Each sign-in or sign-out starts a new session: a poll held across it ends at once. A seat with
no poll for ``idle_signout_ms`` is signed out; its next poll gets ``AgentOther_ShutdownService``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from core.aio import wait_set
from simulators.common import SimState, now_ms
from simulators.hw_events import HwCall, polled_event

ROOT = "/agentgateway/resource"
COOKIE = "AGW_ROUTE"  # the gateway node a session lives on (sticky sessions behind the NSLB)
NO_RIGHT = ("000-003", "no right to invite resource")  # no or stale guid, or no cookie
NOT_SIGNED_IN = ("100-006", "agent not signed in")
FAILED_OVER = ("105-006", "guid mismatch after failover, sign in again")
ONE_SHOT_FAULTS = ("guid_expired", "signed_out")
Event = dict[str, Any]


class GatewayConfig(BaseModel):
    """The gateway's own timers (``basic.properties`` on a real one); ``PUT /_sim/gateway``."""

    model_config = ConfigDict(extra="forbid")

    guid_interval_ms: int = Field(default=60_000, ge=1)  # GUIDINTERVAL
    guid_grace_ms: int = Field(default=120_000, ge=0)  # a replaced guid still works this long
    poll_hold_ms: int = Field(default=10_000, ge=0)  # an idle poll is answered after this
    idle_signout_ms: int = Field(default=120_000, ge=1)  # no poll this long: signed out
    slow_poll_ms: int = Field(default=5_000, ge=0)  # the slow_poll fault's extra delay
    max_call_s: int = Field(default=0, ge=0)  # the platform's own call limit (0: none)
    record: bool = True  # calls are recorded (AgentMediaEvent_Record, recordfile)


def new_guid(node: str) -> str:
    return f"{uuid.uuid4()}.{node}"


def reply(
    retcode: str = "0",
    message: str = "success",
    value: Any = None,
    key: str = "result",
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The gateway's envelope: always HTTP 200, ``retcode`` a string (``event`` on polls)."""
    return JSONResponse({"message": message, "retcode": retcode, key: value}, headers=headers)


@dataclass
class Seat:
    workno: str
    password: str
    phonenum: str = ""
    autoanswer: bool = True  # inbound calls are answered by the seat itself (Auto_Answer)
    session: int = 0
    signed_in: bool = False
    failed_over: bool = False  # its gateway failed over: 105-006 until it signs in again
    login_ms: int = 0
    guid: str = ""
    guid_since: float = 0.0
    retired: dict[str, float] = field(default_factory=dict)  # replaced guid → when
    polling: bool = False
    last_poll: float = 0.0
    farewell: Event | None = None  # AgentOther_ShutdownService, for the next poll
    farewell_guids: set[str] = field(default_factory=set)
    made: int = 0  # events made for this seat
    queue: deque[Event] = field(default_factory=deque)
    call: HwCall | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    # Told of each queued event a new session drops (the desk logs it ``lost``).
    on_drop: Callable[[Seat, Event], None] | None = None

    def sign_in(self, phonenum: str, node: str, autoanswer: bool = True) -> None:
        self._new_session()
        self.signed_in, self.phonenum, self.login_ms = True, phonenum, now_ms()
        self.autoanswer = autoanswer
        self.guid, self.guid_since = new_guid(node), time.monotonic()
        self.last_poll = time.monotonic()  # the seat has the idle time to start polling
        self.farewell, self.farewell_guids = None, set()

    def sign_out(self, farewell: Event | None = None) -> None:
        """End the session; a ``farewell`` event waits for the next poll with its guid."""
        self.farewell = farewell
        self.farewell_guids = {self.guid, *self.retired} if farewell else set()
        self._new_session()
        self.signed_in, self.guid = False, ""

    def fail_over(self) -> None:
        self.failed_over = True
        self.arrived.set()

    def _new_session(self) -> None:
        self.session += 1
        self.failed_over = False
        self.retired.clear()
        if self.on_drop is not None:
            for event in self.queue:
                self.on_drop(self, event)
        self.queue.clear()
        self.arrived.set()  # a poll held by the old session ends now

    @property
    def online(self) -> bool:
        return self.signed_in and not self.failed_over

    @property
    def idle(self) -> bool:
        """Signed in, and neither in a call nor ringing: CEC may route a call to it."""
        return self.online and self.call is None

    def live(self, session: int) -> bool:
        return self.session == session and self.online

    # -- guids ------------------------------------------------------------------------
    def guid_valid(self, guid: str, grace_s: float) -> bool:
        if guid and guid == self.guid:
            return True
        replaced = self.retired.get(guid)
        return replaced is not None and time.monotonic() - replaced <= grace_s

    def rotate_if_due(self, interval_s: float, node: str) -> bool:
        now = time.monotonic()
        if now - self.guid_since < interval_s:
            return False
        self.retired[self.guid] = now
        self.guid, self.guid_since = new_guid(node), now
        return True

    def take_farewell(self, guid: str) -> Event | None:
        if self.farewell is None or guid not in self.farewell_guids:
            return None
        farewell, self.farewell, self.farewell_guids = self.farewell, None, set()
        return farewell

    # -- events -----------------------------------------------------------------------
    def make(self, event_type: str, content: Any) -> Event:
        self.made += 1
        return polled_event(self.workno, event_type, content, self.made)

    def push(self, event: Event) -> None:
        self.queue.append(event)
        self.arrived.set()

    async def next_event(self, session: int, hold_s: float) -> Event | None:
        """The oldest event, waiting up to ``hold_s`` for one; None when none came or the
        session ended meanwhile (``live`` tells which)."""
        deadline = time.monotonic() + hold_s
        while self.live(session):
            if self.queue:
                return self.queue.popleft()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.arrived.clear()
            await wait_set(self.arrived, remaining)
        return None

    def idle_s(self) -> float:
        return 0.0 if self.polling else time.monotonic() - self.last_poll

    def view(self) -> dict[str, Any]:
        return {
            "workno": self.workno,
            "signed_in": self.signed_in,
            "phonenum": self.phonenum,
            "failed_over": self.failed_over,
            "polling": self.polling,
            "queued": len(self.queue),
            "callid": self.call.call_id if self.call else None,
        }


class SeatDesk:
    """The gateway's seats and the rules of their sessions: who may call, with which guid, and
    the queue of events each seat's poll takes (with the delivery faults applied)."""

    def __init__(self, sim: SimState, worknos: tuple[str, ...], password: str) -> None:
        self.sim = sim
        self.config = GatewayConfig()
        self.seats = {workno: Seat(workno, password, on_drop=self._dropped) for workno in worknos}
        self.node = 1  # bumps at a failover
        self.armed: set[str] = set()  # one-shot faults not yet fired
        self.polls_refused = 0  # 000-007 answers

    @property
    def node_name(self) -> str:
        return f"AgentGateway{self.node}"

    @property
    def fault(self) -> str | None:
        return getattr(self.sim.faults, "gateway", None)

    def on_fault(self, fault: str | None) -> None:
        self.armed = {fault} & set(ONE_SHOT_FAULTS) if fault else set()
        if fault == "failover":
            self.node += 1
            for seat in self.seats.values():
                if seat.signed_in:
                    seat.fail_over()

    def fire(self, fault: str) -> bool:
        if fault in self.armed and self.fault == fault:
            self.armed.discard(fault)
            return True
        return False

    # -- sessions ------------------------------------------------------------------------
    def expire_idle(self, seat: Seat) -> None:
        if seat.signed_in and seat.idle_s() * 1000 > self.config.idle_signout_ms:
            seat.sign_out(farewell=seat.make("AgentOther_ShutdownService", None))

    def authorise(self, request: Request, workno: str, key: str = "result") -> Seat | Response:
        """The seat of a call that carries a valid guid and cookie, or the gateway's refusal."""
        seat = self.seats.get(workno)
        if seat is not None:
            self.expire_idle(seat)
        if seat is not None and seat.failed_over:
            return reply(*FAILED_OVER, key=key)
        if seat is None or not seat.signed_in:
            return reply(*NOT_SIGNED_IN, key=key)
        grace_s = self.config.guid_grace_ms / 1000
        guid = request.headers.get("guid", "")
        if request.cookies.get(COOKIE) != self.node_name or not seat.guid_valid(guid, grace_s):
            return reply(*NO_RIGHT, key=key)
        if self.fire("guid_expired"):
            return reply(*NO_RIGHT, key=key)
        if seat.call is not None and self.fire("signed_out"):
            seat.sign_out()  # the platform dropped the session; the call goes on
            return reply(*NOT_SIGNED_IN, key=key)
        return seat

    def guid_headers(self, seat: Seat, request: Request) -> dict[str, str]:
        """``Set-GUID`` when the guid was replaced just now or the call used a replaced one."""
        rotated = seat.rotate_if_due(self.config.guid_interval_ms / 1000, self.node_name)
        if rotated or request.headers.get("guid") != seat.guid:
            return {"Set-GUID": f"JSESSIONID={seat.guid}"}
        return {}

    def ok(self, seat: Seat, request: Request, value: Any = None, key: str = "result") -> Response:
        message = "" if key == "event" else "success"
        return reply(
            message=message, value=value, key=key, headers=self.guid_headers(seat, request)
        )

    @staticmethod
    def session_ended(seat: Seat) -> Response:
        """The answer to a poll whose session ended while it was held."""
        if seat.failed_over:
            return reply(*FAILED_OVER, key="event")
        if not seat.signed_in:
            return reply(*NOT_SIGNED_IN, key="event")
        return reply(*NO_RIGHT, key="event")  # signed in anew: this guid is gone

    # -- events --------------------------------------------------------------------------
    def deliver(self, seat: Seat, call: HwCall, event: Event) -> None:
        """Queue a call event for the seat's poll, applying the delivery faults."""
        self.expire_idle(seat)
        faults, rng = self.sim.faults.delivery, self.sim.rng
        if not seat.online or rng.random() < faults.drop:
            self.log_event(seat, event, "dropped" if seat.online else "lost")
            return
        # No reorder: a seat's events come out of one queue, in order (the fault is the
        # pushing vendors'); a poll answer lost or repeated is what a gateway can do.
        for _ in range(2 if rng.random() < faults.duplicate else 1):
            if faults.delay_ms:
                self.sim.spawn(self.enqueue_late(seat, seat.session, event, faults.delay_ms))
            else:
                self.enqueue(seat, seat.session, event)

    def enqueue(self, seat: Seat, session: int, event: Event) -> None:
        if seat.live(session):
            seat.push(event)
        self.log_event(seat, event, "queued" if seat.live(session) else "lost")

    async def enqueue_late(self, seat: Seat, session: int, event: Event, ms: int) -> None:
        await asyncio.sleep(ms / 1000)
        self.enqueue(seat, session, event)

    def _dropped(self, seat: Seat, event: Event) -> None:
        """A queued event its seat's session took with it: the gateway never sends it."""
        self.log_event(seat, event, "lost")

    def log_event(self, seat: Seat, event: Event, status: str) -> None:
        self.sim.events.append(
            {
                "at": now_ms(),
                "url": f"{ROOT}/agentevent/{seat.workno}",
                "body": json.dumps(event),
                "status": status,
            }
        )

    def view(self) -> dict[str, Any]:
        for seat in self.seats.values():
            self.expire_idle(seat)
        return {
            "config": self.config.model_dump(),
            "node": self.node_name,
            "concurrent_polls_refused": self.polls_refused,
            "seats": [seat.view() for seat in self.seats.values()],
        }
