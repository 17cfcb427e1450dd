"""Issue 20, the second wall: every adapter puts an id (a seat, a call id) into a URL path as
one percent-encoded segment, so a tenant's line id ``a/../10001`` can never become another
seat's path: httpx resolves dot segments (``/onlineagent/a/../10001`` goes out as
``/onlineagent/10001``), so an id left raw signed in, polled or called out on seat 10001,
another tenant's, with the channel's default seat password.

Each test failed before the change: the raw id reached the gateway as ``/10001``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest

from channels.e9 import E9Channel
from channels.errors import SeatRefused, VendorRejected
from channels.events import PlaceCallRequest, SeatContext, SeatLogin
from channels.helpers import path_segment
from channels.hw import HwChannel
from channels.jy import JyChannel
from channels.protocols import MemorySessions
from tests.simulators.hw_support import BASE, PASSWORD, hw_simulator

TRICK = "a/../10001"  # another tenant's seat, one dot segment away
VICTIM = "10001"
PHONE = "+8613800000001"


def request(agent: str) -> PlaceCallRequest:
    return PlaceCallRequest(cc_call_id="cc-1", caller=PHONE, called="+8613900000002",
                            display_to_a="+861088000100", display_to_b="+861088000100",
                            agent=agent, max_duration_s=60)  # fmt: skip


class Wire:
    """A transport that answers every request with ``answer`` and keeps each request's path
    as it went on the wire (percent-encoding and all)."""

    def __init__(self, answer: httpx.Response) -> None:
        self.paths: list[bytes] = []
        self._answer = answer

    def transport(self) -> httpx.MockTransport:
        def handle(req: httpx.Request) -> httpx.Response:
            self.paths.append(req.url.raw_path.split(b"?")[0])
            return self._answer

        return httpx.MockTransport(handle)


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[httpx.AsyncClient, HwChannel]]:
    """The hw simulator (seat 10001's password is the channel's default seat password, as
    for any seat without its own) and an hw channel on it."""
    async with hw_simulator() as (control, transport):
        hw = HwChannel(BASE, PASSWORD, MemorySessions(), transport=transport)
        yield control, hw
        await hw.aclose()


async def _victim(control: httpx.AsyncClient) -> dict[str, Any]:
    view = (await control.get("/_sim/gateway")).json()
    return next(s for s in view["seats"] if s["workno"] == VICTIM)


async def _gateway_requests(control: httpx.AsyncClient) -> list[str]:
    log = (await control.get("/_sim/log")).json()
    return [r["path"] for r in log["requests"] if not r["path"].startswith("/_sim")]


HW_OPERATIONS: dict[str, Callable[[HwChannel], Coroutine[Any, Any, object]]] = {
    "sign_in": lambda hw: hw.sign_in(SeatLogin(seat=TRICK, password="", phonenum=PHONE)),
    "poll_seat": lambda hw: hw.poll_seat(
        SeatLogin(seat=TRICK, password="", phonenum=PHONE), SeatContext()
    ),
    "seat_status": lambda hw: hw.seat_status(TRICK),
    "sign_out": lambda hw: hw.sign_out(TRICK),
    "place_call": lambda hw: hw.place_call(request(TRICK)),
}


@pytest.mark.parametrize("operation", list(HW_OPERATIONS))
async def test_hw_never_sends_a_seat_id_that_is_a_path_to_the_gateway(
    gateway: tuple[httpx.AsyncClient, HwChannel], operation: str
) -> None:
    """``a/../10001`` with the default password: refused by the adapter, before any request;
    seat 10001 stays signed out and the gateway hears nothing of it."""
    control, hw = gateway
    with pytest.raises(SeatRefused) as refused:
        await HW_OPERATIONS[operation](hw)
    assert refused.value.code == "invalid-seat"
    assert await _gateway_requests(control) == []
    assert not (await _victim(control))["signed_in"]


async def test_hw_sends_a_seat_as_one_encoded_segment(
    gateway: tuple[httpx.AsyncClient, HwChannel],
) -> None:
    """Beneath the seat-id check, the encoding on its own: with the check opened up, the id
    goes out as one segment (``a%2F..%2F10001``), which the gateway routes to no seat."""
    control, hw = gateway
    hw._gateway.seat_id = r".+"  # this instance takes any id
    wire = Wire(httpx.Response(200, json={"retcode": "100-004", "message": "wrong"}))
    on_wire = HwChannel(BASE, PASSWORD, MemorySessions(), transport=wire.transport())
    on_wire._gateway.seat_id = r".+"
    login = SeatLogin(seat=TRICK, password="", phonenum=PHONE)
    with pytest.raises(SeatRefused):
        await on_wire.sign_in(login)
    assert wire.paths == [b"/agentgateway/resource/onlineagent/a%2F..%2F10001"]
    await on_wire.aclose()
    with pytest.raises(Exception):  # noqa: B017 - whatever the gateway says of no such seat
        await hw.sign_in(login)
    assert not (await _victim(control))["signed_in"]


@pytest.mark.parametrize("operation", ["hangup", "call_result"])
async def test_jy_sends_a_call_id_as_one_encoded_segment(operation: str) -> None:
    wire = Wire(httpx.Response(404, json={"code": 20404, "message": "not found", "status": 404}))
    jy = JyChannel("http://jy.test", "AC1", "tok", "http://cc/webhooks/jy")
    jy._http = httpx.AsyncClient(base_url="http://jy.test", transport=wire.transport())
    with pytest.raises(VendorRejected):
        if operation == "hangup":
            await jy.hangup("CA/../../Calls")
        else:
            await jy.call_result("CA/../../Calls", "cc-1")
    assert wire.paths[0] == b"/2010-04-01/Accounts/AC1/Calls/CA%2F..%2F..%2FCalls.json"
    await jy.aclose()


async def test_e9_puts_no_call_id_in_a_path() -> None:
    """e9 names a call in its query or body (httpx encodes both): its paths stay fixed."""
    wire = Wire(httpx.Response(200, json={"statusCode": "000000", "CallResult": {}}))
    e9 = E9Channel("http://e9.test", "sid", "tok", "http://cc/webhooks/e9")
    e9._http = httpx.AsyncClient(base_url="http://e9.test", transport=wire.transport())
    await e9.hangup("a/../x")
    await e9.call_result("a/../x", "cc-1")
    assert wire.paths == [
        b"/2013-12-26/Accounts/sid/Calls/CallCancel",
        b"/2013-12-26/Accounts/sid/CallResult",
    ]
    await e9.aclose()


@pytest.mark.parametrize("value", ["", ".", "..", "\ud800"])
def test_an_id_no_path_segment_can_carry_is_refused(value: str) -> None:
    with pytest.raises(VendorRejected):
        path_segment(value)


def test_a_path_segment_encodes_every_separator() -> None:
    assert path_segment("a/../10001?x=1#f%") == "a%2F..%2F10001%3Fx%3D1%23f%25"
    assert path_segment("10001") == "10001"
