"""A callback's retry series (issue 24) on Temporal's time-skipping test server, with the real
store activities (records, lines, the next try) on SQLite and a scripted vendor: each try the
vendor takes ends as the script says (close_type 2: B did not answer), reported as the vendor's
own hang-up event.

The done-when of issue 24: a call with ``retry {on: [2], max_attempts: 3, interval_s: 60}``
whose customer never answers shows three tries, linked by ``parent``/``try``, each placed a
minute after the one before ended; one that answers ends the series; a hang-up of the series
cancels the try waiting."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.records import RecordActivities
from activities.series import SeriesActivities
from callflow.policy import CallingWindow, RetryPolicy
from callflow.record import CallRecord
from channels.events import CallEvent
from channels.registry import Settings
from contracts.call import CallInput, CallPolicy, PlaceCallInput, PlaceCallResult, Routing
from contracts.ids import HANGUP_UPDATE, VENDOR_EVENT_SIGNAL, workflow_id
from contracts.start import call_input
from core.types import CallState, CloseType, DisplayPolicy, EventKind
from store.db import session_scope
from store.lines import ensure_line, lease_line, lease_of
from store.models import CallRecordRow
from store.placement import record_born
from store.tenants import ensure_tenant
from tests.notify.support import sqlite_store
from tests.workflows.fakes import FakeVendor, call_workers
from tests.workflows.test_call_timers import server_ms
from workflows.call import CallWorkflow

TENANT, AGENT, NUMBER = "t", "+8613700000001", "+861088000001"
RETRY = RetryPolicy(on=[CloseType.B_UNREACHABLE], max_attempts=3, interval_s=60)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = sqlite_store(tmp_path)
    with session_scope(engine) as session:
        ensure_tenant(session, TENANT)
        ensure_line(session, TENANT, "e9", AGENT, NUMBER)
    return engine


def rows(engine: Engine) -> list[CallRecordRow]:
    with Session(engine) as session:
        return list(session.exec(select(CallRecordRow).order_by(CallRecordRow.id)).all())


class ScriptedVendor(FakeVendor):
    """place_call takes the call and, through Temporal, reports how it ended: the next
    outcome of ``outcomes`` (then the last one again), at the test server's time."""

    def __init__(self, env: WorkflowEnvironment, outcomes: list[CloseType]) -> None:
        super().__init__()
        self.env, self.outcomes = env, outcomes

    def activities(self) -> list[Callable[..., Any]]:
        real = {"save_record", "release_line", "take_due_line", "take_failover_line", "place_call"}
        fakes = [a for a in super().activities() if a.__name__ not in real]

        @activity.defn(name="place_call")
        async def place_call(inp: PlaceCallInput) -> PlaceCallResult:
            await self._note("place_call", inp)
            close = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
            call = inp.request.cc_call_id
            at = await server_ms(self.env)
            kinds = [EventKind.A_DIALING, EventKind.A_ANSWERED, EventKind.B_DIALING]
            if close is CloseType.NORMAL:
                kinds += [EventKind.B_ANSWERED, EventKind.BRIDGED]
            vendor_id = f"V-{call}"

            def event(kind: EventKind, at: int, **extra: Any) -> CallEvent:
                key = f"{call}-{kind.value}"
                return CallEvent(cc_call_id=call, kind=kind, at=at, channel="e9",
                                 vendor_call_id=vendor_id, dedupe_key=key, **extra)  # fmt: skip

            events = [event(kind, at) for kind in kinds]
            events.append(event(EventKind.HANGUP, at + 5_000, close_type=close))
            handle = activity.client().get_workflow_handle(workflow_id(call))
            for event in events:
                await handle.signal(VENDOR_EVENT_SIGNAL, event)
            return PlaceCallResult(vendor_call_id=vendor_id)

        return [*fakes, place_call]


@contextlib.asynccontextmanager
async def series(
    env: WorkflowEnvironment, engine: Engine, vendor: ScriptedVendor, policy: CallPolicy
) -> AsyncIterator[tuple[WorkflowHandle[CallWorkflow, CallRecord], str]]:
    """The series' first try, recorded and started as the API does, on the e9 line."""
    queue = f"series-{uuid.uuid4()}"
    settings = Settings(task_queue=queue)
    cc_call_id, now = uuid.uuid4().hex[:20], await server_ms(env)
    with session_scope(engine) as session:
        line = lease_line(session, TENANT, "e9", cc_call_id)
        assert line is not None
        row = CallRecordRow(cc_call_id=cc_call_id, tenant=TENANT, agent=AGENT, channel="e9",
                            caller="+8613800000001", called="+8613900000082",
                            display=DisplayPolicy.PLATFORM.value, lease_token=line.lease_token,
                            created=now, updated=now)  # fmt: skip
        record_born(session, row)
        lease = lease_of(line)
    record = CallRecord.model_validate(row.model_dump())
    inp: CallInput = call_input(
        settings, record, lease, Routing(channel="e9", priority=["e9"]), 60, False, policy
    )
    vendor.clock = lambda: server_ms(env)
    records = RecordActivities(engine)
    activities = [*vendor.activities(), records.save_record, records.release_line,
                  records.take_due_line, records.take_failover_line,
                  SeriesActivities(engine, settings).start_next_try]  # fmt: skip
    async with call_workers(env.client, queue, activities=activities,
                      workflows=[CallWorkflow],
                      activity_executor=ThreadPoolExecutor(4)):  # fmt: skip
        handle = await env.client.start_workflow(
            CallWorkflow.run, inp, id=workflow_id(cc_call_id), task_queue=queue
        )
        yield handle, cc_call_id


async def result_of(env: WorkflowEnvironment, cc_call_id: str) -> CallRecord:
    """The result of a try the series started (not this test): the test server skips time
    only for a result awaited through a handle the environment's client started, so the
    clock is moved here, half a minute at a time, until the try has ended."""
    handle = env.client.get_workflow_handle(workflow_id(cc_call_id), result_type=CallRecord)
    while (await handle.describe()).status is WorkflowExecutionStatus.RUNNING:
        await env.sleep(timedelta(seconds=30))
    record: CallRecord = await handle.result()
    return record


async def made(env: WorkflowEnvironment, cc_call_id: str) -> WorkflowHandle[Any, CallRecord]:
    """The handle of a try the series makes, once its workflow exists (real time: the
    activity that makes it runs on the worker); bounded."""
    handle = env.client.get_workflow_handle(workflow_id(cc_call_id), result_type=CallRecord)

    async def exists() -> None:
        while True:
            try:
                await handle.describe()
                return
            except RPCError as err:
                if err.status is not RPCStatusCode.NOT_FOUND:
                    raise
            await asyncio.sleep(0.05)

    try:
        async with asyncio.timeout(30):
            await exists()
    except TimeoutError:
        raise AssertionError(f"try {cc_call_id} was never made") from None
    return handle


async def test_a_customer_who_never_answers_is_tried_three_times_a_minute_apart(
    env: WorkflowEnvironment, engine: Engine
) -> None:
    vendor = ScriptedVendor(env, [CloseType.B_UNREACHABLE])
    async with series(env, engine, vendor, CallPolicy(retry=RETRY)) as (handle, first):
        tries = [await handle.result()]
        tries.append(await result_of(env, f"{first}-2"))
        tries.append(await result_of(env, f"{first}-3"))

    stored = rows(engine)
    assert [(r.cc_call_id, r.parent, r.try_number) for r in stored] == [
        (first, None, 1), (f"{first}-2", first, 2), (f"{first}-3", first, 3)]  # fmt: skip
    assert all((r.state, r.close_type) == ("close", "2") for r in stored)
    assert [t.close_type for t in tries] == [CloseType.B_UNREACHABLE] * 3
    for before, after in zip(stored, stored[1:], strict=False):
        assert before.close_time is not None and after.a_call_time is not None
        assert after.not_before == before.close_time + 60_000  # due a minute after the end
        assert after.a_call_time >= after.not_before  # and placed then, not before
    assert len(vendor.of("place_call")) == 3  # no fourth try: max_attempts reached


async def test_an_answered_try_ends_the_series(env: WorkflowEnvironment, engine: Engine) -> None:
    vendor = ScriptedVendor(env, [CloseType.B_UNREACHABLE, CloseType.NORMAL])
    async with series(env, engine, vendor, CallPolicy(retry=RETRY)) as (handle, first):
        await handle.result()
        second = await result_of(env, f"{first}-2")

    assert second.close_type is CloseType.NORMAL and second.conn_time is not None
    assert [r.try_number for r in rows(engine)] == [1, 2]


async def test_a_try_due_outside_the_window_waits_for_its_opening(
    env: WorkflowEnvironment, engine: Engine
) -> None:
    """The window is the hour that starts two hours from now (UTC): the retry, due a minute
    after the first try, waits until it opens."""
    now = await server_ms(env)
    opens = (now // 3_600_000 + 2) * 3_600_000
    hour = (opens // 3_600_000) % 24
    window = CallingWindow.model_validate(
        {
            "tz": "UTC",
            "days": list(range(1, 8)),
            "from": f"{hour:02d}:00",
            "to": f"{hour + 1:02d}:00" if hour < 23 else "24:00",
        }  # fmt: skip
    )
    vendor = ScriptedVendor(env, [CloseType.B_UNREACHABLE, CloseType.NORMAL])
    policy = CallPolicy(retry=RETRY, window=window)
    async with series(env, engine, vendor, policy) as (handle, first):
        await handle.result()
        await result_of(env, f"{first}-2")

    second = rows(engine)[1]
    assert (second.not_before, second.wait_reason) == (opens, None)
    assert second.a_call_time is not None and second.a_call_time >= opens


async def test_hanging_up_the_series_cancels_the_waiting_try(
    env: WorkflowEnvironment, engine: Engine
) -> None:
    """No time is skipped until the app has hung up: the first try closes on its vendor's
    events alone and makes the second, which waits for its minute. (Awaiting the first try's
    result first let the test server skip time, at times straight to the second try's due
    time, which then placed it: CI saw that once.)"""
    vendor = ScriptedVendor(env, [CloseType.B_UNREACHABLE])
    async with series(env, engine, vendor, CallPolicy(retry=RETRY)) as (handle, first):
        with env.auto_time_skipping_disabled():
            waiting = await made(env, f"{first}-2")
            status = await waiting.query(CallWorkflow.status)
            await waiting.execute_update(HANGUP_UPDATE, result_type=CallRecord)
        cancelled = await result_of(env, f"{first}-2")
        await handle.result()

    assert status.state is CallState.SCHEDULED and status.wait_reason == "retry"
    assert (cancelled.close_type, cancelled.a_call_time) == (CloseType.NORMAL, None)
    assert [r.try_number for r in rows(engine)] == [1, 2]  # no third try
    assert len(vendor.of("place_call")) == 1
