"""POST /webhooks/{channel}: verify, store raw and commit, acknowledge, then signal; and
POST /webhooks/{channel}/inbound: a vendor asking where a customer's 400-number call goes."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.deps import AppState, StateDep, TemporalDep
from api.errors import Problem
from api.inbound import answer_inbound
from api.openapi import errors
from channels.errors import InvalidSignature, MalformedEvent
from channels.protocols import InboundChannel, WebhookChannel
from core.metrics import VENDOR_EVENTS
from intake.delivery import ingest

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
log = logging.getLogger("cc.webhooks")


def _public_url(state: AppState, request: Request) -> str:
    """Vendors sign the URL they were given, i.e. the public one, not what a proxy forwards."""
    public_url = state.settings.public_base_url.rstrip("/") + request.url.path
    if request.url.query:
        public_url += "?" + request.url.query
    return public_url


async def _verified(channel: WebhookChannel, state: AppState, request: Request) -> bytes:
    """The request's body once its vendor signature verifies; 401 otherwise."""
    body = await request.body()
    try:
        channel.verify_webhook(_public_url(state, request), request.headers, body)
    except InvalidSignature as exc:
        log.warning("rejected webhook channel=%s: %s", channel.name, exc)
        VENDOR_EVENTS.labels(channel.name, "bad_signature").inc()
        raise Problem(401, "invalid_signature", "webhook signature does not verify") from exc
    return body


@router.post(
    "/{channel_name}/inbound",
    responses=errors(400, 401, s401="`invalid_signature`: the vendor signature does not verify"),
)
async def inbound_call(
    channel_name: str, request: Request, state: StateDep, temporal: TemporalDep
) -> Response:
    """A vendor asking where a customer's call to a 400 number goes (VENDORS.md)."""
    channel = state.channels.get(channel_name)
    if not isinstance(channel, InboundChannel):
        raise Problem(404, "not_found", "no inbound calls on this channel")
    body = await _verified(channel, state, request)
    content_type = request.headers.get("content-type", "")
    try:
        call = channel.parse_inbound(body, content_type)
    except MalformedEvent as exc:
        VENDOR_EVENTS.labels(channel_name, "malformed").inc()
        raise Problem(400, "malformed_event", str(exc)) from exc
    answer = await answer_inbound(state, temporal, channel_name, call, body, content_type)
    VENDOR_EVENTS.labels(channel_name, f"inbound_{answer.action.value}").inc()
    reply, media_type = channel.inbound_reply(answer, _public_url(state, request))
    return Response(reply, media_type=media_type)


@router.post(
    "/{channel_name}",
    responses=errors(400, 401, s401="`invalid_signature`: the vendor signature does not verify"),
)
async def vendor_webhook(channel_name: str, request: Request, state: StateDep) -> JSONResponse:
    """A vendor's event, in its own payload and signature scheme (VENDORS.md). 2xx only once the raw
    event is stored; an unknown call id is stored and reported, never a 5xx."""
    channel = state.channels.get(channel_name)
    if not isinstance(channel, WebhookChannel):  # unknown, or polled: no webhooks there
        raise Problem(404, "not_found", "no such channel")
    body = await _verified(channel, state, request)
    content_type = request.headers.get("content-type", "")
    try:
        events = channel.parse_webhook(body, content_type)
    except MalformedEvent as exc:
        VENDOR_EVENTS.labels(channel_name, "malformed").inc()
        raise Problem(400, "malformed_event", str(exc)) from exc

    # Committed to the inbox before we answer 2xx; then signalled in the background (the
    # vendor's deadline, e9: 3 s, never waits on Temporal). A signal that fails, or an API
    # process that dies first, leaves the event to the InboxWorkflow's redelivery.
    stored = await ingest(
        state.engine, None, channel_name, events, body, content_type, signal=False
    )
    state.dispatcher.submit(state.temporal, stored)
    return JSONResponse(channel.webhook_ack())
