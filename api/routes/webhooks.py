"""POST /webhooks/{channel}: verify, store raw and commit, acknowledge, then signal."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import StateDep
from api.errors import Problem
from channels.base import InvalidSignature, MalformedEvent, WebhookChannel
from core.metrics import VENDOR_EVENTS
from intake.delivery import ingest

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
log = logging.getLogger("cc.webhooks")


@router.post("/{channel_name}")
async def vendor_webhook(channel_name: str, request: Request, state: StateDep) -> JSONResponse:
    channel = state.channels.get(channel_name)
    if not isinstance(channel, WebhookChannel):  # unknown, or polled: no webhooks there
        raise Problem(404, "not_found", "no such channel")
    body = await request.body()
    # Vendors sign the URL they were given, i.e. the public one, not what a proxy forwards.
    public_url = state.settings.public_base_url.rstrip("/") + request.url.path
    if request.url.query:
        public_url += "?" + request.url.query
    content_type = request.headers.get("content-type", "")
    try:
        channel.verify_webhook(public_url, request.headers, body)
    except InvalidSignature as exc:
        log.warning("rejected webhook channel=%s: %s", channel_name, exc)
        VENDOR_EVENTS.labels(channel_name, "bad_signature").inc()
        raise Problem(401, "invalid_signature", "webhook signature does not verify") from exc
    try:
        events = channel.parse_webhook(body, content_type)
    except MalformedEvent as exc:
        VENDOR_EVENTS.labels(channel_name, "malformed").inc()
        raise Problem(400, "malformed_event", str(exc)) from exc

    # Committed to the inbox before we answer 2xx; then signalled in the background (the
    # vendor's deadline, e9: 3 s, never waits on Temporal). A signal that fails, or an API
    # process that dies first, leaves the event to the InboxWorkflow's redelivery.
    stored = await ingest(state.engine, None, channel_name, events, body, content_type,
                          signal=False)  # fmt: skip
    state.dispatcher.submit(state.temporal, stored)
    return JSONResponse(channel.webhook_ack())
