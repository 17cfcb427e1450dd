"""The recording activity: copy a vendor's recording into CC's own storage.

Vendors publish recordings late and expire them, so the copy is made once the call has
closed and retried by the workflow's RetryPolicy while the vendor still answers 404
(``RecordingNotReady``), until the deadline in settings. Whatever else goes wrong is either
worth another try (vendor or storage hiccup, a short or mismatched copy) or final (the link
is expired or forbidden); the error ``type`` says which. Only audio is kept: an answer
without a media type, ``application/octet-stream`` or any type storage cannot serve back is
refused before it is read. Where a vendor-reported URL may lead, the size cap and the deadline
of the download are the channel's (``channels/http.RecordingSource``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from channels.errors import ChannelError, RecordingNotReady, RecordingUnavailable
from channels.protocols import Channel
from contracts.call import CopyRecordingInput, CopyRecordingResult
from contracts.errors import NON_RETRYABLE_RECORDING_ERRORS as NON_RETRYABLE
from contracts.errors import RECORDING_DELETED as DELETED
from contracts.errors import RECORDING_INCOMPLETE as INCOMPLETE
from contracts.errors import RECORDING_MISMATCH as MISMATCH
from contracts.errors import RECORDING_NOT_READY as NOT_READY
from contracts.errors import RECORDING_STORE_FAILED as STORE_FAILED
from contracts.errors import RECORDING_UNAVAILABLE as UNAVAILABLE
from contracts.errors import RECORDING_VENDOR_ERROR as VENDOR_ERROR
from contracts.errors import UNKNOWN_CHANNEL
from storage import (
    RecordingStore,
    StorageError,
    canonical_content_type,
    extension_for,
    is_supported,
    recording_key,
)

log = logging.getLogger("cc.activities.recordings")

HEARTBEAT_EVERY_S = 10.0


# Whether the call's recording was deleted (store.retention.recording_deleted), by call id.
DeletedCheck = Callable[[str], Awaitable[bool]]


async def _never_deleted(cc_call_id: str) -> bool:
    return False


class RecordingActivities:
    def __init__(
        self,
        channels: dict[str, Channel],
        store: RecordingStore,
        deleted: DeletedCheck = _never_deleted,
    ) -> None:
        self._channels = channels
        self._store = store
        self._deleted = deleted

    @activity.defn
    async def copy_recording(self, inp: CopyRecordingInput) -> CopyRecordingResult:
        channel = self._channels.get(inp.channel)
        if channel is None:
            raise _failed(inp, f"unknown channel {inp.channel}", UNKNOWN_CHANNEL)
        if await self._deleted(inp.cc_call_id):
            raise _failed(inp, "the call's recording was deleted", DELETED)
        workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="cc-recording-"))
        try:
            spooled = workdir / "recording"
            size, content_type = await self._download(channel, inp, spooled)
            key = recording_key(
                inp.tenant, inp.cc_call_id, inp.created, extension_for(content_type)
            )
            try:
                async with _heartbeating():  # a big upload outlasts the heartbeat timeout
                    stored = await self._store.put(key, spooled, content_type)
            except StorageError as exc:
                raise _failed(inp, f"storing {key} failed: {exc}", STORE_FAILED) from exc
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        if await self._deleted(inp.cc_call_id):
            # Deleted while this copy was made: the deletion marked the call before it deleted
            # the objects, so one of the two always sees the other and no copy is left behind.
            await self._store.delete(key)
            raise _failed(inp, "the call's recording was deleted while it was copied", DELETED)
        if stored.size != size or extension_for(stored.content_type) != extension_for(content_type):
            raise _failed(
                inp,
                f"stored {stored.size} B {stored.content_type}, downloaded {size} B {content_type}",
                MISMATCH,
            )
        log.info(
            "recording copied tenant=%s call=%s key=%s size=%d",
            inp.tenant,
            inp.cc_call_id,
            key,
            size,
        )
        return CopyRecordingResult(audio_url=stored.url, size=size, content_type=content_type)

    async def _download(
        self, channel: Channel, inp: CopyRecordingInput, target: Path
    ) -> tuple[int, str]:
        """Stream the vendor's file to ``target``; returns its size and canonical media type."""
        try:
            async with channel.open_recording(inp.url) as recording:
                content_type = canonical_content_type(recording.content_type)
                if not is_supported(content_type):  # an error page, or audio we cannot serve
                    raise RecordingUnavailable(f"unsupported recording type {content_type!r}")
                size = await _spool(recording.chunks, target)
                announced = recording.length
        except RecordingNotReady as exc:
            # Expected for a while after every hang-up: not alert-worthy on its own.
            log.info(
                "recording not ready tenant=%s call=%s attempt=%d",
                inp.tenant,
                inp.cc_call_id,
                activity.info().attempt,
            )
            # Benign: the SDK logs its retry at DEBUG, so this INFO line is the one a log shows
            # (no traceback for a wait every recorded call goes through).
            raise ApplicationError(
                str(exc), type=NOT_READY, category=ApplicationErrorCategory.BENIGN
            ) from exc
        except RecordingUnavailable as exc:
            raise _failed(inp, str(exc), UNAVAILABLE, final=True) from exc
        except ChannelError as exc:
            raise _failed(inp, str(exc), VENDOR_ERROR) from exc
        if size == 0 or (announced is not None and announced != size):
            raise _failed(inp, f"downloaded {size} B of {announced} B", INCOMPLETE)
        return size, content_type


@contextlib.asynccontextmanager
async def _heartbeating() -> AsyncIterator[None]:
    async def beat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY_S)
            activity.heartbeat()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


async def _spool(chunks: AsyncIterator[bytes], target: Path) -> int:
    """Write the chunks to ``target`` as they arrive (never the whole file in memory)."""
    handle: BinaryIO = await asyncio.to_thread(target.open, "wb")
    size = 0
    try:
        async for chunk in chunks:
            await asyncio.to_thread(handle.write, chunk)
            size += len(chunk)
            activity.heartbeat(size)
    finally:
        await asyncio.to_thread(handle.close)
    return size


def _failed(
    inp: CopyRecordingInput, reason: str, kind: str, final: bool = False
) -> ApplicationError:
    """Log an alert-worthy line (tenant and call id, never numbers) and build the error."""
    level = logging.ERROR if final or kind in NON_RETRYABLE else logging.WARNING
    level = logging.INFO if kind == DELETED else level  # what an admin or retention asked
    log.log(
        level,
        "recording copy failed tenant=%s call=%s channel=%s type=%s: %s",
        inp.tenant,
        inp.cc_call_id,
        inp.channel,
        kind,
        reason,
    )
    return ApplicationError(
        reason,
        type=kind,
        non_retryable=final or kind in NON_RETRYABLE,
        category=ApplicationErrorCategory.BENIGN
        if kind == DELETED
        else ApplicationErrorCategory.UNSPECIFIED,
    )
