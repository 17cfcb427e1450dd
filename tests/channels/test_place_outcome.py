"""Every adapter tells a place request that never reached the vendor (safe to retry or fail
over) from one whose outcome is unknown (sent, then no answer: never placed again)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from channels.e9 import E9Channel
from channels.errors import (
    VendorNetworkError,
    VendorOutcomeUnknown,
    VendorRejected,
    VendorServerError,
)
from channels.events import PlaceCallRequest
from channels.hw import HwChannel
from channels.hw_gateway import SeatGateway
from channels.jy import JyChannel
from channels.protocols import Channel, MemorySessions
from tests.support import free_port

BASE = "http://vendor.test"

# hw hangs up a call through the seat that placed it (saved at callout): V1's is seat 10001.
HW_SESSIONS = MemorySessions()
BUILD: dict[str, Callable[[str], Channel]] = {
    "e9": lambda base: E9Channel(base, "sid", "tok", "http://cc/webhooks/e9"),
    "hw": lambda base: HwChannel(base, "pw", HW_SESSIONS),
    "jy": lambda base: JyChannel(base, "AC1", "tok", "http://cc/webhooks/jy"),
}
REQUEST = PlaceCallRequest(cc_call_id="cc1", caller="+8613800000001", called="+8613900000002",
                           display_to_a="+861088000100", display_to_b="+8613800000001",
                           agent="+861088000100", max_duration_s=60)  # fmt: skip


def request_for(channel: Channel) -> PlaceCallRequest:
    """REQUEST on a line of the channel's kind: hw's lines are CC-Gateway seats."""
    return REQUEST.model_copy(update={"agent": "10001"}) if channel.name == "hw" else REQUEST


NOT_SENT = [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout]
SENT = [httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError,
        httpx.RemoteProtocolError]  # fmt: skip


@pytest.fixture(params=list(BUILD))
async def vendor(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Channel]]:
    channel = BUILD[request.param](BASE)
    await HW_SESSIONS.save("hw", "call:V1", "10001")
    await HW_SESSIONS.save("hw", "seat-call:10001", "")  # no later call of the seat's
    yield request.param, channel
    await channel.aclose()


def wired(channel: Channel, handler: Callable[[httpx.Request], httpx.Response]) -> None:
    """The channel's requests answered by ``handler`` (hw's go through its seat gateway)."""
    http = httpx.AsyncClient(base_url=BASE, transport=httpx.MockTransport(handler))
    channel._http = http  # type: ignore[attr-defined]
    if isinstance(channel, HwChannel):
        channel._gateway = SeatGateway(http, BASE, HW_SESSIONS)


def failing(channel: Channel, error: type[httpx.TransportError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    wired(channel, handler)


def answering(channel: Channel, response: httpx.Response) -> None:
    wired(channel, lambda _: response)


@pytest.mark.parametrize("error", NOT_SENT, ids=lambda e: e.__name__)
async def test_a_request_that_never_left_is_a_plain_network_error(
    vendor: tuple[str, Channel], error: type[httpx.TransportError]
) -> None:
    _, channel = vendor
    failing(channel, error)
    with pytest.raises(VendorNetworkError) as caught:
        await channel.place_call(request_for(channel))
    assert not isinstance(caught.value, VendorOutcomeUnknown) and caught.value.retryable


@pytest.mark.parametrize("error", SENT, ids=lambda e: e.__name__)
async def test_a_request_sent_then_lost_has_an_unknown_outcome(
    vendor: tuple[str, Channel], error: type[httpx.TransportError]
) -> None:
    _, channel = vendor
    failing(channel, error)
    with pytest.raises(VendorOutcomeUnknown) as caught:
        await channel.place_call(request_for(channel))
    assert not caught.value.retryable


@pytest.mark.parametrize("error", SENT, ids=lambda e: e.__name__)
async def test_only_place_call_has_unknown_outcomes(
    vendor: tuple[str, Channel], error: type[httpx.TransportError]
) -> None:
    _, channel = vendor
    failing(channel, error)
    for attempt in (channel.hangup("V1"), channel.probe(), channel.call_result("V1", "cc1")):
        with pytest.raises(VendorNetworkError) as caught:
            await attempt
        assert not isinstance(caught.value, VendorOutcomeUnknown)


async def test_connection_refused_is_a_plain_network_error() -> None:
    for build in BUILD.values():
        channel = build(f"http://127.0.0.1:{free_port()}")
        with pytest.raises(VendorNetworkError) as caught:
            await channel.place_call(request_for(channel))
        assert not isinstance(caught.value, VendorOutcomeUnknown)
        await channel.aclose()


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [(500, b"{}", VendorServerError), (503, b"<html>", VendorServerError),
     (200, b"<html>not json", VendorServerError)],
)  # fmt: skip
async def test_an_answered_error_placed_nothing(
    vendor: tuple[str, Channel], status: int, body: bytes, error: type[Exception]
) -> None:
    _, channel = vendor
    answering(channel, httpx.Response(status, content=body))
    with pytest.raises(error):
        await channel.place_call(request_for(channel))


async def test_a_vendor_refusal_is_rejected(vendor: tuple[str, Channel]) -> None:
    name, channel = vendor
    refusal = {
        "e9": httpx.Response(200, json={"statusCode": "111141", "statusMsg": "invalid number"}),
        "hw": httpx.Response(200, json={"retcode": "200-001", "message": "called is invalid"}),
        "jy": httpx.Response(400, json={"code": 21211, "message": "Invalid 'To'"}),
    }[name]
    answering(channel, refusal)
    with pytest.raises(VendorRejected):
        await channel.place_call(request_for(channel))


async def test_an_overlong_vendor_id_is_fitted_to_the_record(vendor: tuple[str, Channel]) -> None:
    name, channel = vendor
    long_id = "S" * 200
    answer = {
        "e9": {"statusCode": "000000", "CallBack": {"callSid": long_id}},
        "hw": {"retcode": "0", "message": "success", "result": long_id},
        "jy": {"sid": long_id, "status": "queued"},
    }[name]
    answering(channel, httpx.Response(201 if name == "jy" else 200, json=answer))
    placed = await channel.place_call(request_for(channel))
    assert len(placed.vendor_call_id) <= 64
    assert placed.vendor_call_id != long_id[:64]  # a digest, not a cut that could collide


@pytest.mark.parametrize("body", [b"<html>", b"{}", b'{"status": "queued"}', b"[]"])
async def test_a_jy_201_without_a_readable_sid_has_an_unknown_outcome(body: bytes) -> None:
    """Twilio-style 201 Created means the call exists: never placed again elsewhere."""
    jy = BUILD["jy"](BASE)
    answering(jy, httpx.Response(201, content=body))
    with pytest.raises(VendorOutcomeUnknown):
        await jy.place_call(REQUEST)
    answering(jy, httpx.Response(200, content=body))  # no 201: nothing says it was created
    with pytest.raises(VendorServerError):
        await jy.place_call(REQUEST)
    await jy.aclose()


async def test_an_undecodable_answer_to_a_place_request_has_an_unknown_outcome(
    vendor: tuple[str, Channel],
) -> None:
    _, channel = vendor

    def garbled(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip")
        )

    wired(channel, garbled)
    with pytest.raises(VendorOutcomeUnknown):
        await channel.place_call(request_for(channel))
    with pytest.raises(VendorNetworkError):
        await channel.hangup("V1")
