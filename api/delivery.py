"""Getting stored vendor events to their CallWorkflow, now and, if that fails, later.

The webhook route stores first, then signals. A signal that fails for a passing reason
(Temporal briefly unreachable) leaves the event pending in the inbox; ``redeliver_forever``
signals it again. Events for calls with no running workflow are noted and kept.
"""

from __future__ import annotations

import asyncio
import logging

from sqlmodel import Session
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.deps import AppState
from channels.base import CallEvent
from store import inbox
from store.db import now_ms
from workflows.call import CallWorkflow
from workflows.types import workflow_id

log = logging.getLogger("cc.delivery")


async def deliver(state: AppState, temporal: Client | None, event: CallEvent) -> bool:
    """Signal the event to its workflow. True when delivered (or never deliverable)."""
    if event.cc_call_id is None:
        await _note(state, event, "no_call_id")
        return True
    if temporal is None:
        return False
    try:
        handle = temporal.get_workflow_handle(workflow_id(event.cc_call_id))
        await handle.signal(CallWorkflow.vendor_event, event)
        return True
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            log.warning("event for a call with no running workflow call=%s kind=%s",
                        event.cc_call_id, event.kind.value)  # fmt: skip
            await _note(state, event, "call_not_running")
            return True
        log.warning("signal failed call=%s: %s (will retry)", event.cc_call_id, exc.status)
        return False


async def _note(state: AppState, event: CallEvent, note: str) -> None:
    if event.inbox_id is not None:
        inbox_id = event.inbox_id
        await state.in_store(lambda s: inbox.note_unapplied(s, inbox_id, note))


async def redeliver_pending(state: AppState) -> int:
    cutoff = now_ms() - int(state.settings.inbox_redeliver_after_s * 1000)

    def pending(session: Session) -> list[CallEvent]:
        return inbox.pending_events(session, older_than_ms=cutoff)

    events = await state.in_store(pending)
    delivered = 0
    for event in events:
        delivered += await deliver(state, state.temporal, event)
    return delivered


async def redeliver_forever(state: AppState, every_s: float = 5.0) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await redeliver_pending(state)
        except Exception:  # noqa: BLE001 - the loop must outlive a bad round
            log.exception("inbox redelivery round failed")
