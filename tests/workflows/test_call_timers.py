"""CallWorkflow's timers at known times, on Temporal's time-skipping test server.

Each test anchors on ``t0``, the test server's clock just before the workflow starts (the
record's ``created``), moves that clock with ``env.sleep`` (exactly the given span, the
workflow's timers firing on the way) to send vendor events at chosen moments, and then lets
``handle.result()`` skip to the end. Expected times come from the workflow's rules
(``workflows/call.py``, ``workflows/placing.py``) and the timers in ``CallTimers``.

Times CC takes from its own clock (``workflow.now()``) are later than the timer that
triggered them by the real time the workflow took to get there (activity round trips on
the test server): those are asserted as ``expected <= actual < expected + SLACK_MS``, a
window far narrower than any timer here. Times taken from events (the vendor's clock) and
CC's max-duration cut (``conn_time + max_duration``) are asserted exactly.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from callflow.record import CallRecord
from channels.events import CallEvent
from contracts.call import CallInput, CallTimers, LineLease, Routing
from contracts.errors import ALREADY_CLOSED, OUTCOME_UNKNOWN, RATE_LIMITED, REJECTED, SERVER_ERROR
from contracts.ids import HANGUP_UPDATE
from contracts.seat import POLL_RESUMED_WITHIN
from core.types import CallState, ChannelMode, CloseType, DisplayPolicy, EventKind
from tests.workflows.fakes import FakeVendor, call_workers
from workflows.call import CallWorkflow
from workflows.placing import RETRY_DELAYS_S, TRIES_PER_CHANNEL, VENDOR_LIMIT_MARGIN_S

LINE = LineLease(channel="e9", agent="e9-1", number="+861088000001", token=1)
SPARE = LineLease(channel="jy", agent="jy-1", number="+861088000002", token=1)
SEAT = LineLease(channel="hw", agent="10001", number="+861088000003", token=1)  # polled

# The timers of every call here, each distinct so that a timer taken for another shows.
MAX_DURATION_S = 60
TIMERS = CallTimers(
    place_deadline_s=50,
    place_unknown_wait_s=25,
    setup_silence_s=45,
    connected_check_s=300,
    watchdog_grace_s=20,
    hangup_wait_s=15,
    late_event_window_s=30,
    save_max_attempts=3,
)
# Real time the workflow may take past a timer before it reads its clock (see the docstring).
SLACK_MS = 1_500
NO_RECORDING_YET = "the vendor reported no recording (yet)"  # CallWorkflow._copy_recording


def ms(seconds: float) -> int:
    return int(seconds * 1000)


def assert_at(actual: int | None, expected: int) -> None:
    """``actual`` is CC's clock reading for something due at ``expected``."""
    assert actual is not None
    assert expected <= actual < expected + SLACK_MS, (actual - expected, "ms late")


def timers_between_place_requests(history: WorkflowHistory) -> list[int]:
    """How many timers the workflow started between each two place requests it scheduled."""
    counts: list[int] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == "place_call":
                counts.append(0)
        elif event.event_type == EventType.EVENT_TYPE_TIMER_STARTED and counts:
            counts[-1] += 1
    return counts[:-1]


async def server_ms(env: WorkflowEnvironment) -> int:
    return int((await env.get_current_time()).timestamp() * 1000)


@dataclass
class Call:
    """A running CallWorkflow, the fakes it talks to, and the clock it started at."""

    env: WorkflowEnvironment
    vendor: FakeVendor
    inp: CallInput
    t0: int
    handle: WorkflowHandle[CallWorkflow, CallRecord]
    last_offset_s: float = 0.0  # the latest moment skip_to was asked for

    @property
    def id(self) -> str:
        return self.inp.record.cc_call_id

    def at(self, offset_s: float) -> int:
        return self.t0 + ms(offset_s)

    async def now(self) -> int:
        return await server_ms(self.env)

    async def skip_to(self, offset_s: float) -> None:
        """Move the test server's clock to ``t0 + offset_s`` (timers due meanwhile fire).

        The server's clock also runs with real time: on a loaded machine it may already be
        past a moment a few seconds after ``t0`` (starting the worker took that long). Then
        there is nothing to skip: the events carry their own times. The test's own timeline
        must still only move forward."""
        assert offset_s >= self.last_offset_s, "the test's timeline goes backwards"
        self.last_offset_s = offset_s
        now = await self.now()
        if self.at(offset_s) > now:
            await self.env.sleep(timedelta(milliseconds=self.at(offset_s) - now))

    def event(self, kind: EventKind, offset_s: float, channel: str = "e9",
              vendor_call_id: str = "V1", **extra: object) -> CallEvent:  # fmt: skip
        at = self.at(offset_s)
        return CallEvent(cc_call_id=self.id, kind=kind, at=at, channel=channel,
                         vendor_call_id=vendor_call_id,
                         dedupe_key=f"{kind.value}-{at}-{vendor_call_id}",
                         **extra)  # type: ignore[arg-type]  # fmt: skip

    async def send(self, *events: CallEvent) -> int:
        """Signal the events; returns the test server's time they were sent."""
        sent = await self.now()
        for event in events:
            await self.handle.signal(CallWorkflow.vendor_event, event)
        return sent

    async def talk(self, bridged_s: float) -> int:
        """Both legs dialled and answered, then bridged at ``t0 + bridged_s``; returns the
        test server's time the events were sent."""
        kinds = [EventKind.A_DIALING, EventKind.A_ANSWERED, EventKind.B_DIALING,
                 EventKind.B_ANSWERED, EventKind.BRIDGED]  # fmt: skip
        offsets = [bridged_s - 4, bridged_s - 3, bridged_s - 2, bridged_s - 1, bridged_s]
        return await self.send(*(self.event(k, o) for k, o in zip(kinds, offsets, strict=True)))

    async def ended_at(self) -> int:
        """When the workflow finished, by the test server's clock."""
        closed = (await self.handle.describe()).close_time
        assert closed is not None
        return int(closed.timestamp() * 1000)


@contextlib.asynccontextmanager
async def calling(
    env: WorkflowEnvironment,
    vendor: FakeVendor,
    *,
    record_audio: bool = False,
    fail_over: bool = False,
    created_ago_s: float = 0,
    line: LineLease = LINE,
    **timers: float,
) -> AsyncIterator[Call]:
    """Start a call requested ``created_ago_s`` before ``t0``, the server's clock now, on
    ``line`` (a polled channel's line is a seat, claimed before the call is placed)."""
    t0 = await server_ms(env)
    record = CallRecord(
        cc_call_id=uuid.uuid4().hex[:20], tenant="t", channel=line.channel, agent=line.agent,
        caller="+8613800000001", called="+8613900000002", display=DisplayPolicy.PLATFORM,
        created=t0 - ms(created_ago_s),
    )  # fmt: skip
    routing = Routing(may_fail_over=fail_over, modes={SEAT.channel: ChannelMode.POLL})
    inp = CallInput(record=record, line=line, max_duration_s=MAX_DURATION_S,
                    record_audio=record_audio, routing=routing,
                    timers=TIMERS.model_copy(update=timers))  # fmt: skip
    vendor.clock = lambda: server_ms(env)
    queue = f"timers-{uuid.uuid4()}"
    async with call_workers(env.client, queue, activities=vendor.activities(),
                      workflows=[CallWorkflow]):  # fmt: skip
        handle = await env.client.start_workflow(
            CallWorkflow.run, inp, id=f"call-{record.cc_call_id}", task_queue=queue
        )
        yield Call(env=env, vendor=vendor, inp=inp, t0=t0, handle=handle)


async def hang_up(call: Call) -> CallRecord:
    """CC's hang-up, as the API asks it (the update by its contract name)."""
    record: CallRecord = await call.handle.execute_update(HANGUP_UPDATE, result_type=CallRecord)
    return record


def attempts(vendor: FakeVendor) -> list[tuple[str, str, int, str | None]]:
    return [(a.channel, a.outcome, a.tries, a.vendor_call_id) for a in vendor.saves[-1].attempts]


def first_closed_save(vendor: FakeVendor) -> int:
    """Index (among all requests) of the first save of the closed record."""
    return next(i for i, r in enumerate(vendor.requests)
                if r.name == "save_record" and r.arg.record.state is CallState.CLOSE)  # fmt: skip


# -- (1) the vendor's events carry the call through init → conn → close -------------------
async def test_events_carry_the_call_to_its_close_and_the_line_is_freed_with_it(
    env: WorkflowEnvironment,
) -> None:
    vendor = FakeVendor()
    async with calling(env, vendor) as call:
        await call.skip_to(2)
        await call.send(call.event(EventKind.A_DIALING, 2))
        await call.skip_to(10)
        await call.send(call.event(EventKind.A_ANSWERED, 10), call.event(EventKind.B_DIALING, 10))
        await call.skip_to(15)
        await call.send(call.event(EventKind.B_ANSWERED, 15), call.event(EventKind.BRIDGED, 15))
        during = await call.handle.query(CallWorkflow.status)
        await call.skip_to(55)
        hung_up = await call.send(call.event(EventKind.HANGUP, 55, close_type=CloseType.NORMAL))
        record = await call.handle.result()
        ended = await call.ended_at()

    assert during.state is CallState.CONN and during.conn_time == call.at(15)
    assert (record.state, record.close_type) == (CallState.CLOSE, CloseType.NORMAL)
    assert (record.a_call_time, record.conn_time, record.close_time) == (
        call.at(2), call.at(15), call.at(55))  # fmt: skip
    assert record.duration == 55 - 15
    placed = vendor.args("place_call")
    assert len(placed) == 1
    assert placed[0].request.display_to_a == LINE.number
    assert placed[0].request.max_duration_s == MAX_DURATION_S + VENDOR_LIMIT_MARGIN_S
    assert attempts(vendor) == [("e9", "placed", 1, "V1")]
    # Every state was saved, in order; the first closed save frees the line, and only it.
    states = [s.record.state for s in vendor.saves]
    assert states == sorted(states, key=lambda s: s.rank) and states[-1] is CallState.CLOSE
    assert {CallState.INIT, CallState.CONN} <= set(states)
    assert vendor.lines_released() == [LINE]
    assert vendor.requests[first_closed_save(vendor)].arg.release_line == LINE
    assert vendor.saves[-1].record == record
    # Nothing was missing and nobody was silent: no reconciliation, no hang-up by CC.
    assert vendor.of("reconcile_call") == [] and vendor.of("hangup_call") == []
    # The workflow stays for the late-event window after the close, then ends.
    assert_at(ended, hung_up + ms(TIMERS.late_event_window_s))


# -- (2) placement: retries, failover, rejection, unknown outcome --------------------------
async def test_a_vendor_error_is_retried_with_back_off_then_the_call_fails_over(
    env: WorkflowEnvironment,
) -> None:
    vendor = FakeVendor(place_errors={"e9": [SERVER_ERROR] * TRIES_PER_CHANNEL},
                        vendor_ids={"jy": "V2"}, failover_lines=[SPARE])  # fmt: skip
    async with calling(env, vendor, fail_over=True) as call:
        await call.skip_to(10)  # placed by now: the back-off is 1 s + 2 s
        await call.send(
            call.event(EventKind.A_DIALING, 10, channel="jy", vendor_call_id="V2"),
            call.event(EventKind.HANGUP, 12, channel="jy", vendor_call_id="V2",
                       close_type=CloseType.A_BUSY),
        )  # fmt: skip
        record = await call.handle.result()
        history = await call.handle.fetch_history()

    placed = vendor.of("place_call")
    assert [p.arg.channel for p in placed] == ["e9"] * TRIES_PER_CHANNEL + ["jy"]
    # The retries of one channel are spaced by the workflow's back-off, in workflow time.
    e9 = placed[:TRIES_PER_CHANNEL]
    gaps = [later.at - earlier.at for earlier, later in zip(e9, e9[1:], strict=False)]
    for gap, delay_s in zip(gaps, RETRY_DELAYS_S, strict=True):
        assert_at(gap, ms(delay_s))
    assert placed[-1].arg.request.display_to_a == SPARE.number
    failovers = vendor.args("take_failover_line")
    assert [f.tried for f in failovers] == [["e9"]]
    assert attempts(vendor) == [
        ("e9", "failed", TRIES_PER_CHANNEL, None),
        ("jy", "placed", 1, "V2"),
    ]
    e9_at, jy_at = (a.at for a in vendor.saves[-1].attempts)
    assert_at(e9_at, call.t0)
    assert jy_at >= e9_at + ms(sum(RETRY_DELAYS_S))
    # Straight after the last e9 error: a timer between two tries is their back-off, and
    # there is none between the last e9 try and jy's (read from the history, not the clock,
    # which a loaded machine's activities move on by seconds).
    assert timers_between_place_requests(history) == [1, 1, 0]
    assert (record.channel, record.agent, record.vendor_call_id) == ("jy", "jy-1", "V2")
    assert (record.close_type, record.close_time) == (CloseType.A_BUSY, call.at(12))
    # The failed channel's line is freed before the spare is taken; each line once.
    names = [r.name for r in vendor.requests]
    assert names.index("release_line") < names.index("take_failover_line")
    assert vendor.lines_released() == [LINE, SPARE]


def health_reports(history: WorkflowHistory) -> int:
    """Placement outcomes the call told ChannelHealthWorkflow (its external signals)."""
    initiated = EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
    return sum(1 for e in history.events if e.event_type == initiated)


async def test_a_429_is_waited_out_on_the_same_vendor_and_never_counts_as_a_failure(
    env: WorkflowEnvironment,
) -> None:
    """More 429s than a channel's tries: each waits the vendor's Retry-After (7 s), then the
    same line again; no failover, and health hears only of the placement."""
    limited = TRIES_PER_CHANNEL + 1  # more 429s than a channel's tries
    vendor = FakeVendor(place_errors={"e9": [RATE_LIMITED] * limited}, failover_lines=[SPARE])
    async with calling(env, vendor, fail_over=True) as call:
        await call.skip_to(7 * limited + 1)
        await call.send(call.event(EventKind.HANGUP, 7 * limited + 2,
                                   close_type=CloseType.A_BUSY))  # fmt: skip
        record = await call.handle.result()
        history = await call.handle.fetch_history()

    placed = vendor.of("place_call")
    assert [p.arg.channel for p in placed] == ["e9"] * (limited + 1)
    for earlier, later in zip(placed, placed[1:], strict=False):
        assert_at(later.at - earlier.at, ms(7))
    assert vendor.of("take_failover_line") == []
    assert attempts(vendor) == [("e9", "placed", 1, "V1")]
    assert (record.channel, record.close_type) == ("e9", CloseType.A_BUSY)
    assert health_reports(history) == 1  # the placement; no failure


async def test_a_429_whose_wait_passes_the_deadline_fails_over_without_a_failure(
    env: WorkflowEnvironment,
) -> None:
    vendor = FakeVendor(place_errors={"e9": [RATE_LIMITED]}, retry_after_s=55,
                        vendor_ids={"jy": "V2"}, failover_lines=[SPARE])  # fmt: skip
    async with calling(env, vendor, fail_over=True, place_deadline_s=30) as call:
        await call.skip_to(1)
        await call.send(call.event(EventKind.HANGUP, 2, channel="jy", vendor_call_id="V2",
                                   close_type=CloseType.A_BUSY))  # fmt: skip
        record = await call.handle.result()
        history = await call.handle.fetch_history()

    assert [p.arg.channel for p in vendor.of("place_call")] == ["e9", "jy"]
    assert (record.channel, record.vendor_call_id) == ("jy", "V2")
    assert health_reports(history) == 1  # jy's placement; e9's 429 was no failure


async def test_a_retry_due_after_the_placement_deadline_is_not_sent(
    env: WorkflowEnvironment,
) -> None:
    """Requested 0.5 s short of its deadline (a worker outage): the first request goes
    out, fails; the retry would go out 1 s later, past the deadline, so the call is closed
    without dialling again, and not failed over either."""
    ago_s = TIMERS.place_deadline_s - RETRY_DELAYS_S[0] / 2
    vendor = FakeVendor(place_errors={"e9": [SERVER_ERROR] * TRIES_PER_CHANNEL},
                        failover_lines=[SPARE])  # fmt: skip
    async with calling(env, vendor, fail_over=True, created_ago_s=ago_s) as call:
        record = await call.handle.result()

    assert len(vendor.of("place_call")) == 1
    assert vendor.of("take_failover_line") == []
    assert attempts(vendor) == [("e9", "expired", 1, None)]
    assert (vendor.saves[-1].attempts[0].error or "").endswith("(not placed in time)")
    assert (record.state, record.close_type) == (CallState.CLOSE, CloseType.OTHER)
    assert_at(record.close_time, call.t0 + ms(RETRY_DELAYS_S[0]))  # when the retry was due
    assert vendor.lines_released() == [LINE]


async def test_a_rejection_is_neither_retried_nor_failed_over(env: WorkflowEnvironment) -> None:
    vendor = FakeVendor(place_errors={"e9": [REJECTED]}, failover_lines=[SPARE])
    async with calling(env, vendor, fail_over=True) as call:
        record = await call.handle.result()

    assert len(vendor.of("place_call")) == 1
    assert vendor.of("take_failover_line") == []
    assert attempts(vendor) == [("e9", "rejected", 1, None)]
    assert (record.state, record.close_type) == (CallState.CLOSE, CloseType.OTHER)
    assert_at(record.close_time, call.t0)  # at once: no back-off, no wait
    assert vendor.lines_released() == [LINE]
    assert vendor.of("reconcile_call") == []  # no vendor call to ask about


@pytest.mark.parametrize("error", [OUTCOME_UNKNOWN, "unclassified"])
async def test_an_unknown_outcome_is_never_placed_again_and_closes_with_7_after_the_wait(
    env: WorkflowEnvironment, error: str
) -> None:
    vendor = FakeVendor(place_errors={"e9": [error]}, failover_lines=[SPARE], noted_vendor_id=None)
    async with calling(env, vendor, fail_over=True) as call:
        record = await call.handle.result()

    assert len(vendor.of("place_call")) == 1
    assert vendor.of("take_failover_line") == []
    assert vendor.args("placed_call_id") == [call.id]  # where the activity would have noted it
    assert vendor.args("unapplied_events") == [call.id]  # what CC stored and never signalled
    assert attempts(vendor) == [("e9", "unknown", 1, None)]
    assert (record.state, record.close_type) == (CallState.CLOSE, CloseType.CHANNEL_NETWORK_ERROR)
    assert_at(record.close_time, call.t0 + ms(TIMERS.place_unknown_wait_s))
    assert vendor.lines_released() == [LINE]


async def test_an_unknown_outcome_is_followed_from_events_stored_and_never_signalled(
    env: WorkflowEnvironment,
) -> None:
    """The process that stored the call's first events died before signalling them, and
    redelivery has not come by the end of the wait: they are the vendor's word all the same."""
    vendor = FakeVendor(place_errors={"e9": [OUTCOME_UNKNOWN]}, noted_vendor_id=None)
    async with calling(env, vendor) as call:
        ringing = call.event(EventKind.A_DIALING, 1).model_copy(update={"inbox_id": 41})
        busy = call.event(EventKind.HANGUP, 2, close_type=CloseType.A_BUSY)
        vendor.unapplied = [ringing, busy.model_copy(update={"inbox_id": 42})]
        record = await call.handle.result()

    assert len(vendor.of("place_call")) == 1
    assert_at(vendor.at("unapplied_events")[0], call.at(TIMERS.place_unknown_wait_s))
    assert attempts(vendor) == [("e9", "placed_unconfirmed", 1, "V1")]
    assert (record.state, record.close_type) == (CallState.CLOSE, CloseType.A_BUSY)
    assert (record.a_call_time, record.close_time) == (call.at(1), call.at(2))
    assert sorted(i for s in vendor.saves for i in s.applied_inbox_ids) == [41, 42]


async def test_a_polled_channels_unknown_outcome_waits_for_the_seats_poll_to_resume(
    env: WorkflowEnvironment,
) -> None:
    """The worker that died with the request out took the seat's poll with it: the seat's
    events come once Temporal has started the poll again. One that comes after the plain
    wait, but before the poll can have resumed plus that wait, is the call's."""
    vendor = FakeVendor(place_errors={"hw": [OUTCOME_UNKNOWN]}, noted_vendor_id=None)
    resumed = POLL_RESUMED_WITHIN.total_seconds()
    ringing_s = TIMERS.place_unknown_wait_s + resumed / 2
    async with calling(env, vendor, line=SEAT) as call:
        await call.skip_to(ringing_s)
        await call.send(
            call.event(EventKind.A_DIALING, ringing_s, channel="hw", vendor_call_id="H1")
        )
        await call.send(
            call.event(
                EventKind.HANGUP,
                ringing_s + 1,
                channel="hw",
                vendor_call_id="H1",
                close_type=CloseType.A_BUSY,
            )
        )
        record = await call.handle.result()

    assert [r.arg.seat for r in vendor.of("claim_seat")] == [SEAT.agent]
    assert len(vendor.of("place_call")) == 1
    assert attempts(vendor) == [("hw", "placed_unconfirmed", 1, "H1")]
    assert (record.state, record.close_type) == (CallState.CLOSE, CloseType.A_BUSY)
    assert record.a_call_time == call.at(ringing_s)


async def test_a_polled_channels_unknown_outcome_closes_with_7_once_its_poll_had_time(
    env: WorkflowEnvironment,
) -> None:
    vendor = FakeVendor(place_errors={"hw": [OUTCOME_UNKNOWN]}, noted_vendor_id=None)
    async with calling(env, vendor, line=SEAT) as call:
        record = await call.handle.result()

    waited = TIMERS.place_unknown_wait_s + POLL_RESUMED_WITHIN.total_seconds()
    assert attempts(vendor) == [("hw", "unknown", 1, None)]
    assert (record.state, record.close_type) == (CallState.CLOSE, CloseType.CHANNEL_NETWORK_ERROR)
    assert_at(record.close_time, call.at(waited))
    assert vendor.lines_released() == [SEAT]


# -- (3) set-up silence and the watchdog ----------------------------------------------------
def silent_set_up_times(call: Call) -> tuple[int, int, int]:
    """A set-up the vendor never reports on: the vendor is asked after ``setup_silence_s``;
    the next question would be a full silence later, but the watchdog comes first, at
    ``max_duration + watchdog_grace`` after the placement: it asks the vendor to hang up and
    waits ``hangup_wait_s`` for its word before closing with 255."""
    check = call.t0 + ms(TIMERS.setup_silence_s)
    watchdog = call.t0 + ms(MAX_DURATION_S + TIMERS.watchdog_grace_s)
    assert watchdog < check + ms(TIMERS.setup_silence_s)  # the timeline this test relies on
    return check, watchdog, watchdog + ms(TIMERS.hangup_wait_s)


async def test_a_silent_set_up_is_reconciled_then_closed_by_the_watchdog(
    env: WorkflowEnvironment,
) -> None:
    vendor = FakeVendor()
    async with calling(env, vendor) as call:
        record = await call.handle.result()
        ended = await call.ended_at()

    check, watchdog, closed = silent_set_up_times(call)
    assert (record.state, record.close_type) == (CallState.CLOSE, CloseType.OTHER)
    assert_at(record.close_time, closed)
    assert record.close_time is not None
    asked = vendor.of("reconcile_call")
    assert [(r.arg.channel, r.arg.vendor_call_id) for r in asked] == [("e9", "V1")] * 2
    assert_at(asked[0].at, check)
    # A plain close with no bridge says nothing of why: the vendor is asked once more.
    assert_at(asked[1].at, record.close_time)
    hangups = vendor.of("hangup_call")
    assert [h.arg.vendor_call_id for h in hangups] == ["V1"]
    assert_at(hangups[0].at, watchdog)
    assert vendor.lines_released() == [LINE]
    assert_at(ended, record.close_time + ms(TIMERS.late_event_window_s))


async def test_the_vendors_late_word_corrects_the_watchdogs_close_without_freeing_again(
    env: WorkflowEnvironment,
) -> None:
    vendor = FakeVendor()
    async with calling(env, vendor) as call:
        _, watchdog, closed = silent_set_up_times(call)
        # Within the late-event window after the watchdog's close, the vendor reports that
        # leg A was unreachable, before CC gave up: a real reason beats 255 (RECORD.md).
        await call.skip_to((closed - call.t0) / 1000 + TIMERS.late_event_window_s / 2)
        assert (await call.handle.query(CallWorkflow.status)).close_type is CloseType.OTHER
        late_at_s = (watchdog - call.t0) / 1000 + 1
        await call.send(call.event(EventKind.HANGUP, late_at_s,
                                   close_type=CloseType.A_UNREACHABLE))  # fmt: skip
        record = await call.handle.result()

    assert (record.close_type, record.close_time) == (CloseType.A_UNREACHABLE, call.at(late_at_s))
    assert vendor.saves[-1].record == record
    assert vendor.saves[-1].release_line is None
    assert vendor.lines_released() == [LINE]


# -- (4) max duration ---------------------------------------------------------------------
async def test_a_bridged_call_is_hung_up_by_cc_at_its_max_duration(
    env: WorkflowEnvironment,
) -> None:
    vendor = FakeVendor()
    async with calling(env, vendor) as call:
        await call.skip_to(5)
        await call.talk(bridged_s=5)
        record = await call.handle.result()

    bridged = call.at(5)
    # CC closes at the bridge + max_duration to the millisecond (not when its timer ran).
    assert (record.close_type, record.close_time) == (
        CloseType.MAX_DURATION, bridged + ms(MAX_DURATION_S))  # fmt: skip
    assert record.duration == MAX_DURATION_S
    hangups = vendor.of("hangup_call")
    assert [(h.arg.channel, h.arg.vendor_call_id) for h in hangups] == [("e9", "V1")]
    assert_at(hangups[0].at, bridged + ms(MAX_DURATION_S))
    # The record says 5 (and frees the line) before the vendor is asked to hang up.
    assert first_closed_save(vendor) < vendor.requests.index(hangups[0])
    assert vendor.lines_released() == [LINE]
    assert vendor.of("reconcile_call") == []  # bridged, nothing missing, never silent long


async def test_a_silent_bridged_call_is_asked_less_often_each_time_nothing_is_new(
    env: WorkflowEnvironment,
) -> None:
    """Bridged at +5 s with connected_check_s = 10: the vendor is asked at +15 s, then (it
    had nothing new) a doubled period later, +35 s; CC cuts the call at +65 s, before the
    third question (+75 s) is due. Issue 12: thousands of long calls are not each asked every
    period."""
    vendor = FakeVendor()
    async with calling(env, vendor, connected_check_s=10) as call:
        await call.skip_to(5)
        heard = await call.talk(bridged_s=5)
        record = await call.handle.result()

    bridged, check = call.at(5), ms(10)
    asked = vendor.of("reconcile_call")
    assert len(asked) == 2
    assert_at(asked[0].at, heard + check)
    assert_at(asked[1].at, asked[0].at + 2 * check)
    assert asked[1].at + 4 * check > bridged + ms(MAX_DURATION_S)  # the third is never due
    assert (record.close_type, record.close_time) == (
        CloseType.MAX_DURATION, bridged + ms(MAX_DURATION_S))  # fmt: skip


# -- (5) CC's hang-up (the update) ----------------------------------------------------------
async def test_a_hangup_in_set_up_closes_at_once_and_one_after_the_close_is_refused(
    env: WorkflowEnvironment,
) -> None:
    vendor = FakeVendor()
    async with calling(env, vendor) as call:
        await call.skip_to(3)
        asked = await call.now()
        closed: CallRecord = await hang_up(call)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await hang_up(call)
        record = await call.handle.result()

    assert (closed.state, closed.close_type) == (CallState.CLOSE, CloseType.NORMAL)
    assert_at(closed.close_time, asked)  # at once: no hangup_wait_s for a set-up
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == ALREADY_CLOSED
    assert (record.close_type, record.close_time) == (CloseType.NORMAL, closed.close_time)
    assert vendor.args("hangup_call")[0].vendor_call_id == "V1"
    assert len(vendor.of("hangup_call")) == 1  # the refused update asked nothing
    assert vendor.lines_released() == [LINE]


async def test_a_hangup_of_a_bridged_call_closes_after_hangup_wait_if_the_vendor_is_silent(
    env: WorkflowEnvironment,
) -> None:
    vendor = FakeVendor()
    async with calling(env, vendor) as call:
        await call.skip_to(5)
        await call.talk(bridged_s=5)
        await call.skip_to(20)
        asked = await call.now()
        talking: CallRecord = await hang_up(call)
        record = await call.handle.result()

    assert talking.state is CallState.CONN  # a bridged call ends with the vendor's word...
    assert record.close_type is CloseType.NORMAL  # ... or after hangup_wait_s regardless
    assert_at(record.close_time, asked + ms(TIMERS.hangup_wait_s))
    assert record.close_time is not None
    assert record.duration == -(-(record.close_time - call.at(5)) // 1000)  # whole seconds, up
    assert [h.vendor_call_id for h in vendor.args("hangup_call")] == ["V1"]
    assert vendor.lines_released() == [LINE]


# -- (6) late events --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url_after_s",
    [10, 35],
    ids=["while-the-copy-waits-for-it", "in-the-late-event-window-after-the-copy-gave-up"],
)
async def test_a_recording_url_arriving_after_the_close_is_copied(
    env: WorkflowEnvironment, url_after_s: float
) -> None:
    """The close starts a wait of ``late_event_window_s`` for the recording URL; then the
    late-event window (as long again) still copies one that comes."""
    vendor = FakeVendor()
    url = "https://vendor.example/rec/1.wav"
    async with calling(env, vendor, record_audio=True) as call:
        await call.skip_to(5)
        await call.talk(bridged_s=5)
        await call.skip_to(20)
        hung_up = await call.send(call.event(EventKind.HANGUP, 20, close_type=CloseType.NORMAL))
        await call.skip_to(20 + url_after_s)
        ready = call.event(EventKind.RECORDING_READY, 20 + url_after_s, recording_url=url)
        url_sent = await call.send(ready)
        record = await call.handle.result()
        ended = await call.ended_at()

    window = ms(TIMERS.late_event_window_s)
    gave_up = url_sent - hung_up >= window  # the copy's wait was over when the URL came
    assert gave_up is (url_after_s > TIMERS.late_event_window_s)
    copies = vendor.of("copy_recording")
    assert [(c.arg.url, c.arg.cc_call_id, c.arg.created) for c in copies] == [
        (url, call.id, call.t0)]  # fmt: skip
    assert_at(copies[0].at, url_sent)
    assert (record.ch_audio_url, record.audio_url, record.recording_error) == (
        url, f"local:{call.id}", None)  # fmt: skip
    assert (record.close_type, record.close_time) == (CloseType.NORMAL, call.at(20))
    assert vendor.saves[-1].record == record
    # Gave up waiting: the missing recording is noted (and saved) until the copy clears it.
    noted = [s.record.recording_error for s in vendor.saves]
    assert (NO_RECORDING_YET in noted) is gave_up
    assert set(noted) <= {NO_RECORDING_YET, None} and noted[-1] is None
    # The late-event window starts when the copy step is done: after the copy, or when its
    # wait ran out (and then the URL's copy happens within the window).
    assert_at(ended, (hung_up + window if gave_up else url_sent) + window)
    assert vendor.lines_released() == [LINE]


async def test_a_hangup_the_vendor_refuses_keeps_the_call_and_its_line_until_the_watchdog(
    env: WorkflowEnvironment,
) -> None:
    vendor = FakeVendor(hangup_error=REJECTED)
    async with calling(env, vendor) as call:
        await call.skip_to(3)
        asked = await call.now()
        still: CallRecord = await hang_up(call)
        record = await call.handle.result()

    assert (still.state, still.close_type) == (CallState.INIT, None)  # not closed...
    check, watchdog, closed = silent_set_up_times(call)
    # ... and still followed: reconciled after the silence, closed by the watchdog (whose
    # own hang-up fails too), with no hangup_wait_s close for the refused hang-up.
    assert (record.close_type, record.state) == (CloseType.OTHER, CallState.CLOSE)
    assert_at(record.close_time, closed)
    assert_at(vendor.at("reconcile_call")[0], check)
    hangups = vendor.at("hangup_call")
    assert len(hangups) == 2
    assert_at(hangups[0], asked)
    assert_at(hangups[1], watchdog)
    # The line was held all along: freed once, with the first save of the closed record.
    assert vendor.lines_released() == [LINE]
    assert vendor.requests[first_closed_save(vendor)].arg.release_line == LINE
