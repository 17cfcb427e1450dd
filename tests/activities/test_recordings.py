"""copy_recording against the real vendor simulators on real ports: each vendor's own way of
serving a recording, its late publication (404 → retry), expiry, and the stored-size check."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment

from activities.recordings import (
    DELETED,
    MISMATCH,
    NOT_READY,
    UNAVAILABLE,
    CopyRecordingInput,
    RecordingActivities,
    recording_key,
)
from channels.events import PlaceCallRequest, SeatContext, SeatLogin
from channels.protocols import Channel, PolledChannel, Recording, WebhookChannel
from channels.registry import CHANNELS, Settings, build_channels
from core.types import EventKind
from simulators.common import tone_wav
from simulators.hw_events import alaw_wav
from simulators.registry import simulator_app
from storage import LocalStore, StoredObject
from tests.support import ServerThread, free_port, wait_for

CREATED = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC
# hw records only calls that talked 3 s or more (VENDORS.md).
TIMING = {"ring_ms": 100, "talk_ms": 3100, "no_answer_ms": 300, "recording_delay_ms": 0}
NEVER_MS = 3_600_000  # a recording this late is, for a test, never published


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    base_urls = {f"{name}_base_url": f"http://127.0.0.1:{free_port()}" for name in CHANNELS}
    # Webhooks go to a closed port: these tests read the events from the simulators' logs.
    dead = f"http://127.0.0.1:{free_port()}"
    # The simulators listen on 127.0.0.1: the egress policy must allow it (make run does).
    settings = Settings(
        **base_urls, public_base_url=dead, sim_retry_scale=0.01, egress_allow=["127.0.0.1"]
    )
    servers = [
        ServerThread(
            simulator_app(name, settings),
            settings.port_of(spec.base_url(settings)),
        ).start()
        for name, spec in CHANNELS.items()
    ]
    yield settings
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
async def channels(settings: Settings) -> AsyncIterator[dict[str, Channel]]:
    built = build_channels(settings)
    yield built
    for channel in built.values():
        await channel.aclose()


@pytest.fixture
async def sims(settings: Settings) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    clients = {n: httpx.AsyncClient(base_url=s.base_url(settings)) for n, s in CHANNELS.items()}
    for client in clients.values():
        await client.put("/_sim/timing", json=TIMING)
    yield clients
    for client in clients.values():
        await client.aclose()


SEATS = itertools.count(10001)  # a fresh hw simulator seat for each call


async def recorded_call(channel: Channel, sim: httpx.AsyncClient) -> tuple[str, str]:
    """Place a recorded call and return (cc call id, the recording URL its events carry)."""
    cc_call_id = uuid.uuid4().hex[:16]
    polled = channel if isinstance(channel, PolledChannel) else None
    seat = str(next(SEATS))
    login = SeatLogin(seat=seat, password="", phonenum="+8613800000001")
    if polled is not None:  # a seat signed in with the agent's phone places the call
        await polled.sign_in(login)
    await channel.place_call(
        PlaceCallRequest(cc_call_id=cc_call_id, caller="+8613800000001",
                         called="+8613900000002", display_to_a="+8610800000001",
                         display_to_b="+8613800000001", agent=seat if polled else "a1",
                         max_duration_s=60)
    )  # fmt: skip
    if polled is not None:
        context, urls = SeatContext(), []

        async def ended() -> bool:  # hw publishes a recording once its call has ended
            nonlocal context
            seen = await polled.poll_seat(login, context)
            context = seen.context
            urls.extend(e.recording_url for e in seen.events if e.recording_url)
            return any(e.kind is EventKind.HANGUP for e in seen.events)

        await wait_for(ended, 20, "the hw call to end")
        url = urls[0]
    else:
        pushed = cast(WebhookChannel, channel)
        url = await wait_for(lambda: _pushed_url(pushed, sim, cc_call_id), 20, "hangup event")
    return cc_call_id, url


async def _pushed_url(
    channel: WebhookChannel, sim: httpx.AsyncClient, cc_call_id: str
) -> str | None:
    for sent in (await sim.get("/_sim/log")).json()["events"]:
        if cc_call_id not in sent["body"]:
            continue
        json_body = sent["body"].startswith("{")
        kind = "application/json" if json_body else "application/x-www-form-urlencoded"
        for event in channel.parse_webhook(sent["body"].encode(), kind):
            if event.recording_url:
                return event.recording_url
    return None


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def copy_input(channel: str, cc_call_id: str, url: str) -> CopyRecordingInput:
    return CopyRecordingInput(channel=channel, tenant="tenant-a", cc_call_id=cc_call_id,
                              created=CREATED, url=url)  # fmt: skip


@pytest.mark.parametrize("name", list(CHANNELS))
async def test_each_vendors_recording_is_copied_byte_for_byte(
    name: str, channels: dict[str, Channel], sims: dict[str, httpx.AsyncClient], tmp_path: Path
) -> None:
    cc_call_id, url = await recorded_call(channels[name], sims[name])
    store = LocalStore(tmp_path)
    result = await ActivityEnvironment().run(
        RecordingActivities(channels, store).copy_recording, copy_input(name, cc_call_id, url)
    )
    key = f"tenant-a/2026/01/01/{cc_call_id}.wav"
    assert result.audio_url == f"local:{key}"
    audio = alaw_wav() if name == "hw" else tone_wav()  # hw records A-law, 8 kHz
    assert (result.size, result.content_type) == (len(audio), "audio/wav")
    assert (tmp_path / key).read_bytes() == audio  # the vendor's exact bytes
    requests = (await sims[name].get("/_sim/log")).json()["requests"]
    if name == "jy":  # HTTP Basic on the recording request
        [fetch] = [r for r in requests if "/Recordings/" in r["path"]]
        assert fetch["headers"]["authorization"].startswith("Basic ")
    if name == "hw":  # recordfile, asked with the seat's session guid
        fetches = [r for r in requests if "/recordfile/" in r["path"]]
        assert fetches and fetches[-1]["headers"].get("guid")


@pytest.mark.parametrize("name", list(CHANNELS))
async def test_not_ready_is_retryable_then_the_copy_succeeds(
    name: str, channels: dict[str, Channel], sims: dict[str, httpx.AsyncClient], tmp_path: Path
) -> None:
    await sims[name].put("/_sim/timing", json={"recording_delay_ms": NEVER_MS})
    cc_call_id, url = await recorded_call(channels[name], sims[name])
    activities = RecordingActivities(channels, LocalStore(tmp_path))
    inp = copy_input(name, cc_call_id, url)
    with pytest.raises(ApplicationError) as first:
        await ActivityEnvironment().run(activities.copy_recording, inp)
    assert first.value.type == NOT_READY and not first.value.non_retryable
    assert first.value.category is ApplicationErrorCategory.BENIGN  # retried without a traceback
    assert not stored_files(tmp_path)  # nothing half-stored
    await sims[name].put("/_sim/timing", json={"recording_delay_ms": 0})  # published now
    result = await ActivityEnvironment().run(activities.copy_recording, inp)
    assert result.size == len(alaw_wav() if name == "hw" else tone_wav())


# The vendors whose links expire (hw's recordfile is asked with the seat's session instead).
@pytest.mark.parametrize("name", ["e9"])
async def test_an_expired_link_fails_for_good(
    name: str, channels: dict[str, Channel], sims: dict[str, httpx.AsyncClient], tmp_path: Path
) -> None:
    await sims[name].put("/_sim/timing", json={"recording_ttl_ms": 0})
    try:
        cc_call_id, url = await recorded_call(channels[name], sims[name])
        activities = RecordingActivities(channels, LocalStore(tmp_path))

        async def expired() -> bool:
            try:
                inp = copy_input(name, cc_call_id, url)
                await ActivityEnvironment().run(activities.copy_recording, inp)
            except ApplicationError as exc:
                return exc.type == UNAVAILABLE and exc.non_retryable
            return False

        assert await wait_for(expired, 5, "the link to expire")
    finally:
        await sims[name].put("/_sim/timing", json={"recording_ttl_ms": NEVER_MS * 10})


class ShortStore(LocalStore):
    """A store that reports one byte fewer than it was given, as a truncated upload would."""

    async def put(self, key: str, source: Path, content_type: str) -> StoredObject:
        stored = await super().put(key, source, content_type)
        return StoredObject(stored.key, stored.size - 1, stored.content_type, stored.url)


async def test_a_stored_size_that_differs_is_a_retryable_mismatch(
    channels: dict[str, Channel], sims: dict[str, httpx.AsyncClient], tmp_path: Path
) -> None:
    cc_call_id, url = await recorded_call(channels["e9"], sims["e9"])
    activities = RecordingActivities(channels, ShortStore(tmp_path))
    inp = copy_input("e9", cc_call_id, url)
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(activities.copy_recording, inp)
    assert failed.value.type == MISMATCH and not failed.value.non_retryable


def test_key_layout_is_tenant_and_utc_date_of_creation() -> None:
    # 23:59:59.999 UTC on 2025-12-31 is already 2026-01-01 in Beijing: the key uses UTC.
    assert recording_key("t1", "c1", CREATED - 1, "wav") == "t1/2025/12/31/c1.wav"
    assert recording_key("a/../b", "x y", CREATED, "mp3") == "a_.._b/2026/01/01/x_y.mp3"
    assert json.dumps(copy_input("e9", "c", "u").model_dump())  # serialisable for Temporal


class _ServesAPage:
    """A vendor whose recording link answers 200 with an HTML error page."""

    @contextlib.asynccontextmanager
    async def open_recording(self, url: str) -> AsyncIterator[Recording]:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"<html>session expired</html>"

        yield Recording(content_type="text/html; charset=utf-8", chunks=chunks())


async def test_a_page_instead_of_audio_fails_for_good_and_stores_nothing(tmp_path: Path) -> None:
    vendor = cast(Channel, _ServesAPage())
    activities = RecordingActivities({"e9": vendor}, LocalStore(tmp_path))
    inp = CopyRecordingInput(channel="e9", tenant="t", cc_call_id="c1", created=CREATED,
                             url="http://vendor.example/rec/c1")  # fmt: skip
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(activities.copy_recording, inp)
    assert failed.value.type == UNAVAILABLE and failed.value.non_retryable
    assert "text/html" in str(failed.value)
    stored = await asyncio.to_thread(lambda: [p for p in tmp_path.rglob("*") if p.is_file()])
    assert stored == []


async def test_a_recording_deleted_before_its_copy_is_never_downloaded(
    channels: dict[str, Channel], sims: dict[str, httpx.AsyncClient], tmp_path: Path
) -> None:
    cc_call_id, url = await recorded_call(channels["e9"], sims["e9"])
    asked: list[str] = []

    async def deleted(call: str) -> bool:
        asked.append(call)
        return True

    activities = RecordingActivities(channels, LocalStore(tmp_path), deleted)
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(
            activities.copy_recording, copy_input("e9", cc_call_id, url)
        )
    assert failed.value.type == DELETED and failed.value.non_retryable
    assert asked == [cc_call_id] and not stored_files(tmp_path)


async def test_a_recording_deleted_while_it_is_copied_deletes_the_copy(
    channels: dict[str, Channel], sims: dict[str, httpx.AsyncClient], tmp_path: Path
) -> None:
    """The admin's DELETE lands between the check before the download and the upload: the
    copy sees the mark after its upload and takes its object away itself."""
    cc_call_id, url = await recorded_call(channels["e9"], sims["e9"])
    answers = iter([False, True])  # not deleted when the copy starts; deleted when it ends

    async def deleted(call: str) -> bool:
        return next(answers)

    activities = RecordingActivities(channels, LocalStore(tmp_path), deleted)
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(
            activities.copy_recording, copy_input("e9", cc_call_id, url)
        )
    assert failed.value.type == DELETED and failed.value.non_retryable
    assert not stored_files(tmp_path)
