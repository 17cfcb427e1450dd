"""Inbox delivery on a real database with a stand-in Temporal client: every signal attempt
is written down, only failed ones are tried again, a slow Temporal never holds the vendor's
answer past the budget, and an event for a finished workflow goes to its late workflow."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from channels.events import CallEvent
from core.types import EventKind
from intake import delivery
from intake.delivery import DeliveryPolicy, Dispatcher, ingest, redeliver_due
from store.db import make_engine
from store.migrate import upgrade
from store.models import VendorEvent
from tests.support import wait_for

POLICY = DeliveryPolicy(budget_s=0.2, retry_initial_s=5, retry_max_s=60)


class FakeTemporal:
    """Signals succeed, fail, hang or find no running workflow, as told."""

    def __init__(self) -> None:
        self.mode = "ok"  # ok | unavailable | slow | not_found
        self.signals: list[tuple[str, str]] = []
        self.late_starts: list[str] = []

    def get_workflow_handle(self, workflow_id: str) -> Any:
        fake = self

        class Handle:
            async def signal(self, name: str, event: CallEvent) -> None:
                if fake.mode == "slow":
                    await asyncio.sleep(30)
                if fake.mode == "unavailable":
                    raise RPCError("down", RPCStatusCode.UNAVAILABLE, b"")
                if fake.mode == "not_found":
                    raise RPCError("gone", RPCStatusCode.NOT_FOUND, b"")
                fake.signals.append((workflow_id, event.dedupe_key))

        return Handle()

    async def start_workflow(self, workflow: str, arg: Any, *, id: str, **kw: Any) -> None:
        self.late_starts.append(id)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'cc.db'}"
    upgrade(url)
    return make_engine(url)


def event(key: str, call: str | None = "c1") -> CallEvent:
    return CallEvent(cc_call_id=call, kind=EventKind.BRIDGED, at=1, dedupe_key=key)


def rows(engine: Engine) -> dict[str, VendorEvent]:
    with Session(engine) as session:
        return {r.dedupe_key: r for r in session.exec(select(VendorEvent)).all()}


async def test_a_signalled_event_is_never_signalled_again(engine: Engine) -> None:
    temporal = FakeTemporal()
    client = cast(Client, temporal)
    await ingest(engine, client, "e9", [event("a")], b"{}", "json", POLICY)
    await ingest(engine, client, "e9", [event("a")], b"{}", "json", POLICY)  # vendor retry
    assert await redeliver_due(engine, client, POLICY, unsent_after_s=0) == 0
    assert temporal.signals == [("call-c1", "a")]
    assert rows(engine)["a"].signalled_at is not None


async def test_a_failed_signal_is_retried_after_its_back_off_only(engine: Engine) -> None:
    temporal = FakeTemporal()
    client = cast(Client, temporal)
    temporal.mode = "unavailable"
    await ingest(engine, client, "e9", [event("a")], b"{}", "json", POLICY)
    row = rows(engine)["a"]
    assert (row.signal_attempts, row.signalled_at) == (1, None)
    assert row.next_attempt_at is not None and row.next_attempt_at - row.received >= 4_000
    temporal.mode = "ok"
    assert await redeliver_due(engine, client, POLICY, unsent_after_s=0) == 0  # not yet due
    assert temporal.signals == []


async def test_a_slow_temporal_never_holds_the_vendors_answer(engine: Engine) -> None:
    temporal = FakeTemporal()
    temporal.mode = "slow"
    stored = await asyncio.wait_for(
        ingest(engine, cast(Client, temporal), "e9", [event("a")], b"{}", "json", POLICY), 5
    )
    assert [e.dedupe_key for e in stored] == ["a"]  # stored, answered, signalled later
    assert rows(engine)["a"].signal_attempts == 1


async def test_an_event_for_a_finished_workflow_goes_to_its_late_workflow(engine: Engine) -> None:
    temporal = FakeTemporal()
    temporal.mode = "not_found"
    await ingest(engine, cast(Client, temporal), "e9", [event("a")], b"{}", "json", POLICY)
    assert temporal.late_starts == ["late-c1"]
    assert rows(engine)["a"].signalled_at is not None


async def test_an_event_without_a_call_id_is_noted_and_never_retried(engine: Engine) -> None:
    temporal = FakeTemporal()
    client = cast(Client, temporal)
    await ingest(engine, client, "e9", [event("a", call=None)], b"{}", "json", POLICY)
    assert rows(engine)["a"].note == "no_call_id"
    assert await redeliver_due(engine, client, POLICY, unsent_after_s=0) == 0


async def test_an_event_never_signalled_is_redelivered(engine: Engine) -> None:
    temporal = FakeTemporal()
    client = cast(Client, temporal)
    # Stored by an API process that died before signalling.
    await ingest(engine, None, "e9", [event("a")], b"{}", "json", POLICY, signal=False)
    assert await redeliver_due(engine, client, POLICY, unsent_after_s=0) == 1
    assert temporal.signals == [("call-c1", "a")]
    assert await redeliver_due(engine, client, POLICY, unsent_after_s=0) == 0


class GatedTemporal(FakeTemporal):
    """Signals wait until the gate opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = 0  # signals held at the gate

    def get_workflow_handle(self, workflow_id: str) -> Any:
        inner, gated = super().get_workflow_handle(workflow_id), self

        class Handle:
            async def signal(self, name: str, event: CallEvent) -> None:
                gated.waiting += 1
                await gated.gate.wait()
                await inner.signal(name, event)

        return Handle()


async def _at_gate(temporal: GatedTemporal, count: int) -> bool:
    return temporal.waiting == count


async def test_the_dispatcher_signals_in_the_background_and_writes_outcomes_together(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    temporal = GatedTemporal()
    writes: list[int] = []
    real_record = delivery._record

    def counted(engine: Engine, outcome: Any, policy: DeliveryPolicy) -> None:
        writes.append(len(outcome.signalled))
        real_record(engine, outcome, policy)

    monkeypatch.setattr(delivery, "_record", counted)
    # A budget no signal outlives here, however slow the machine: the gate decides.
    dispatcher = Dispatcher(engine, replace(POLICY, budget_s=60))
    for key in "abcdef":  # six webhooks, each stored, then handed over
        stored = await ingest(engine, None, "e9", [event(key)], b"{}", "json", signal=False)
        dispatcher.submit(cast(Client, temporal), stored)
    await wait_for(lambda: _at_gate(temporal, 6), 30, "six signals held at the gate")
    assert temporal.signals == [] and all(r.signal_attempts == 0 for r in rows(engine).values())
    temporal.gate.set()
    await dispatcher.drain()
    assert sorted(key for _, key in temporal.signals) == list("abcdef")
    assert all(r.signalled_at is not None for r in rows(engine).values())
    assert sum(writes) == 6 and len(writes) <= 2  # not one transaction per webhook


async def test_outcomes_the_store_refuses_are_left_to_redelivery(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    temporal = FakeTemporal()
    client = cast(Client, temporal)

    def refused(*_: Any) -> None:
        raise OSError("the store is down")

    monkeypatch.setattr(delivery, "_record", refused)
    dispatcher = Dispatcher(engine, POLICY)
    dispatcher.submit(client, await ingest(engine, None, "e9", [event("a")], b"{}", "json",
                                           signal=False))  # fmt: skip
    await dispatcher.drain()  # logged, not raised
    monkeypatch.undo()
    assert rows(engine)["a"].signalled_at is None
    assert await redeliver_due(engine, client, POLICY, unsent_after_s=0) == 1
    assert [key for _, key in temporal.signals] == ["a", "a"]  # twice: harmless, idempotent


async def test_the_dispatcher_keeps_a_bounded_number_of_signals_in_flight(engine: Engine) -> None:
    """Under overload the stored events wait their turn rather than all racing the budget."""
    temporal = GatedTemporal()
    in_flight, most = 0, 0
    inner = temporal.get_workflow_handle

    def counting(workflow_id: str) -> Any:
        handle = inner(workflow_id)

        class Handle:
            async def signal(self, name: str, event: CallEvent) -> None:
                nonlocal in_flight, most
                in_flight += 1
                most = max(most, in_flight)
                try:
                    await handle.signal(name, event)
                finally:
                    in_flight -= 1

        return Handle()

    temporal.get_workflow_handle = counting  # type: ignore[method-assign]
    dispatcher = Dispatcher(engine, replace(POLICY, budget_s=60), concurrency=2)
    for key in "abcdef":
        stored = await ingest(engine, None, "e9", [event(key)], b"{}", "json", signal=False)
        dispatcher.submit(cast(Client, temporal), stored)
    await wait_for(lambda: _at_gate(temporal, 2), 30, "two signals held at the gate")
    temporal.gate.set()
    await dispatcher.drain()
    assert most == 2 and len(temporal.signals) == 6
