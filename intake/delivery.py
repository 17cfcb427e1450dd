"""How vendor events reach their CallWorkflow, whichever way they came in.

Webhooks (``POST /webhooks/{channel}``) and polled events (the poll activity) take the same
path: store the raw event in the inbox and commit, then signal the workflow. A signal that
fails for a passing reason (Temporal briefly unreachable) leaves the event pending in the
inbox and ``redeliver_forever`` signals it again. Events for calls with no running workflow
are kept, with a note saying why.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from channels.base import CallEvent
from core.metrics import VENDOR_EVENTS
from store import inbox
from store.db import now_ms, session_scope
from workflows.types import VENDOR_EVENT_SIGNAL, workflow_id

log = logging.getLogger("cc.intake")


def _store(
    engine: Engine, channel: str, events: list[CallEvent], body: bytes, content_type: str
) -> list[CallEvent]:
    stored = []
    with session_scope(engine) as session:
        for event in events:
            inbox_id, duplicate = inbox.store_event(session, channel, event, body, content_type)
            VENDOR_EVENTS.labels(channel, "duplicate" if duplicate else "stored").inc()
            stored.append(event.model_copy(update={"inbox_id": inbox_id}))
    return stored


async def ingest(
    engine: Engine,
    client: Client | None,
    channel: str,
    events: list[CallEvent],
    body: bytes,
    content_type: str,
) -> None:
    """Store (committed) then signal. Returns once stored, whether or not signalling worked."""
    stored = await asyncio.to_thread(_store, engine, channel, events, body, content_type)
    for event in stored:
        await deliver(engine, client, event)


async def deliver(engine: Engine, client: Client | None, event: CallEvent) -> bool:
    """Signal the event to its workflow. True when delivered (or never deliverable)."""
    if event.cc_call_id is None:
        await _note(engine, event, "no_call_id")
        return True
    if client is None:
        return False
    try:
        handle = client.get_workflow_handle(workflow_id(event.cc_call_id))
        await handle.signal(VENDOR_EVENT_SIGNAL, event)
        return True
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            log.warning("event for a call with no running workflow call=%s kind=%s",
                        event.cc_call_id, event.kind.value)  # fmt: skip
            await _note(engine, event, "call_not_running")
            return True
        log.warning("signal failed call=%s: %s (will retry)", event.cc_call_id, exc.status)
        return False


async def _note(engine: Engine, event: CallEvent, note: str) -> None:
    if event.inbox_id is not None:
        inbox_id = event.inbox_id

        def write() -> None:
            with session_scope(engine) as session:
                inbox.note_unapplied(session, inbox_id, note)

        await asyncio.to_thread(write)


async def redeliver_pending(engine: Engine, client: Client | None, older_than_s: float) -> int:
    cutoff = now_ms() - int(older_than_s * 1000)

    def pending() -> list[CallEvent]:
        with Session(engine) as session:
            return inbox.pending_events(session, older_than_ms=cutoff)

    delivered = 0
    for event in await asyncio.to_thread(pending):
        delivered += await deliver(engine, client, event)
    return delivered
