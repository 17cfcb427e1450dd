"""Channel hw: a Huawei CEC CC-Gateway, agent interface, polled per seat (VENDORS.md, hw).

CC's lines are seats. A seat signs in with the agent's phone (leg A) and is long-polled for
one event per answer (parsed in ``channels/hw_events.py``); a callout rings that phone, then
B. CEC routes inbound 400 calls itself: a poll that shows one ringing the seat says so
(``SeatPoll.rings``), for CC to record it. Every call but sign-in carries the seat's
``Guid`` and replays the sign-in's cookie; any answer may rotate the guid (``Set-GUID``). The
seat's session (guid and cookies) and which seat placed which call live in the
``SessionStore`` every process shares, loaded before each request and saved after each answer
that changes them, so a callout from one worker and the poll on another use the same, newest
guid.

The gateway answers every call HTTP 200 with a string ``retcode`` (``"0"`` or ``NNN-NNN``).
It has no call-result query: ``call_result`` only checks the gateway can be asked.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Annotated, Any

import httpx
from pydantic import Field

from channels.errors import (
    SeatSignedOut,
    VendorOutcomeUnknown,
    VendorRejected,
    VendorServerError,
)
from channels.events import (
    CallEvent,
    PlaceCallRequest,
    PlacedCall,
    SeatContext,
    SeatLogin,
    SeatPoll,
    SeatStatus,
)
from channels.helpers import VENDOR_ID_MAX, fit
from channels.http import RecordingSource, read_object, send
from channels.hw_events import ROOT, parse_seat_event, ring_of
from channels.hw_gateway import SEAT_ID, SeatGateway
from channels.hw_session import (
    ALREADY_SIGNED_IN,
    NO_CALL,
    SIGNED_OUT,
    STALE_GUID,
    TRANSIENT,
    SeatSession,
    StaleGuid,
    dial,
    raise_for,
)
from channels.protocols import MemorySessions, Recording, SeatLogins, SessionStore
from core.config import CoreSettings
from core.secrets import DemoDefault
from core.types import ChannelMode

log = logging.getLogger("cc.channels.hw")

NAME = "hw"
TALKING, SIGNED_OUT_STATE = 7, 2  # agentstatus' agentState
PROBE_SEAT = "101"  # the lowest seat id: asked when this process knows no seat


class HwSettings(CoreSettings):
    """Channel hw's CC-Gateway, read as ``CC_HW_*`` (defaults point at the local simulator)."""

    hw_base_url: str = "http://127.0.0.1:9102"
    # Calls per second the vendor allows (0: no limit). Place requests wait their turn on the
    # vendor's own task queue, which Temporal holds to this rate across every worker.
    hw_cps: float = Field(default=0.0, ge=0)
    # For seats without a password of their own.
    hw_seat_password: Annotated[str, DemoDefault("hw_base_url")] = "hw-demo-seat-password"
    hw_seat_idle_s: float = 300.0  # a seat without calls this long is signed out
    hw_poll_timeout_s: float = 15.0  # read timeout of a long poll (the gateway holds ≤ 10 s)
    hw_region: str = "CN"  # the gateway's country: its numbers are dialled in national form


def build(settings: HwSettings, sessions: SessionStore | None = None) -> HwChannel:
    return HwChannel(
        settings.hw_base_url,
        settings.hw_seat_password,
        sessions if sessions is not None else MemorySessions(),
        timeout_s=settings.vendor_timeout_s,
        poll_timeout_s=settings.hw_poll_timeout_s,
        region=settings.hw_region,
        recordings=RecordingSource.of(settings, NAME, settings.hw_base_url),
    )


class HwChannel:
    name = NAME
    mode = ChannelMode.POLL
    line_id_pattern = SEAT_ID

    def __init__(
        self,
        base_url: str,
        seat_password: str,
        sessions: SessionStore,
        *,
        timeout_s: float = 5.0,
        poll_timeout_s: float = 15.0,
        region: str = "CN",
        transport: httpx.AsyncBaseTransport | None = None,
        recordings: RecordingSource | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._seat_password, self._sessions, self._region = seat_password, sessions, region
        self._poll_timeout = httpx.Timeout(timeout_s, read=poll_timeout_s)
        self._seats: set[str] = set()  # seats this process used: the probe asks one of them
        # Cookies are per seat and kept in the SessionStore: the client keeps none itself.
        no_cookies = CookieJar(DefaultCookiePolicy(allowed_domains=[]))
        self._http = httpx.AsyncClient(
            base_url=self._base, timeout=timeout_s, cookies=no_cookies, transport=transport
        )
        self._gateway = SeatGateway(self._http, self._base, sessions, recordings)

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- seats ---------------------------------------------------------------------------
    async def sign_in(self, login: SeatLogin) -> None:
        seat = login.seat
        body = {
            "password": login.password or self._seat_password,
            "phonenum": dial(login.phonenum, self._region),
            "releasephone": True,
            "autoanswer": True,
            "autoenteridle": True,
            "agenttype": 4,
            "status": 4,
        }
        response, answer = await self._sign_in(seat, "", body)
        if str(answer.get("retcode")) == ALREADY_SIGNED_IN:
            response, answer = await self._sign_in(seat, "/forcelogin", body)
        raise_for(answer, "hw sign-in")
        session = SeatSession().taking(response)
        if not session.guid:
            raise VendorServerError("hw sign-in: answered without a Set-GUID")
        await self._gateway.save(seat, session)
        self._seats.add(seat)
        log.info("hw seat signed in seat=%s", seat)

    async def _sign_in(
        self, seat: str, how: str, body: dict[str, Any]
    ) -> tuple[httpx.Response, dict[str, Any]]:
        what = f"hw onlineagent{how or ' sign-in'}"
        path = f"{ROOT}/onlineagent/{self._gateway.segment(seat)}{how}"
        response = await send(self._http, "PUT", path, what=what, json=body)
        return response, read_object(response, what)

    async def sign_out(self, seat: str) -> None:
        try:
            path = f"/onlineagent/{self._gateway.segment(seat)}/forcelogout"
            _, answer = await self._gateway.call(seat, "DELETE", path)
            if str(answer.get("retcode")) not in SIGNED_OUT:
                raise_for(answer, "hw forcelogout")
        except StaleGuid:  # the session is gone: the gateway signs the seat out unpolled
            log.info("hw seat session already gone seat=%s", seat)
        await self._sessions.save(NAME, f"seat:{seat}", "")
        self._seats.discard(seat)

    async def poll_seat(self, login: SeatLogin, context: SeatContext) -> SeatPoll:
        """One long poll; on a stale guid (after the retry with the newest) the seat is
        signed in again and polled once more."""
        seat, path = login.seat, f"/agentevent/{self._gateway.segment(login.seat)}"
        self._seats.add(seat)
        try:
            response, answer = await self._gateway.call(
                seat, "GET", path, timeout=self._poll_timeout
            )
        except StaleGuid:
            log.warning("hw seat guid stale, signing in again seat=%s", seat)
            await self.sign_in(login)
            response, answer = await self._gateway.call(
                seat, "GET", path, timeout=self._poll_timeout
            )
        raise_for(answer, "hw agentevent")
        event = answer.get("event")
        if not isinstance(event, Mapping):
            return SeatPoll(events=[], context=context, raw=response.content)
        received_ms = int(time.time() * 1000)
        events, context = parse_seat_event(seat, self._base, event, context, received_ms)
        ring = ring_of(event, received_ms)
        if ring is not None:
            await self._note_call(seat, ring.vendor_call_id, again=False)
        return SeatPoll(
            events=events, context=context, raw=response.content, rings=[ring] if ring else []
        )

    async def seat_status(self, seat: str) -> SeatStatus:
        """IDLE, BUSY (in a call: CTI states 2–5, ``agentState`` 7), OFFHOOK (``isWorking``:
        the seat's phone is off-hook in a call) or SIGNED_OUT.
        Says nothing of a call the seat lost with its session: the call may go on."""
        path = f"/onlineagent/{self._gateway.segment(seat)}/agentstatus"
        _, answer = await self._gateway.call(seat, "GET", path)
        if str(answer.get("retcode")) in SIGNED_OUT:
            return SeatStatus.SIGNED_OUT
        raise_for(answer, "hw agentstatus")
        result = answer.get("result")
        result = result if isinstance(result, Mapping) else {}
        if result.get("isWorking") is True:
            return SeatStatus.OFFHOOK
        if result.get("agentState") == TALKING:
            return SeatStatus.BUSY
        if result.get("agentState") == SIGNED_OUT_STATE:
            return SeatStatus.SIGNED_OUT
        return SeatStatus.IDLE

    # -- calls ---------------------------------------------------------------------------
    async def place_call(self, request: PlaceCallRequest) -> PlacedCall:
        """A callout of seat ``request.agent``: the seat's phone (signed in with the agent's
        number) rings first, then ``called``. A refusal before placing (seat signed out,
        session stale, gateway busy) is a ``VendorServerError``: nothing was placed."""
        seat, what = request.agent, "hw callout"
        body = {
            "called": dial(request.called, self._region),
            "caller": dial(request.display_to_b, self._region),
            "callappdata": request.cc_call_id,
        }
        path = f"/voicecall/{self._gateway.segment(seat)}/callout"
        try:
            try:
                _, answer = await self._gateway.call(seat, "PUT", path, placing=True, json=body)
            except StaleGuid as stale:
                answer = await self._callout_signed_in_anew(request, path, body, stale)
            raise_for(answer, what)
        except SeatSignedOut as exc:
            raise VendorServerError(f"{what}: the seat is not signed in ({exc})") from exc
        call_id = answer.get("result")
        if not isinstance(call_id, str | int) or isinstance(call_id, bool) or not str(call_id):
            raise VendorOutcomeUnknown(f"{what}: accepted without a call id")
        vendor_call_id = fit(str(call_id), VENDOR_ID_MAX)
        await self._note_call(seat, vendor_call_id)
        return PlacedCall(vendor_call_id=vendor_call_id)

    async def _callout_signed_in_anew(
        self, request: PlaceCallRequest, path: str, body: dict[str, Any], stale: StaleGuid
    ) -> dict[str, Any]:
        """VENDORS.md: ``000-003`` even with the newest guid, then force sign-in and call out
        once more. A callout refused so again (or with no way to sign in here) is refused for
        the seat itself, no right to call out: a rejection, which never fails over."""
        seat = request.agent
        if not isinstance(self._sessions, SeatLogins):
            raise VendorRejected(STALE_GUID, f"hw callout: no right ({stale})")
        await self.sign_in(await self._sessions.seat_login(NAME, seat, request.caller))
        try:
            _, answer = await self._gateway.call(seat, "PUT", path, placing=True, json=body)
        except StaleGuid as exc:
            raise VendorRejected(STALE_GUID, "hw callout: no right, even signed in anew") from exc
        return answer

    async def _note_call(self, seat: str, vendor_call_id: str, again: bool = True) -> None:
        """Which seat a call is on (placed by it, or an inbound call that rang it), and the
        seat's latest call: ``hangup`` releases it; ``again=False`` leaves a call noted
        already as it is (a repeated ring is no newer call). Best effort: the call exists,
        whatever happens to this note."""
        try:
            if not again and await self._sessions.load(NAME, f"call:{vendor_call_id}"):
                return
            await self._sessions.save(NAME, f"call:{vendor_call_id}", seat)
            await self._sessions.save(NAME, f"seat-call:{seat}", vendor_call_id)
        except Exception:  # noqa: BLE001 - see above
            log.warning("hw call not noted seat=%s call=%s", seat, vendor_call_id, exc_info=True)

    async def hangup(self, vendor_call_id: str) -> None:
        """Release the call's seat's current call, unless the seat has placed another since
        (the call is over then, and release would end the other one)."""
        seat = await self._gateway.seat_of(vendor_call_id)
        latest = await self._sessions.load(NAME, f"seat-call:{seat}")
        if latest and latest != vendor_call_id:
            return
        path = f"/voicecall/{self._gateway.segment(seat)}/release"
        _, answer = await self._gateway.call(seat, "DELETE", path)
        if str(answer.get("retcode")) != NO_CALL:  # no call: it already ended
            raise_for(answer, "hw release")

    async def call_result(self, vendor_call_id: str, cc_call_id: str) -> list[CallEvent]:
        """The gateway cannot be asked about a call: nothing, once it is known to answer.

        A seat's state proves nothing of one call (an idle seat may be ringing the agent's
        phone, or have lost the call with its session), and no time of the call's end would
        be known: the seat's own reconciliation decides (``seat_status``)."""
        seat = await self._sessions.load(NAME, f"call:{vendor_call_id}")
        if seat:
            await self.seat_status(seat)
        else:
            await self.probe()
        return []

    async def probe(self) -> None:
        """``agentstatus`` of a seat this process used (any retcode means the gateway is
        well), else of the lowest seat id without a session (answered 100-006 or 000-003)."""
        seat = next(iter(self._seats), PROBE_SEAT)
        session = await self._gateway.load(seat)
        what = "hw probe"
        response = await send(
            self._http,
            "GET",
            f"{ROOT}/onlineagent/{self._gateway.segment(seat)}/agentstatus",
            what=what,
            headers=session.headers(),
        )
        if session.guid:
            await self._gateway.take(seat, session, response)
        code = str(read_object(response, what).get("retcode", ""))
        if not code or code in TRANSIENT:
            raise VendorServerError(f"{what}: {code or 'not a CC-Gateway answer'}")

    # -- recordings ----------------------------------------------------------------------
    def open_recording(self, url: str) -> contextlib.AbstractAsyncContextManager[Recording]:
        """The seat's ``recordfile`` (built by the parser), with the seat's newest guid: an
        audio answer is the file; a JSON one the gateway's refusal (``104-005`` not yet)."""
        return self._gateway.open_recording(url)
