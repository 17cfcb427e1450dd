"""The activities CallWorkflow runs, each with its timeouts and retry policy.

Workflow-side code (deterministic: it only schedules activities and signals), kept apart so
that ``workflows/call.py`` reads like the call's process and every time-out is in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from callflow.summary import save_summary
    from channels.events import CallEvent
    from contracts import activities, call
    from contracts.errors import NON_RETRYABLE_RECORDING_ERRORS, OUTCOME_UNKNOWN, REJECTED
    from contracts.health import PlacementOutcome
    from contracts.ids import HEALTH_WORKFLOW_ID, PLACEMENT_SIGNAL, placement_queue

VENDOR_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=4,
    non_retryable_error_types=[REJECTED, OUTCOME_UNKNOWN],
)
# A place request is one attempt: Temporal must not retry it, since only the workflow can
# tell a request that never reached the vendor (retry, fail over) from one whose outcome is
# unknown (a timeout, a crashed worker: never placed again). CallWorkflow retries the former.
PLACE_ONCE = RetryPolicy(maximum_attempts=1)
PLACE_TIMEOUT = timedelta(seconds=15)
# What an unknown place outcome looks up in the store before it decides.
LOOKUP_RETRY = RetryPolicy(maximum_attempts=5)
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
QUICK = timedelta(seconds=30)
A = TypeVar("A")


async def _quick(
    activity: Callable[[A], Any], arg: A, retry: RetryPolicy, summary: str, local: bool = False
) -> Any:
    """One short activity (``QUICK``) of the call, as a local activity when ``local``; its
    wrapper below says what it returns."""
    run = workflow.execute_local_activity if local else workflow.execute_activity
    return await run(  # type: ignore[operator]
        activity, arg, start_to_close_timeout=QUICK, retry_policy=retry, summary=summary
    )


# Calls begun since issue 12 run the lean shape: the record saved by a local activity, one
# timer at a time, and no marker for the older patches (every lean call has them).
LEAN = "issue-12-lean-call"
# Calls that ask their vendor since this patch ask by a local activity: with thousands of
# long calls out of the worker's cache, each question is one replay instead of two.
LOCAL_CHECK = "issue-12-local-check"


def lean() -> bool:
    """Whether this call runs the lean shape. CallWorkflow asks first thing, so the answer
    holds for the whole call: a call begun on older code keeps its older shape on replay."""
    return workflow.patched(LEAN)


def patched_before(patch_id: str) -> bool:
    """``workflow.patched`` for a patch older than ``LEAN``: a lean call has it without
    recording its marker (and its search attribute upsert) on every call."""
    return lean() or workflow.patched(patch_id)


# Place requests go to their vendor's own task queue (rate-limited to its calls per second)
# since this patch; before it, to the call's.
PLACEMENT_QUEUE = "issue-24-placement-queue-per-vendor"


async def place_call(inp: call.PlaceCallInput, queue_wait: timedelta) -> call.PlaceCallResult:
    """One place request. On the vendor's placement queue it waits its turn under the
    vendor's CPS, at most ``queue_wait`` (what is left of the placement deadline: a request
    that never started placed nothing); once started it has ``PLACE_TIMEOUT``."""
    queue = workflow.info().task_queue
    if workflow.patched(PLACEMENT_QUEUE):
        queue = placement_queue(queue, inp.channel)
    return await workflow.execute_activity(
        activities.place_call,
        inp,
        task_queue=queue,
        schedule_to_start_timeout=queue_wait,
        start_to_close_timeout=PLACE_TIMEOUT,
        retry_policy=PLACE_ONCE,
        summary=f"place {inp.channel}",
    )


async def reconcile_call(inp: call.ReconcileInput) -> list[CallEvent]:
    """Ask the vendor for the call's result; a failure is the caller's to shrug off.

    Since ``LOCAL_CHECK``, a local activity (a ``reconcile_call`` marker in the history): the
    timer's workflow task asks and goes on in one go, instead of a second workflow task (a
    second replay, for a call out of the worker's cache) for the activity's result. The patch
    is asked here, at the first question, so calls that never ask carry no marker for it."""
    retry = RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_attempts=3,
        non_retryable_error_types=[REJECTED],
    )
    asked = f"ask {inp.channel} for the call's result"
    if workflow.patched(LOCAL_CHECK):
        return await _quick(activities.reconcile_call, inp, retry, asked, local=True)
    return await _quick(activities.reconcile_call, inp, retry, asked)


async def apply_late_events(events: list[CallEvent]) -> call.LateEventsResult:
    summary = f"apply {len(events)} late event(s)"
    return await _quick(activities.apply_late_events, events, STORE_RETRY, summary)


async def placed_call_id(cc_call_id: str) -> str | None:
    summary = "look up the placed call's vendor id"
    return await _quick(activities.placed_call_id, cc_call_id, LOOKUP_RETRY, summary)


async def unapplied_events(cc_call_id: str) -> list[CallEvent]:
    summary = "look for the call's events stored, not signalled"
    return await _quick(activities.unapplied_events, cc_call_id, LOOKUP_RETRY, summary)


async def note_recording(outcome: call.RecordingOutcome) -> None:
    await _quick(activities.note_recording, outcome, STORE_RETRY, "note the recording")


async def hang_up(inp: call.HangupInput) -> None:
    await _quick(activities.hangup_call, inp, VENDOR_RETRY, f"hang up on {inp.channel}")


async def save_record(inp: call.SaveRecordInput, max_attempts: int = 0) -> None:
    """Retried with back-off; ``max_attempts`` bounds it (0: until it works).

    In a lean call, a local activity: one short write, run by the worker that holds the
    workflow within the same workflow task (a marker named ``save_record`` in the history),
    instead of an activity task sent through the server and a second workflow task for its
    result.
    """
    retry = STORE_RETRY
    if max_attempts:
        retry = RetryPolicy(
            initial_interval=timedelta(seconds=1),
            maximum_interval=timedelta(seconds=30),
            maximum_attempts=max_attempts,
        )
    summary = save_summary(inp.record, line_freed=inp.release_line is not None)
    await _quick(activities.save_record, inp, retry, summary, local=lean())


async def release_line(inp: call.ReleaseLineInput) -> None:
    summary = f"free line {inp.line.channel} {inp.line.agent}"
    await _quick(activities.release_line, inp, STORE_RETRY, summary)


async def take_failover_line(inp: call.FailoverInput) -> call.LineLease | None:
    summary = "take a line on the next channel"
    return await _quick(activities.take_failover_line, inp, STORE_RETRY, summary)


async def take_due_line(inp: call.TakeLineInput) -> call.TakenLine:
    return await _quick(activities.take_due_line, inp, STORE_RETRY, "take a line: the call is due")


async def start_next_try(inp: call.NextTryInput) -> call.NextTry | None:
    summary = f"next try {inp.record.try_number + 1}: record and start it"
    return await _quick(activities.start_next_try, inp, STORE_RETRY, summary)


async def copy_recording(
    inp: call.CopyRecordingInput, timers: call.RecordingTimers
) -> call.CopyRecordingResult:
    """The vendor answers 404 until it publishes: the RetryPolicy asks again, with back-off,
    until the deadline; an expired or forbidden link ends it at once."""
    return await workflow.execute_activity(
        activities.copy_recording,
        inp,
        schedule_to_close_timeout=timedelta(seconds=timers.deadline_s),
        start_to_close_timeout=timedelta(minutes=5),
        heartbeat_timeout=timedelta(seconds=30),
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=timers.retry_initial_s),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=timers.retry_max_s),
            non_retryable_error_types=list(NON_RETRYABLE_RECORDING_ERRORS),
        ),
        summary="copy recording",
    )


async def report_placement(outcome: PlacementOutcome) -> None:
    """Tell ChannelHealthWorkflow at once; a missing health workflow must not hurt a call."""
    if not patched_before("report-placement-to-health"):
        return  # a call placed before health reports existed
    health = workflow.get_external_workflow_handle(HEALTH_WORKFLOW_ID)
    try:
        await health.signal(PLACEMENT_SIGNAL, outcome)
    except Exception:  # noqa: BLE001 - not found or not reachable: routing goes on as is
        workflow.logger.warning("health workflow not signalled (%s)", outcome.channel)
