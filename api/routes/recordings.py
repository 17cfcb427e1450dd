"""GET /v1/calls/{id}/recording: CC's own copy of the call's recording; DELETE (admin) deletes
it now.

OSS answers 307 to a short-lived signed URL (the bucket is private); the local store has
no such links, so the API streams the bytes itself.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from api.deps import CallerDep, StateDep
from api.errors import Problem
from api.openapi import errors
from api.routes.calls import own_call
from storage import StorageError, recording_keys
from store import retention
from store.db import now_ms

router = APIRouter(prefix="/v1/calls", tags=["calls"])
log = logging.getLogger("cc.api.recordings")


@router.get(
    "/{call_id}/recording",
    response_class=Response,
    responses={200: {"content": {"audio/wav": {}}}, 307: {"description": "signed URL"}},
)
async def get_recording(call_id: str, state: StateDep, caller: CallerDep) -> Response:
    """The call's recording: CC's own copy (307 to a short-lived signed URL, or the bytes themselves
    for local storage); 404 `no_recording` when there is none (yet), with why."""
    row = await own_call(state, caller, call_id)
    if not row.audio_url:
        reason = f": {row.recording_error}" if row.recording_error else " (yet)"
        raise Problem(404, "no_recording", f"the call has no recording{reason}")
    store = state.recordings
    key = store.key_of(row.audio_url)
    if key is None:  # written by another backend than the one configured now
        raise Problem(404, "no_recording", "the recording is not in the configured storage")
    url = await store.signed_url(key, state.settings.oss_url_ttl_s)
    if url is not None:
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    stored = await store.head(key)
    if stored is None:
        raise Problem(404, "no_recording", "the recording is missing from storage")
    return StreamingResponse(
        store.read(key),
        media_type=stored.content_type,
        headers={"Content-Length": str(stored.size)},
    )


@router.delete(
    "/{call_id}/recording",
    status_code=204,
    response_class=Response,
    responses=errors(403, s403="`forbidden`: only an `admin` key deletes recordings"),
)
async def delete_recording(call_id: str, state: StateDep, caller: CallerDep) -> Response:
    """Delete the call's recording now (an ``admin`` key): CC's copy and the vendor's link to
    theirs; none is copied for the call afterwards, even one on its way. Idempotent (204 again);
    the call record stays. Who did it is logged (the key's id)."""
    caller.needs("admin", "recordings are deleted")
    now = now_ms()
    reason = f"deleted by admin key {caller.key_id} at {now}"
    deleted = await state.in_store(
        lambda s: retention.delete_recording(s, caller.tenant.id, call_id, now, reason)
    )
    if deleted is None:
        raise Problem(404, "not_found", "no such call")
    store = state.recordings
    # The copy it had, and any a copy still landing may take (that copy deletes itself too).
    keys = set(recording_keys(caller.tenant.id, call_id, deleted.created))
    if deleted.audio_url and (key := store.key_of(deleted.audio_url)) is not None:
        keys.add(key)
    try:
        for key in sorted(keys):
            await store.delete(key)
    except StorageError as exc:
        log.error("recording delete failed tenant=%s call=%s: %s", caller.tenant.id, call_id, exc)
        raise Problem(
            503, "storage_unavailable", "the recording storage did not answer: try again"
        ) from exc
    log.warning(
        "recording deleted tenant=%s call=%s by key=%s had_copy=%s",
        caller.tenant.id,
        call_id,
        caller.key_id,
        deleted.audio_url is not None,
    )
    return Response(status_code=204)
