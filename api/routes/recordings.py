"""GET /v1/calls/{id}/recording: CC's own copy of the call's recording.

OSS answers 307 to a short-lived signed URL (the bucket is private); the local store has
no such links, so the API streams the bytes itself.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from api.deps import CallerDep, StateDep
from api.errors import Problem
from api.routes.calls import own_call

router = APIRouter(prefix="/v1/calls", tags=["calls"])


@router.get(
    "/{call_id}/recording",
    response_class=Response,
    responses={200: {"content": {"audio/wav": {}}}, 307: {"description": "signed URL"}},
)
async def get_recording(call_id: str, state: StateDep, caller: CallerDep) -> Response:
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
