"""Recordings on the live stack: a recorded call on every channel ends with CC's own copy
(``audio_url``) and GET /v1/calls/{id}/recording serves the vendor's exact bytes; a vendor
that never publishes leaves ``recording_error`` and the call record intact.

Needs CallWorkflow to run ``copy_recording`` after the close, and (for the last test) a
short ``recording_deadline_s`` in tests/stack.py's ``make_settings``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from channels.registry import CHANNELS
from simulators.common import tone_wav
from simulators.hw_events import alaw_wav
from tests.e2e.calls import place, wait_closed
from tests.stack import ADMIN_KEY, FAST_TIMING, SOLO_KEY, Stack
from tests.support import wait_for

# hw records only calls that talked 3 s or more (VENDORS.md).
RECORDED_TIMING = {**FAST_TIMING, "talk_ms": 3100}
NEVER_MS = 24 * 3600 * 1000


@pytest.fixture
async def recorded_timing(stack: Stack) -> AsyncIterator[None]:
    for sim in stack.sims.values():
        await sim.put("/_sim/timing", json=RECORDED_TIMING)
    yield
    for sim in stack.sims.values():
        await sim.put("/_sim/timing", json=FAST_TIMING)


async def wait_recording_settled(api: httpx.AsyncClient, call_id: str, within: float) -> Any:
    """The call view once CC has either copied the recording or given up on it."""

    async def settled() -> dict[str, Any] | None:
        view: dict[str, Any] = (await api.get(f"/v1/calls/{call_id}")).json()
        return view if view.get("audio_url") or view.get("recording_error") else None

    return await wait_for(settled, within, f"call {call_id}'s recording to settle")


@pytest.mark.parametrize("channel", list(CHANNELS))
async def test_recorded_call_gets_our_copy_of_the_vendors_bytes(
    stack: Stack, recorded_timing: None, channel: str
) -> None:
    call = await place(stack.api, channel=channel, record=True)
    closed = await wait_closed(stack.api, call["id"])
    assert closed["channel"] == channel
    view = await wait_recording_settled(stack.api, call["id"], within=40)
    assert view["recording_error"] is None and view["ch_audio_url"]  # hw's with its Record event
    assert view["audio_url"].startswith("local:tenant-a/")  # the embedded default store
    assert view["audio_url"].endswith(f"/{call['id']}.wav")
    answer = await stack.api.get(f"/v1/calls/{call['id']}/recording")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "audio/wav"
    assert answer.content == (alaw_wav() if channel == "hw" else tone_wav())  # the vendor's bytes
    async with stack.as_tenant(SOLO_KEY) as other:  # another tenant never sees it exists
        hidden = await other.get(f"/v1/calls/{call['id']}/recording")
    assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"


async def test_unrecorded_call_has_no_recording(stack: Stack) -> None:
    call = await place(stack.api, channel="e9", record=False)
    view = await wait_closed(stack.api, call["id"])
    assert view["ch_audio_url"] is None and view["audio_url"] is None
    answer = await stack.api.get(f"/v1/calls/{call['id']}/recording")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "no_recording"


async def test_vendor_that_never_publishes_leaves_recording_error(
    stack: Stack, recorded_timing: None
) -> None:
    deadline = stack.settings.recording_deadline_s
    assert deadline <= 30, "make_settings must give the e2e stack a short recording deadline"
    await stack.sims["e9"].put("/_sim/timing", json={"recording_delay_ms": NEVER_MS})
    call = await place(stack.api, channel="e9", record=True)
    closed = await wait_closed(stack.api, call["id"])
    assert closed["ch_audio_url"]  # the vendor promised one...
    view = await wait_recording_settled(stack.api, call["id"], within=deadline + 30)
    assert view["audio_url"] is None and view["recording_error"]  # ...and never delivered
    assert view["state"] == "close" and view["close_type"] == closed["close_type"]  # kept
    answer = await stack.api.get(f"/v1/calls/{call['id']}/recording")
    assert answer.status_code == 404 and answer.json()["code"] == "no_recording"
    assert view["recording_error"] in answer.json()["detail"]


@pytest.mark.parametrize("channel", list(CHANNELS))
async def test_a_recording_deleted_during_the_call_is_never_kept(
    stack: Stack, recorded_timing: None, channel: str
) -> None:
    """An admin deletes the recording while the call still runs: the vendor publishes one
    after the close all the same, and CC neither copies nor points to it."""
    call = await place(stack.api, channel=channel, record=True)
    url = f"/v1/calls/{call['id']}/recording"
    async with stack.as_tenant(ADMIN_KEY) as admin:
        assert (await admin.delete(url)).status_code == 204
    closed = await wait_closed(stack.api, call["id"])
    view = await wait_recording_settled(stack.api, call["id"], within=40)
    assert closed["state"] == "close" and view["recording_error"].startswith("deleted by admin")
    assert (view["audio_url"], view["ch_audio_url"]) == (None, None)
    root = Path(stack.settings.storage_dir)
    assert not [p for p in root.rglob(f"{call['id']}.*")]  # noqa: ASYNC240 - a test's look
    assert (await stack.api.get(url)).json()["code"] == "no_recording"


async def test_a_copied_recording_deleted_by_an_admin_is_gone(
    stack: Stack, recorded_timing: None
) -> None:
    call = await place(stack.api, channel="e9", record=True)
    await wait_closed(stack.api, call["id"])
    view = await wait_recording_settled(stack.api, call["id"], within=40)
    assert view["audio_url"]
    async with stack.as_tenant(ADMIN_KEY) as admin:
        assert (await admin.delete(f"/v1/calls/{call['id']}/recording")).status_code == 204
    gone = await stack.api.get(f"/v1/calls/{call['id']}/recording")
    assert (gone.status_code, gone.json()["code"]) == (404, "no_recording")
    root = Path(stack.settings.storage_dir)
    assert not [p for p in root.rglob(f"{call['id']}.*")]  # noqa: ASYNC240 - a test's look
