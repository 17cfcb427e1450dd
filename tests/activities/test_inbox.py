"""activities/inbox.py ``redeliver_inbox`` through ``ActivityEnvironment``: the events whose
signal never reached their call's workflow are signalled again, once, and no other."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.inbox import InboxActivities
from channels.events import CallEvent
from contracts.ids import vendor_event_signal, workflow_id
from contracts.inbox import RedeliveryConfig
from core.types import EventKind
from store import inbox
from store.db import now_ms, session_scope
from store.models import VendorEvent
from tests.activities.seat_support import FakeTemporal
from tests.notify.support import new_call, sqlite_store


def stored(engine: Engine, kind: EventKind, at: int) -> int:
    event = CallEvent(cc_call_id="c1", vendor_call_id="V1", kind=kind, at=at,
                      dedupe_key=f"{kind}-{at}", channel="e9")  # fmt: skip
    with session_scope(engine) as session:
        return inbox.store_event(session, "e9", event, b"{}", "application/json")[0]


async def test_only_the_events_never_signalled_are_signalled_again_once(tmp_path: Path) -> None:
    engine = sqlite_store(tmp_path)
    new_call(engine, "c1")
    at = now_ms()
    reached = stored(engine, EventKind.A_DIALING, at)
    lost = stored(engine, EventKind.BRIDGED, at + 1)
    with session_scope(engine) as session:
        inbox.mark_signalled(session, [reached], at)  # its webhook's own signal got through
    temporal = FakeTemporal()
    env = ActivityEnvironment(client=cast(Client, temporal))
    redeliver = InboxActivities(engine).redeliver_inbox
    config = RedeliveryConfig(unsent_after_s=0)
    assert await env.run(redeliver, config) == 1
    [(to, signal, event)] = temporal.signals
    assert (to, signal) == (workflow_id("c1"), vendor_event_signal(EventKind.BRIDGED.value))
    assert (event.kind, event.inbox_id) == (EventKind.BRIDGED, lost)
    with Session(engine) as session:
        assert (row := session.get(VendorEvent, lost)) is not None and row.signalled_at
    assert await env.run(redeliver, config) == 0  # signalled: never again
    assert len(temporal.signals) == 1
