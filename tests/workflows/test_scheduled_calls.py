"""Scheduled callbacks (issue 24): a call asked for later waits on a durable timer holding no
line, takes its line when due, waits on (with its reason) while none is free, and a hang-up
cancels it. On Temporal's time-skipping test server, as ``test_call_timers.py``."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from temporalio.testing import WorkflowEnvironment

from callflow.record import CallRecord
from contracts.call import CallInput, Routing, TakenLine
from core.types import CallState, CloseType, DisplayPolicy, EventKind
from tests.workflows.fakes import FakeVendor, call_workers
from tests.workflows.test_call_timers import (
    LINE,
    MAX_DURATION_S,
    TIMERS,
    Call,
    assert_at,
    hang_up,
    ms,
    server_ms,
)
from workflows.call import CallWorkflow

DUE_IN_S = 2 * 3600  # the call is asked for two hours from now


@contextlib.asynccontextmanager
async def scheduled(
    env: WorkflowEnvironment, vendor: FakeVendor, **timers: float
) -> AsyncIterator[Call]:
    """A call recorded now (``t0``), due ``DUE_IN_S`` later, with no line yet."""
    t0 = await server_ms(env)
    record = CallRecord(
        cc_call_id=uuid.uuid4().hex[:20], tenant="t", channel="", agent="",
        caller="+8613800000001", called="+8613900000002", display=DisplayPolicy.PLATFORM,
        created=t0, state=CallState.SCHEDULED, not_before=t0 + ms(DUE_IN_S),
        wait_reason="not_before",
    )  # fmt: skip
    inp = CallInput(record=record, line=None, max_duration_s=MAX_DURATION_S,
                    record_audio=False, routing=Routing(channel="e9"),
                    timers=TIMERS.model_copy(update=timers))  # fmt: skip
    vendor.clock = lambda: server_ms(env)
    queue = f"scheduled-{uuid.uuid4()}"
    async with call_workers(env.client, queue, activities=vendor.activities(),
                      workflows=[CallWorkflow]):  # fmt: skip
        handle = await env.client.start_workflow(
            CallWorkflow.run, inp, id=f"call-{record.cc_call_id}", task_queue=queue
        )
        yield Call(env=env, vendor=vendor, inp=inp, t0=t0, handle=handle)


async def test_a_scheduled_call_takes_its_line_and_is_placed_when_due(
    env: WorkflowEnvironment,
) -> None:
    vendor = FakeVendor(due_line=LINE)
    async with scheduled(env, vendor) as call:
        await call.skip_to(DUE_IN_S - 60)
        waiting = await call.handle.query(CallWorkflow.status)
        asked_before_due = list(vendor.requests)
        await call.skip_to(DUE_IN_S + 10)
        await call.send(call.event(EventKind.HANGUP, DUE_IN_S + 10, close_type=CloseType.A_BUSY))
        record = await call.handle.result()

    assert waiting.state is CallState.SCHEDULED and waiting.channel == ""
    assert asked_before_due == []  # no line, no vendor, nothing at all before the call is due
    [taken] = vendor.at("take_due_line")
    assert_at(taken, call.at(DUE_IN_S))
    assert vendor.args("take_due_line")[0].routing.channel == "e9"  # routed as asked
    [placed] = vendor.at("place_call")
    assert taken <= placed < taken + 1_500
    first_save = vendor.saves[0].record  # the line taken is saved before the vendor is asked
    assert (first_save.state, first_save.channel, first_save.agent) == (
        CallState.INIT, LINE.channel, LINE.agent)  # fmt: skip
    assert first_save.wait_reason is None
    assert (record.state, record.close_type) == (CallState.CLOSE, CloseType.A_BUSY)
    assert vendor.lines_released() == [LINE]


async def test_a_hang_up_cancels_a_scheduled_call_which_never_takes_a_line(
    env: WorkflowEnvironment,
) -> None:
    vendor = FakeVendor(due_line=LINE)
    async with scheduled(env, vendor) as call:
        await call.skip_to(600)
        asked = await call.now()
        cancelled = await hang_up(call)
        record = await call.handle.result()

    assert (cancelled.state, cancelled.close_type) == (CallState.CLOSE, CloseType.NORMAL)
    assert_at(cancelled.close_time, asked)
    assert record.a_call_time is None and record.vendor_call_id is None
    assert vendor.of("take_due_line") == [] and vendor.of("place_call") == []
    assert vendor.lines_released() == []
    assert vendor.saves[-1].record.state is CallState.CLOSE


async def test_a_due_call_with_no_line_free_waits_with_its_reason_then_is_placed(
    env: WorkflowEnvironment,
) -> None:
    busy = TakenLine(wait_reason="line_busy")
    quota = TakenLine(wait_reason="tenant_limit")
    vendor = FakeVendor(due_answers=[busy, busy, quota], due_line=LINE)
    async with scheduled(env, vendor, line_wait_s=5) as call:
        await call.skip_to(DUE_IN_S + 60)
        await call.send(call.event(EventKind.HANGUP, DUE_IN_S + 60, close_type=CloseType.NORMAL))
        record = await call.handle.result()

    asks = vendor.at("take_due_line")
    assert len(asks) == 4
    # 5 s, then 10, then 20 between asks (doubling, up to a minute)
    gaps = [b - a for a, b in zip(asks, asks[1:], strict=False)]
    for gap, pause in zip(gaps, [5_000, 10_000, 20_000], strict=True):
        assert_at(gap, pause)  # the pause, plus the ask's own round trip
    reasons = [s.record.wait_reason for s in vendor.saves if s.record.state is CallState.SCHEDULED]
    assert reasons == ["line_busy", "tenant_limit"]  # saved when the reason changes
    assert len(vendor.of("place_call")) == 1 and vendor.at("place_call")[0] >= asks[-1]
    assert record.state is CallState.CLOSE and vendor.lines_released() == [LINE]


async def test_a_due_call_that_finds_no_line_in_time_closes_without_dialling(
    env: WorkflowEnvironment,
) -> None:
    vendor = FakeVendor()  # every ask: line_busy
    async with scheduled(env, vendor, line_wait_s=5, line_wait_max_s=300) as call:
        record = await call.handle.result()

    assert (record.state, record.close_type) == (CallState.CLOSE, CloseType.OTHER)
    asks = vendor.at("take_due_line")
    assert asks[-1] - asks[0] >= 300_000 and vendor.of("place_call") == []
    assert vendor.lines_released() == []


async def test_a_due_call_whose_calling_hours_close_while_it_waits_waits_for_them_to_open(
    env: WorkflowEnvironment,
) -> None:
    """No line for a while, then the hours close (the line's answer says when they open):
    the call waits for the opening, not for a line every pause, and the wait for the hours
    is not counted against ``line_wait_max_s``; then it is placed."""
    opens_in_s = DUE_IN_S + 12 * 3600  # the next morning, far past line_wait_max_s
    vendor = FakeVendor(due_line=LINE)
    async with scheduled(env, vendor, line_wait_s=5, line_wait_max_s=300) as call:
        opens = call.at(opens_in_s)
        vendor.due_answers = [
            TakenLine(wait_reason="line_busy"),
            TakenLine(wait_reason="window", due_at=opens),
        ]
        await call.skip_to(opens_in_s + 10)
        await call.send(call.event(EventKind.HANGUP, opens_in_s + 10, close_type=CloseType.NORMAL))
        record = await call.handle.result()

    asks = vendor.at("take_due_line")
    assert len(asks) == 3
    assert_at(asks[1] - asks[0], 5_000)  # line busy: asked again after the pause
    assert_at(asks[2], opens)  # hours closed: asked again when they open, not before
    reasons = [s.record.wait_reason for s in vendor.saves if s.record.state is CallState.SCHEDULED]
    assert reasons == ["line_busy", "window"]
    assert (record.close_type, len(vendor.of("place_call"))) == (CloseType.NORMAL, 1)
    assert vendor.at("place_call")[0] >= opens


async def test_the_wait_for_a_line_counts_across_the_calling_hours_and_ends(
    env: WorkflowEnvironment,
) -> None:
    """No line, ever: the wait for one is counted over the hours' stretches together, so a
    call whose hours are shorter than ``line_wait_max_s`` still ends (255, never dialled)
    rather than waiting night after night; its record says when it asks next."""
    opens_in_s = DUE_IN_S + 12 * 3600
    busy = TakenLine(wait_reason="line_busy")
    vendor = FakeVendor()  # every other ask: line_busy
    async with scheduled(env, vendor, line_wait_s=5, line_wait_max_s=30) as call:
        opens = call.at(opens_in_s)
        vendor.due_answers = [busy, busy, busy, TakenLine(wait_reason="window", due_at=opens)]
        record = await call.handle.result()

    asks = vendor.at("take_due_line")
    assert len(asks) == 5  # 0, 5, 15, 35 s (the hours close), then at the opening: over 30 s
    assert_at(asks[-1], opens)
    assert (record.close_type, record.a_call_time) == (CloseType.OTHER, None)
    windowed = [s.record for s in vendor.saves if s.record.wait_reason == "window"]
    assert windowed and windowed[0].not_before == opens
