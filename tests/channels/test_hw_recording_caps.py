"""An hw recording is read within the recording caps every vendor's is (``RecordingSource``):
at most ``max_bytes``, all of it within one deadline; the gateway's JSON refusal is read at
most 64 KiB. A gateway that sends more, or never stops, cannot hold a worker or its memory."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from channels.errors import RecordingUnavailable, VendorNetworkError, VendorServerError
from channels.http import RecordingSource
from channels.hw import HwChannel
from channels.protocols import MemorySessions

BASE = "http://hw.test"
URL = f"{BASE}/agentgateway/resource/recordfile/10001?recordId=7"
CAPS = dataclasses.replace(RecordingSource.strict("hw", BASE), max_bytes=1000, deadline_s=0.5)


class Endless(httpx.AsyncByteStream):
    """A recording that sends one chunk, then nothing, for ever."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"RIFF" + bytes(96)
        await asyncio.Event().wait()


def gateway(answer: Callable[[httpx.Request], httpx.Response]) -> HwChannel:
    transport = httpx.MockTransport(answer)
    return HwChannel(BASE, "pw", MemorySessions(), transport=transport, recordings=CAPS)


async def read_all(hw: HwChannel) -> bytes:
    async with hw.open_recording(URL) as recording:
        return b"".join([chunk async for chunk in recording.chunks])


async def test_a_recording_within_the_caps_is_read_whole() -> None:
    wav = b"RIFF" + bytes(996)
    hw = gateway(lambda _: httpx.Response(200, headers={"content-type": "audio/wav"}, content=wav))
    assert await read_all(hw) == wav


async def test_a_recording_announced_larger_than_the_cap_is_refused_before_reading() -> None:
    big = httpx.Response(200, headers={"content-type": "audio/wav"}, content=bytes(1001))
    with pytest.raises(RecordingUnavailable, match="too large"):
        await read_all(gateway(lambda _: big))


async def test_a_recording_growing_past_the_cap_unannounced_is_refused() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield bytes(100)

    def unannounced(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "audio/wav"}, content=chunks())

    with pytest.raises(RecordingUnavailable, match="too large"):
        await read_all(gateway(unannounced))


async def test_a_recording_that_never_ends_ends_at_the_deadline() -> None:
    def endless(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "audio/wav"}, stream=Endless())

    with pytest.raises(VendorNetworkError, match="not read within 0.5 s"):
        await read_all(gateway(endless))


async def test_a_refusal_too_large_to_be_one_is_a_vendor_fault() -> None:
    huge = b'{"retcode": "104-005", "message": "' + b"x" * 70_000 + b'"}'
    refusal = httpx.Response(200, headers={"content-type": "application/json"}, content=huge)
    with pytest.raises(VendorServerError, match="too large"):
        await read_all(gateway(lambda _: refusal))
