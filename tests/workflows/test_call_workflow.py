"""CallWorkflow's failure paths on Temporal's time-skipping test server: the activities are
stand-ins recording what the workflow asked for, so each rule is checked in workflow time
(placement deadline, unknown outcomes, set-up silence, hang-up in set-up, stray vendor calls,
a store that keeps refusing a record), and the lean shape of issue 12: the record saved by
local activities, one follow timer, one patch marker, and a call begun on the code before it
replaying on it."""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from callflow.record import CallRecord
from channels.events import CallEvent
from contracts.call import (
    CallInput,
    CallTimers,
    CopyRecordingInput,
    CopyRecordingResult,
    FailoverInput,
    HangupInput,
    LateEventsInput,
    LateEventsResult,
    LineLease,
    PlaceCallInput,
    PlaceCallResult,
    ReconcileInput,
    RecordingOutcome,
    ReleaseLineInput,
    Routing,
    SaveRecordInput,
)
from contracts.errors import OUTCOME_UNKNOWN, SERVER_ERROR, STORE_UNAVAILABLE
from contracts.ids import SEARCH_ATTRIBUTES
from core.types import CallState, CloseType, DisplayPolicy, EventKind
from tests.workflows.fakes import call_workers
from tests.workflows.servers import time_skipping_env
from workflows.call import CallWorkflow
from workflows.late import LateEventsWorkflow
from workflows.steps import LEAN, LOCAL_CHECK, PLACEMENT_QUEUE

LINE = LineLease(channel="e9", agent="e9-1", number="+861088000001", token=1)
SPARE = LineLease(channel="jy", agent="jy-1", number="+861088000002", token=1)


@dataclass
class Vendor:
    """What the stand-in activities do, and what they were asked."""

    place_error: str | None = None  # error type place_call raises
    first_place_errors: list[str] = field(default_factory=list)  # raised once each, first
    reconciled: list[CallEvent] = field(default_factory=list)  # call_result's answer
    reconcile_error: str | None = None  # error type reconcile_call raises (retryable)
    save_fails: bool = False
    noted_id: str | None = None  # what the place activity wrote down before its answer was lost
    placed: list[PlaceCallInput] = field(default_factory=list)
    hung_up: list[HangupInput] = field(default_factory=list)
    reconciles: int = 0
    released: list[ReleaseLineInput] = field(default_factory=list)
    failovers: int = 0
    saved: list[SaveRecordInput] = field(default_factory=list)
    late: list[CallEvent] = field(default_factory=list)

    def activities(self) -> list[object]:
        @activity.defn(name="place_call")
        async def place_call(inp: PlaceCallInput) -> PlaceCallResult:
            self.placed.append(inp)
            if self.first_place_errors:
                error = self.first_place_errors.pop(0)
                raise ApplicationError("not sent", type=error, non_retryable=True)
            if self.place_error:
                raise ApplicationError("vendor", type=self.place_error, non_retryable=True)
            return PlaceCallResult(vendor_call_id="V1")

        @activity.defn(name="hangup_call")
        async def hang_up(inp: HangupInput) -> None:
            self.hung_up.append(inp)

        @activity.defn(name="reconcile_call")
        async def reconcile(inp: ReconcileInput) -> list[CallEvent]:
            self.reconciles += 1
            if self.reconcile_error:
                raise ApplicationError("vendor down", type=self.reconcile_error)
            return self.reconciled

        @activity.defn(name="save_record")
        async def save(inp: SaveRecordInput) -> None:
            if self.save_fails:
                raise ApplicationError("value too long for column", non_retryable=True)
            self.saved.append(inp)

        @activity.defn(name="release_line")
        async def release(inp: ReleaseLineInput) -> bool:
            self.released.append(inp)
            return True

        @activity.defn(name="take_failover_line")
        async def failover(inp: FailoverInput) -> LineLease | None:
            self.failovers += 1
            return None if SPARE.channel in inp.tried else SPARE

        @activity.defn(name="copy_recording")
        async def copy(inp: CopyRecordingInput) -> CopyRecordingResult:
            return CopyRecordingResult(audio_url=f"local:{inp.cc_call_id}", size=1,
                                       content_type="audio/wav")  # fmt: skip

        @activity.defn(name="apply_late_events")
        async def apply_late(events: list[CallEvent]) -> LateEventsResult:
            self.late.extend(events)
            return LateEventsResult(found=True)

        @activity.defn(name="note_recording")
        async def note(inp: RecordingOutcome) -> None:
            return None

        @activity.defn(name="placed_call_id")
        async def placed_call_id(cc_call_id: str) -> str | None:
            return self.noted_id

        return [place_call, hang_up, reconcile, save, release, failover, copy, apply_late, note,
                placed_call_id]  # fmt: skip


@pytest.fixture(scope="module")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await time_skipping_env()
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=env.client.namespace,
        search_attributes={key.name: keyword for key in SEARCH_ATTRIBUTES}))  # fmt: skip
    yield env
    await env.shutdown()


async def env_ms(env: WorkflowEnvironment) -> int:
    """The test server's clock: it runs ahead of ours as it skips time."""
    return int((await env.get_current_time()).timestamp() * 1000)


async def call_input(
    env: WorkflowEnvironment, created_ago_s: float = 0, fail_over: bool = False, **timers: float
) -> CallInput:
    now = await env_ms(env)
    record = CallRecord(
        cc_call_id=uuid.uuid4().hex[:20], tenant="t", channel="e9", agent=LINE.agent,
        caller="+8613800000001", called="+8613900000002", display=DisplayPolicy.PLATFORM,
        created=now - int(created_ago_s * 1000),
    )  # fmt: skip
    return CallInput(record=record, line=LINE, max_duration_s=600, record_audio=False,
                     routing=Routing(may_fail_over=fail_over),
                     timers=CallTimers(**timers))  # type: ignore[arg-type]  # fmt: skip


@contextlib.asynccontextmanager
async def running_call(
    env: WorkflowEnvironment, vendor: Vendor, inp: CallInput
) -> AsyncIterator[WorkflowHandle[CallWorkflow, CallRecord]]:
    queue = f"call-{uuid.uuid4()}"
    async with call_workers(env.client, queue, activities=vendor.activities(),
                      workflows=[CallWorkflow, LateEventsWorkflow]):  # fmt: skip
        yield await env.client.start_workflow(
            CallWorkflow.run, inp, id=f"call-{inp.record.cc_call_id}", task_queue=queue
        )


def event(inp: CallInput, kind: EventKind, at: int, **extra: object) -> CallEvent:
    fields: dict[str, object] = {"vendor_call_id": "V1", **extra}
    key = f"{kind.value}-{at}-{fields['vendor_call_id']}"
    return CallEvent(cc_call_id=inp.record.cc_call_id, kind=kind, at=at, channel="e9",
                     dedupe_key=key, **fields)  # type: ignore[arg-type]  # fmt: skip


async def test_a_call_not_placed_by_its_deadline_is_closed_without_dialling(
    skipping_env: WorkflowEnvironment,
) -> None:
    vendor = Vendor()
    # The call waited through a worker outage longer than the placement deadline.
    inp = await call_input(skipping_env, created_ago_s=120, place_deadline_s=60)
    async with running_call(skipping_env, vendor, inp) as handle:
        record = await handle.result()
    assert vendor.placed == []  # never dialled
    assert (record.state, record.close_type) == (CallState.CLOSE, CloseType.OTHER)
    assert [a.outcome for a in vendor.saved[-1].attempts] == ["expired"]
    assert vendor.saved[-1].release_line == LINE  # the line is freed with the close


async def test_an_unknown_outcome_is_never_placed_again_and_closes_with_7(
    skipping_env: WorkflowEnvironment,
) -> None:
    vendor = Vendor(place_error=OUTCOME_UNKNOWN)
    inp = await call_input(skipping_env, fail_over=True, place_unknown_wait_s=30)
    async with running_call(skipping_env, vendor, inp) as handle:
        record = await handle.result()
    assert len(vendor.placed) == 1 and vendor.failovers == 0  # no retry, no failover
    assert record.close_type is CloseType.CHANNEL_NETWORK_ERROR
    assert [a.outcome for a in vendor.saved[-1].attempts] == ["unknown"]


async def test_a_request_not_sent_for_cc_s_store_is_tried_again_on_its_line(
    skipping_env: WorkflowEnvironment,
) -> None:
    """Chaos scenario 4 (issue 19): hw's seat session could not be read, the database down;
    nothing was sent. It was taken for an unknown outcome (never placed again: closed 7). It
    is neither that nor the vendor's failure: tried again on the same line, no failover, and
    it costs none of the vendor's tries."""
    vendor = Vendor(first_place_errors=[STORE_UNAVAILABLE] * 4)
    inp = await call_input(skipping_env, fail_over=True, place_deadline_s=120)
    async with running_call(skipping_env, vendor, inp) as handle:
        now = await env_ms(skipping_env)
        hangup = event(inp, EventKind.HANGUP, now, close_type=CloseType.NORMAL)
        await handle.signal(CallWorkflow.vendor_event, hangup)
        record = await handle.result()
    assert len(vendor.placed) == 5 and vendor.failovers == 0
    assert record.vendor_call_id == "V1" and record.channel == LINE.channel
    assert [(a.outcome, a.tries) for a in vendor.saved[-1].attempts] == [("placed", 1)]


async def test_an_unknown_outcome_is_followed_when_the_calls_event_comes(
    skipping_env: WorkflowEnvironment,
) -> None:
    vendor = Vendor(place_error=OUTCOME_UNKNOWN)
    inp = await call_input(skipping_env, fail_over=True, place_unknown_wait_s=600)
    now = await env_ms(skipping_env)
    async with running_call(skipping_env, vendor, inp) as handle:
        await handle.signal(CallWorkflow.vendor_event, event(inp, EventKind.BRIDGED, now))
        await handle.signal(CallWorkflow.vendor_event, event(
            inp, EventKind.HANGUP, now + 3000, close_type=CloseType.NORMAL))  # fmt: skip
        record = await handle.result()
    assert len(vendor.placed) == 1 and vendor.failovers == 0
    assert (record.vendor_call_id, record.close_type, record.duration) == (
        "V1",
        CloseType.NORMAL,
        3,
    )
    assert vendor.saved[-1].attempts[-1].outcome == "placed_unconfirmed"


async def test_a_placement_whose_answer_was_lost_is_found_where_the_activity_noted_it(
    skipping_env: WorkflowEnvironment,
) -> None:
    """The vendor answered, the worker wrote its id down, but the answer never reached the
    workflow (Temporal was down, the worker died): the call is followed, not closed with 7."""
    vendor = Vendor(place_error=OUTCOME_UNKNOWN, noted_id="V9")
    inp = await call_input(skipping_env, fail_over=True)
    now = await env_ms(skipping_env)
    async with running_call(skipping_env, vendor, inp) as handle:
        busy = event(inp, EventKind.HANGUP, now + 1000, close_type=CloseType.A_BUSY,
                     vendor_call_id="V9")  # fmt: skip
        await handle.signal(CallWorkflow.vendor_event, busy)
        record = await handle.result()
    assert len(vendor.placed) == 1 and vendor.failovers == 0
    assert (record.vendor_call_id, record.close_type) == ("V9", CloseType.A_BUSY)
    assert [(a.outcome, a.vendor_call_id) for a in vendor.saved[-1].attempts] == [("placed", "V9")]


async def test_a_vendor_error_fails_over_after_its_retries(
    skipping_env: WorkflowEnvironment,
) -> None:
    vendor = Vendor(place_error=SERVER_ERROR)
    inp = await call_input(skipping_env, fail_over=True)
    async with running_call(skipping_env, vendor, inp) as handle:
        await handle.result()
    assert [p.channel for p in vendor.placed] == ["e9", "e9", "e9", "jy", "jy", "jy"]
    assert vendor.failovers == 2
    attempts = vendor.saved[-1].attempts
    assert [(a.channel, a.outcome, a.tries) for a in attempts] == [
        ("e9", "failed", 3), ("jy", "failed", 3)]  # fmt: skip


async def test_a_silent_set_up_is_reconciled_with_the_vendor(
    skipping_env: WorkflowEnvironment,
) -> None:
    inp = await call_input(skipping_env, setup_silence_s=45)
    now = await env_ms(skipping_env)
    ended = event(inp, EventKind.HANGUP, now + 9000, close_type=CloseType.NORMAL, duration_s=4)
    vendor = Vendor(reconciled=[ended])
    async with running_call(skipping_env, vendor, inp) as handle:
        record = await handle.result()
    assert vendor.reconciles >= 1
    assert (record.close_type, record.conn_time, record.duration) == (
        CloseType.NORMAL, now + 5000, 4)  # fmt: skip


async def test_a_hangup_asked_in_set_up_ends_the_call(skipping_env: WorkflowEnvironment) -> None:
    vendor = Vendor()
    inp = await call_input(skipping_env)
    async with running_call(skipping_env, vendor, inp) as handle:
        record = await handle.execute_update(CallWorkflow.hangup)
        assert (record.state, record.close_type) == (CallState.CLOSE, CloseType.NORMAL)
        await handle.result()
    assert [h.vendor_call_id for h in vendor.hung_up] == ["V1"]


async def test_an_event_of_another_vendor_call_is_noted_and_that_call_hung_up(
    skipping_env: WorkflowEnvironment,
) -> None:
    vendor = Vendor()
    inp = await call_input(skipping_env)
    now = await env_ms(skipping_env)
    async with running_call(skipping_env, vendor, inp) as handle:
        await handle.signal(CallWorkflow.vendor_event, event(inp, EventKind.A_DIALING, now))
        stray = event(inp, EventKind.HANGUP, now + 1, close_type=CloseType.B_BUSY,
                      vendor_call_id="V2", inbox_id=77)  # fmt: skip
        await handle.signal(CallWorkflow.vendor_event, stray)
        await handle.signal(CallWorkflow.vendor_event, event(
            inp, EventKind.HANGUP, now + 2000, close_type=CloseType.NORMAL))  # fmt: skip
        record = await handle.result()
        history = await handle.fetch_history()
    # Deterministic: the history replays on the workflow code as it stands.
    replayer = Replayer(workflows=[CallWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)
    assert record.close_type is CloseType.NORMAL  # the stray's busy was not applied
    assert HangupInput(channel="e9", vendor_call_id="V2") in vendor.hung_up
    assert any(s.noted_inbox_ids == {77: "stray_vendor_call"} for s in vendor.saved)


async def test_a_record_the_store_keeps_refusing_still_frees_its_line(
    skipping_env: WorkflowEnvironment,
) -> None:
    vendor = Vendor(save_fails=True)
    inp = await call_input(skipping_env, save_max_attempts=2)
    now = await env_ms(skipping_env)
    async with running_call(skipping_env, vendor, inp) as handle:
        await handle.signal(CallWorkflow.vendor_event, event(
            inp, EventKind.HANGUP, now, close_type=CloseType.A_BUSY))  # fmt: skip
        record = await handle.result()
    assert record.close_type is CloseType.A_BUSY
    assert [r.line for r in vendor.released] == [LINE]


async def test_late_events_go_to_the_closed_records_late_workflow(
    skipping_env: WorkflowEnvironment,
) -> None:
    vendor = Vendor()
    inp = await call_input(skipping_env)
    queue = f"late-{uuid.uuid4()}"
    late = event(inp, EventKind.HANGUP, 5, close_type=CloseType.NORMAL)
    async with Worker(skipping_env.client, task_queue=queue, activities=vendor.activities(),
                      workflows=[LateEventsWorkflow]):  # fmt: skip
        handle = await skipping_env.client.start_workflow(
            LateEventsWorkflow.run, LateEventsInput(cc_call_id=inp.record.cc_call_id),
            id=f"late-{inp.record.cc_call_id}", task_queue=queue,
            start_signal="late_event", start_signal_args=[late],
        )  # fmt: skip
        assert await handle.result() == 1
    assert vendor.late == [late]


async def test_a_call_that_talked_past_its_max_duration_closes_with_5(
    skipping_env: WorkflowEnvironment,
) -> None:
    """CC could not cut the call (Temporal was down); the vendor's backstop limit ended it
    and reported a plain hang-up: the record says 5, at the vendor's close time."""
    vendor = Vendor()
    inp = (await call_input(skipping_env)).model_copy(update={"max_duration_s": 5})
    now = await env_ms(skipping_env)
    async with running_call(skipping_env, vendor, inp) as handle:
        hung_up = event(inp, EventKind.HANGUP, now, close_type=CloseType.NORMAL)
        for sent in (event(inp, EventKind.BRIDGED, now - 20_000), hung_up):
            await handle.signal(CallWorkflow.vendor_event, sent)
        record = await handle.result()
    assert (record.close_type, record.close_time, record.duration) == (
        CloseType.MAX_DURATION, now, 20)  # fmt: skip


async def test_a_call_placed_late_is_watched_from_its_placement(
    skipping_env: WorkflowEnvironment,
) -> None:
    """Placed 100 s after its request (within the deadline, after an outage): the set-up
    watchdog counts from the placement, so the call is not cut the moment it rings."""
    vendor = Vendor()
    inp = await call_input(skipping_env, created_ago_s=100, place_deadline_s=120,
                           watchdog_grace_s=20)  # fmt: skip
    inp = inp.model_copy(update={"max_duration_s": 10})
    placed_at = await env_ms(skipping_env)
    async with running_call(skipping_env, vendor, inp) as handle:
        record = await handle.result()  # the vendor never reports: the watchdog closes it
    assert record.close_type is CloseType.OTHER and record.close_time is not None
    assert record.close_time >= placed_at + 30_000  # max_duration + grace after placing


# -- issue 12: the lean call, and a call begun on the code before it ------------------------

HISTORIES = Path(__file__).parent / "histories"
SCHEDULED = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
MARKER = EventType.EVENT_TYPE_MARKER_RECORDED
TIMER = EventType.EVENT_TYPE_TIMER_STARTED
SETUP = (EventKind.A_DIALING, EventKind.A_RINGING, EventKind.A_ANSWERED, EventKind.B_DIALING,
         EventKind.B_RINGING, EventKind.B_ANSWERED, EventKind.BRIDGED)  # fmt: skip


async def set_up(
    handle: WorkflowHandle[CallWorkflow, CallRecord], inp: CallInput, now: int
) -> None:
    """The vendor's events up to bridged (``SETUP``), a millisecond apart from ``now``."""
    for n, kind in enumerate(SETUP):
        await handle.signal(CallWorkflow.vendor_event, event(inp, kind, now + n))


async def hang_up(
    handle: WorkflowHandle[CallWorkflow, CallRecord], inp: CallInput, at: int
) -> CallRecord:
    """A normal hang-up at ``at``: the call's closed record."""
    hung_up = event(inp, EventKind.HANGUP, at, close_type=CloseType.NORMAL)
    await handle.signal(CallWorkflow.vendor_event, hung_up)
    return await handle.result()


def markers(history: WorkflowHistory) -> Counter[str]:
    """Marker names, a patch's with its id and a local activity's with its type."""
    found: Counter[str] = Counter()
    for e in history.events:
        if e.event_type != MARKER:
            continue
        attrs = e.marker_recorded_event_attributes
        raw = b"".join(p.data for key in attrs.details for p in attrs.details[key].payloads)
        label = next((name for name in (LEAN, LOCAL_CHECK, PLACEMENT_QUEUE, "save_record",
                                        "reconcile_call",
                                        "fill-facts", "copy-recording",
                                        "report-placement-to-health") if name.encode() in raw),
                     "?")  # fmt: skip
        found[f"{attrs.marker_name}:{label}"] += 1
    return found


async def test_a_lean_call_saves_locally_with_one_follow_timer(
    skipping_env: WorkflowEnvironment,
) -> None:
    vendor = Vendor()
    inp = await call_input(skipping_env)
    now = await env_ms(skipping_env)
    async with running_call(skipping_env, vendor, inp) as handle:
        await set_up(handle, inp, now)
        record = await hang_up(handle, inp, now + 2000)
        history = await handle.fetch_history()
    assert record.close_type is CloseType.NORMAL and vendor.saved
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name
                 for e in history.events if e.event_type == SCHEDULED]  # fmt: skip
    assert "save_record" not in scheduled  # no activity task per save …
    found = markers(history)
    assert found["core_local_activity:save_record"] == len(vendor.saved)  # … a marker each
    # The lean patch, and the one patch since (a place request on its vendor's queue).
    patches = [k for k in found if k.startswith("core_patch")]
    assert patches == [f"core_patch:{LEAN}", f"core_patch:{PLACEMENT_QUEUE}"]
    # One timer while the call is followed (not one per event), then the late-event window.
    assert sum(e.event_type == TIMER for e in history.events) <= 3
    await Replayer(workflows=[CallWorkflow], data_converter=pydantic_data_converter
                   ).replay_workflow(history)  # fmt: skip


async def test_a_call_begun_before_the_lean_shape_replays_on_it() -> None:
    """Recorded on the code of a03e48a (save_record an activity, a timer per event, three
    patch markers): a call in flight across the deploy goes on as it began."""
    history = WorkflowHistory.from_json(
        "call-before-issue-12", (HISTORIES / "call_before_issue12.json").read_text()
    )
    assert any(e.event_type == SCHEDULED
               and e.activity_task_scheduled_event_attributes.activity_type.name == "save_record"
               for e in history.events)  # fmt: skip
    replayer = Replayer(workflows=[CallWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)


def scheduled_types(history: WorkflowHistory) -> list[str]:
    return [e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events if e.event_type == SCHEDULED]  # fmt: skip


async def bridged_then_silent(
    env: WorkflowEnvironment, vendor: Vendor
) -> tuple[CallRecord, WorkflowHistory]:
    """Bridged, then nothing from the vendor until CC cuts the call at max_duration (60 s):
    with connected_check_s = 10 the vendor is asked twice (+10 s, then +20 s later)."""
    inp = await call_input(env, connected_check_s=10)
    inp = inp.model_copy(update={"max_duration_s": 60})
    now = await env_ms(env)
    async with running_call(env, vendor, inp) as handle:
        await set_up(handle, inp, now)
        return await handle.result(), await handle.fetch_history()


async def test_a_silent_vendor_is_asked_by_a_local_activity(
    skipping_env: WorkflowEnvironment,
) -> None:
    """Issue 12, 10,000 live calls: each question about a long call is one workflow task (one
    replay for a call out of the cache), a ``reconcile_call`` marker, not an activity task."""
    vendor = Vendor()
    record, history = await bridged_then_silent(skipping_env, vendor)
    assert record.close_type is CloseType.MAX_DURATION and vendor.reconciles == 2
    assert "reconcile_call" not in scheduled_types(history)
    found = markers(history)
    assert found["core_local_activity:reconcile_call"] == 2
    assert found[f"core_patch:{LOCAL_CHECK}"] == 1
    await Replayer(workflows=[CallWorkflow], data_converter=pydantic_data_converter
                   ).replay_workflow(history)  # fmt: skip


async def test_a_local_check_that_fails_is_shrugged_off(skipping_env: WorkflowEnvironment) -> None:
    vendor = Vendor(reconcile_error=SERVER_ERROR)
    record, _ = await bridged_then_silent(skipping_env, vendor)
    assert record.close_type is CloseType.MAX_DURATION  # cut by CC as if it had been answered
    # Asked at +10 s and +30 s (a vendor that cannot answer is asked less often too), each
    # question tried three times, then left.
    assert vendor.reconciles == 2 * 3


async def test_a_call_asking_by_activity_before_the_local_check_replays_on_it() -> None:
    """Recorded on 320c151 (a lean call asking its silent vendor twice by activity tasks): a
    call in flight across the deploy keeps asking the way it began."""
    history = WorkflowHistory.from_json(
        "call-check-as-activity", (HISTORIES / "call_lean_check_as_activity.json").read_text()
    )
    assert scheduled_types(history).count("reconcile_call") == 2
    replayer = Replayer(workflows=[CallWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)


# -- issue 13: an inbound call is followed, never placed ------------------------------------


async def test_an_inbound_call_is_followed_without_being_placed(
    skipping_env: WorkflowEnvironment,
) -> None:
    """A customer who dialled a 400 number: the vendor already has the call (its id is on the
    record), so CallWorkflow places nothing and follows the vendor's events to the close."""
    vendor = Vendor()
    inp = await call_input(skipping_env)
    inp.record = inp.record.model_copy(update={"direction": "in", "vendor_call_id": "V1"})
    now = await env_ms(skipping_env)
    async with running_call(skipping_env, vendor, inp) as handle:
        await set_up(handle, inp, now)
        record = await hang_up(handle, inp, now + 3000)
    assert vendor.placed == []
    assert (record.direction, record.state, record.close_type) == (
        "in", CallState.CLOSE, CloseType.NORMAL)  # fmt: skip
    assert record.conn_time == now + len(SETUP) - 1
    assert [r.line for r in vendor.released] + [s.release_line for s in vendor.saved
                                               if s.release_line] == [LINE]  # fmt: skip
