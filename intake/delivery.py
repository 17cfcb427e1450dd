"""How vendor events reach their CallWorkflow, whichever way they came in.

Webhooks (``POST /webhooks/{channel}``), polled events and reconciliation answers take the
same path: store the raw event in the inbox and commit, then signal the workflow. Each signal
attempt is written down: a signalled event is never signalled again; a failed one waits for
its back-off and ``redeliver_due`` (run by the one InboxWorkflow, however many API processes
there are) tries it again. A signal waits at most ``budget_s``. A webhook is answered once its
events are stored: the API's ``Dispatcher`` signals them in the background and writes the
outcomes of many webhooks down in one transaction (an API process that dies in between leaves
events that were never signalled, which redelivery signals; signalling twice is harmless, the
record's fold is idempotent). An event for a call whose
workflow has finished is a late event: it goes to that call's LateEventsWorkflow, which folds
it into the closed record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from channels.events import CallEvent
from contracts.call import LateEventsInput
from contracts.ids import (
    LATE_EVENT_SIGNAL,
    LATE_EVENTS_WORKFLOW,
    TASK_QUEUE_DEFAULT,
    late_workflow_id,
    vendor_event_signal,
    workflow_id,
)
from contracts.inbox import RedeliveryConfig
from core.metrics import VENDOR_EVENTS
from store import inbox
from store.db import now_ms, session_scope

log = logging.getLogger("cc.intake")


@dataclass(frozen=True)
class DeliveryPolicy:
    """How long one signal may take, and the back-off between a failed event's attempts."""

    task_queue: str = TASK_QUEUE_DEFAULT
    budget_s: float = 1.0
    retry_initial_s: float = 5.0
    retry_max_s: float = 300.0

    @classmethod
    def of(cls, config: RedeliveryConfig) -> DeliveryPolicy:
        return cls(
            task_queue=config.task_queue,
            budget_s=config.budget_s,
            retry_initial_s=config.retry_initial_s,
            retry_max_s=config.retry_max_s,
        )


@dataclass
class _Outcome:
    signalled: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    notes: dict[int, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.signalled or self.failed or self.notes)


def _store(
    engine: Engine,
    channel: str,
    events: list[CallEvent],
    body: bytes,
    content_type: str,
    also: Callable[[Session], None] | None = None,
) -> list[CallEvent]:
    """Store each event (and what ``also`` writes, in the same transaction); return the newly
    stored ones (a duplicate is not signalled again: its first copy is signalled or waiting
    for redelivery)."""
    stored = []
    with session_scope(engine) as session:
        if also is not None:
            also(session)
        for event in events:
            event = event.model_copy(update={"channel": channel})
            inbox_id, duplicate = inbox.store_event(session, channel, event, body, content_type)
            VENDOR_EVENTS.labels(channel, "duplicate" if duplicate else "stored").inc()
            if not duplicate:
                stored.append(event.model_copy(update={"inbox_id": inbox_id}))
    return stored


async def ingest(
    engine: Engine,
    client: Client | None,
    channel: str,
    events: list[CallEvent],
    body: bytes,
    content_type: str,
    policy: DeliveryPolicy | None = None,
    *,
    signal: bool = True,
    also: Callable[[Session], None] | None = None,
) -> list[CallEvent]:
    """Store (committed) then signal within the budget. Returns the newly stored events.

    Returns once stored and the signal attempts are written down, whether or not they
    worked. ``signal=False`` only stores (the caller applies the events itself). ``also``
    writes what must be stored with the events, in their transaction.
    """
    stored = await asyncio.to_thread(_store, engine, channel, events, body, content_type, also)
    if signal:
        await deliver(engine, client, stored, policy or DeliveryPolicy())
    return stored


async def deliver(
    engine: Engine, client: Client | None, events: list[CallEvent], policy: DeliveryPolicy
) -> None:
    """Signal each event (concurrently, each within the budget) and record the outcome."""
    if not events:
        return
    outcome = await _signal_all(client, events, policy)
    await asyncio.to_thread(_record, engine, outcome, policy)


async def _signal_all(
    client: Client | None, events: list[CallEvent], policy: DeliveryPolicy
) -> _Outcome:
    outcome = _Outcome()
    await asyncio.gather(*(_signal_one(client, event, policy, outcome) for event in events))
    return outcome


class Dispatcher:
    """Signals stored events in the background, and writes the outcomes of all the events
    signalled meanwhile down in one transaction (one per API process at a time).

    ``submit`` returns at once; ``drain`` (at shutdown) waits until every submitted event is
    signalled and its outcome written. An outcome that cannot be written (the store is down)
    is logged and dropped: the event stays unsignalled in the inbox, and redelivery signals it
    again later.
    """

    def __init__(self, engine: Engine, policy: DeliveryPolicy, concurrency: int = 32) -> None:
        self._engine, self._policy = engine, policy
        # Signals in flight at once: under overload the rest wait their turn here (stored
        # already) rather than all racing the budget and being signalled twice.
        self._slots = asyncio.Semaphore(concurrency)
        self._pending = _Outcome()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writer: asyncio.Task[None] | None = None

    def submit(self, client: Client | None, events: list[CallEvent]) -> None:
        if events:
            self._spawn(self._signal(client, events))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _signal(self, client: Client | None, events: list[CallEvent]) -> None:
        async with self._slots:
            outcome = await _signal_all(client, events, self._policy)
        self._pending.signalled += outcome.signalled
        self._pending.failed += outcome.failed
        self._pending.notes.update(outcome.notes)
        if self._writer is None:
            self._writer = self._spawn(self._write())

    async def _write(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, _Outcome()
                try:
                    await asyncio.to_thread(_record, self._engine, batch, self._policy)
                except Exception:  # noqa: BLE001 - the store is down: redelivery covers it
                    log.exception(
                        "signal outcomes of %d events not written",
                        len(batch.signalled) + len(batch.failed),
                    )
        finally:
            self._writer = None

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def _signal_one(
    client: Client | None, event: CallEvent, policy: DeliveryPolicy, outcome: _Outcome
) -> None:
    assert event.inbox_id is not None
    if event.cc_call_id is None:
        outcome.notes[event.inbox_id] = "no_call_id"
        return
    if client is None:
        outcome.failed.append(event.inbox_id)
        return
    try:
        handle = client.get_workflow_handle(workflow_id(event.cc_call_id))
        signal = vendor_event_signal(event.kind.value)
        async with asyncio.timeout(policy.budget_s):
            await handle.signal(signal, event)
        outcome.signalled.append(event.inbox_id)
    except RPCError as exc:
        if exc.status is not RPCStatusCode.NOT_FOUND:
            log.warning("signal failed call=%s: %s (will retry)", event.cc_call_id, exc.status)
            outcome.failed.append(event.inbox_id)
            return
        await _signal_late(client, event, policy, outcome)
    except TimeoutError:
        log.warning(
            "signal not confirmed in %.1fs call=%s (will retry)", policy.budget_s, event.cc_call_id
        )
        outcome.failed.append(event.inbox_id)


async def _signal_late(
    client: Client, event: CallEvent, policy: DeliveryPolicy, outcome: _Outcome
) -> None:
    """The call's workflow has finished: its LateEventsWorkflow folds the event in."""
    assert event.inbox_id is not None and event.cc_call_id is not None
    log.info("late event call=%s kind=%s", event.cc_call_id, event.kind.value)
    try:
        start = client.start_workflow(
            LATE_EVENTS_WORKFLOW,
            LateEventsInput(cc_call_id=event.cc_call_id),
            id=late_workflow_id(event.cc_call_id),
            task_queue=policy.task_queue,
            start_signal=LATE_EVENT_SIGNAL,
            start_signal_args=[event],
        )
        async with asyncio.timeout(policy.budget_s):
            await start
        outcome.signalled.append(event.inbox_id)
    except (RPCError, TimeoutError) as exc:
        log.warning(
            "late event not signalled call=%s: %s", event.cc_call_id, exc.__class__.__name__
        )
        outcome.failed.append(event.inbox_id)


def _record(engine: Engine, outcome: _Outcome, policy: DeliveryPolicy) -> None:
    now = now_ms()
    with session_scope(engine) as session:
        inbox.mark_signalled(session, outcome.signalled, now)
        inbox.mark_signal_failed(
            session, outcome.failed, now, policy.retry_initial_s, policy.retry_max_s
        )
        for inbox_id, note in outcome.notes.items():
            inbox.note_unapplied(session, inbox_id, note)


async def redeliver_due(
    engine: Engine, client: Client, policy: DeliveryPolicy, unsent_after_s: float
) -> int:
    """Signal every event whose earlier signal failed (back-off over) or never happened."""
    now = now_ms()

    def due() -> list[CallEvent]:
        with Session(engine) as session:
            return inbox.due_for_redelivery(session, now, now - int(unsent_after_s * 1000))

    events = await asyncio.to_thread(due)
    await deliver(engine, client, events, policy)
    return len(events)
