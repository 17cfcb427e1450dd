"""Recordings into an OSS bucket on the live stack: the real oss2 client signs every request
to the OSS-protocol server, and GET /v1/calls/{id}/recording answers 307 to a signed URL
that works for a plain HTTP client, and a late-publishing vendor still gets copied."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api.app import create_app
from simulators.common import tone_wav
from simulators.oss import create_app as create_oss
from tests.e2e.calls import callback_requests, place, wait_closed
from tests.e2e.test_recordings import RECORDED_TIMING, wait_recording_settled
from tests.stack import API_KEY, FAST_TIMING, Stack
from tests.support import ServerThread, free_port
from worker import build_worker


@pytest.fixture
async def oss_api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An API and a worker of their own (task queue cc-oss) that keep recordings in OSS."""
    api_port = free_port()
    settings = stack.settings.model_copy(
        update={"task_queue": "cc-oss", "api_port": api_port, "storage_backend": "oss",
                "public_base_url": f"http://127.0.0.1:{api_port}",
                "oss_endpoint": f"http://127.0.0.1:{free_port()}"}
    )  # fmt: skip
    oss = ServerThread(create_oss(settings), settings.port_of(settings.oss_endpoint)).start()
    api = ServerThread(create_app(settings), api_port).start()
    with ThreadPoolExecutor(8) as executor:
        worker = build_worker(stack.client, settings, executor)
        running = asyncio.create_task(worker.run())
        for sim in stack.sims.values():
            await sim.put("/_sim/timing", json=RECORDED_TIMING)
        try:
            async with httpx.AsyncClient(
                base_url=settings.public_base_url, headers={"Authorization": f"Bearer {API_KEY}"}
            ) as client:
                yield client
        finally:
            for sim in stack.sims.values():
                await sim.put("/_sim/timing", json=FAST_TIMING)
            await worker.shutdown()
            running.cancel()
            api.stop()
            oss.stop()


async def test_recording_in_oss_is_served_by_a_signed_url(
    stack: Stack, oss_api: httpx.AsyncClient
) -> None:
    call = await place(oss_api, channel="jy", record=True)
    await wait_closed(oss_api, call["id"])
    view = await wait_recording_settled(oss_api, call["id"], within=40)
    assert view["recording_error"] is None
    assert view["audio_url"].startswith("oss://cc-recordings/tenant-a/")
    answer = await oss_api.get(f"/v1/calls/{call['id']}/recording")
    assert answer.status_code == 307
    signed = answer.headers["location"]
    assert "Signature=" in signed and "Expires=" in signed
    async with httpx.AsyncClient() as anyone:
        assert (await anyone.get(signed)).content == tone_wav()
        unsigned = signed.split("?", 1)[0]
        assert (await anyone.get(unsigned)).status_code == 403  # the bucket is private


async def test_late_recording_is_still_copied(stack: Stack, oss_api: httpx.AsyncClient) -> None:
    # Published 4 s after the hang-up: the first tries get 404, a later one the file.
    await stack.sims["e9"].put("/_sim/timing", json={"recording_delay_ms": 4000})
    call = await place(oss_api, channel="e9", record=True)
    closed = await wait_closed(oss_api, call["id"])
    view = await wait_recording_settled(oss_api, call["id"], within=40)
    assert view["recording_error"] is None and view["audio_url"].startswith("oss://")
    assert view["close_time"] == closed["close_time"]
    log = (await stack.sims["e9"].get("/_sim/log")).json()
    fetches = [r for r in log["requests"] if r["path"] == _path(closed["ch_audio_url"])]
    assert len(fetches) >= 2  # asked again after "not yet"
    assert len(await callback_requests(stack.sims["e9"], call["id"])) == 1


def _path(url: str) -> str:
    return httpx.URL(url).path
