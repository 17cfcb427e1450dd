"""Stand-in activities for CallWorkflow tests on the time-skipping test server.

Each fake is registered under the name of its signature stub in ``contracts/activities.py``
(the name the workflow schedules),
records what the workflow asked (with the test server's time of the request) and answers
from a script the test sets up front.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from channels.events import CallEvent
from channels.registry import CHANNELS
from contracts.call import (
    CopyRecordingInput,
    CopyRecordingResult,
    FailoverInput,
    HangupInput,
    LateEventsResult,
    LineLease,
    PlaceCallInput,
    PlaceCallResult,
    ReconcileInput,
    RecordingOutcome,
    ReleaseLineInput,
    SaveRecordInput,
    TakeLineInput,
    TakenLine,
)
from contracts.errors import RATE_LIMITED
from contracts.ids import placement_queue
from contracts.seat import ClaimSeatInput


@dataclass(frozen=True)
class Request:
    """One activity request as the fake saw it."""

    name: str
    arg: Any
    at: int  # the test server's time the attempt was scheduled, epoch ms
    attempt: int


@dataclass
class FakeVendor:
    """What the stand-in activities answer, and every request they got."""

    # Error types place_call raises on successive requests to a channel; once a channel's list
    # is used up, the call is placed with ``vendor_ids[channel]`` (default "V1").
    place_errors: dict[str, list[str]] = field(default_factory=dict)
    vendor_ids: dict[str, str] = field(default_factory=dict)
    failover_lines: list[LineLease | None] = field(default_factory=list)  # in order, then None
    # take_due_line's answers, in order; once used up, ``due_line`` (None: "line_busy").
    due_answers: list[TakenLine] = field(default_factory=list)
    due_line: LineLease | None = None
    reconcile_answers: list[list[CallEvent]] = field(default_factory=list)  # in order, then []
    noted_vendor_id: str | None = None  # placed_call_id's answer
    unapplied: list[CallEvent] = field(default_factory=list)  # unapplied_events' answer
    hangup_error: str | None = None  # hangup_call fails with this error type (not retried)
    retry_after_s: float = 7.0  # what a RATE_LIMITED place error asks to wait
    requests: list[Request] = field(default_factory=list)
    clock: Callable[[], Awaitable[int]] | None = None  # the test server's, for local activities

    # -- reading what was asked -----------------------------------------------------------
    def of(self, name: str) -> list[Request]:
        return [r for r in self.requests if r.name == name]

    def args(self, name: str) -> list[Any]:
        return [r.arg for r in self.of(name)]

    def at(self, name: str) -> list[int]:
        return [r.at for r in self.of(name)]

    @property
    def saves(self) -> list[SaveRecordInput]:
        return self.args("save_record")

    def lines_released(self) -> list[LineLease]:
        """Every line freed, in order: with a closed record's save, or by release_line."""
        freed: list[LineLease] = []
        for r in self.requests:
            if r.name == "save_record" and r.arg.release_line is not None:
                freed.append(r.arg.release_line)
            elif r.name == "release_line":
                freed.append(r.arg.line)
        return freed

    # -- the activities -------------------------------------------------------------------
    async def _note(self, name: str, arg: object) -> None:
        info = activity.info()
        at = int(info.current_attempt_scheduled_time.timestamp() * 1000)
        if info.is_local and self.clock is not None:
            # A local activity's schedule time is the worker's wall clock, not the test
            # server's skipped one; the server's clock stands still while it runs.
            at = await self.clock()
        self.requests.append(Request(name=name, arg=arg, at=at, attempt=info.attempt))

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="place_call")
        async def place_call(inp: PlaceCallInput) -> PlaceCallResult:
            await self._note("place_call", inp)
            errors = self.place_errors.get(inp.channel, [])
            if errors:
                error_type = errors.pop(0)
                if error_type == "unclassified":
                    raise RuntimeError("adapter bug")  # no error type anybody classified
                if error_type == RATE_LIMITED:  # a 429 and its Retry-After
                    raise ApplicationError("vendor said 429", self.retry_after_s, type=error_type)
                raise ApplicationError(f"vendor said {error_type}", type=error_type)
            return PlaceCallResult(vendor_call_id=self.vendor_ids.get(inp.channel, "V1"))

        @activity.defn(name="hangup_call")
        async def hangup_call(inp: HangupInput) -> None:
            await self._note("hangup_call", inp)
            if self.hangup_error:
                raise ApplicationError("vendor refused", type=self.hangup_error, non_retryable=True)

        @activity.defn(name="reconcile_call")
        async def reconcile_call(inp: ReconcileInput) -> list[CallEvent]:
            await self._note("reconcile_call", inp)
            return self.reconcile_answers.pop(0) if self.reconcile_answers else []

        @activity.defn(name="save_record")
        async def save_record(inp: SaveRecordInput) -> None:
            await self._note("save_record", inp)

        @activity.defn(name="release_line")
        async def release_line(inp: ReleaseLineInput) -> bool:
            await self._note("release_line", inp)
            return True

        @activity.defn(name="take_failover_line")
        async def take_failover_line(inp: FailoverInput) -> LineLease | None:
            await self._note("take_failover_line", inp)
            return self.failover_lines.pop(0) if self.failover_lines else None

        @activity.defn(name="take_due_line")
        async def take_due_line(inp: TakeLineInput) -> TakenLine:
            await self._note("take_due_line", inp)
            if self.due_answers:
                return self.due_answers.pop(0)
            if self.due_line is None:
                return TakenLine(wait_reason="line_busy")
            return TakenLine(line=self.due_line, may_fail_over=True)

        @activity.defn(name="copy_recording")
        async def copy_recording(inp: CopyRecordingInput) -> CopyRecordingResult:
            await self._note("copy_recording", inp)
            return CopyRecordingResult(
                audio_url=f"local:{inp.cc_call_id}", size=1, content_type="audio/wav"
            )

        @activity.defn(name="apply_late_events")
        async def apply_late_events(events: list[CallEvent]) -> LateEventsResult:
            await self._note("apply_late_events", events)
            return LateEventsResult(found=True)

        @activity.defn(name="note_recording")
        async def note_recording(inp: RecordingOutcome) -> None:
            await self._note("note_recording", inp)

        @activity.defn(name="placed_call_id")
        async def placed_call_id(cc_call_id: str) -> str | None:
            await self._note("placed_call_id", cc_call_id)
            return self.noted_vendor_id

        @activity.defn(name="unapplied_events")
        async def unapplied_events(cc_call_id: str) -> list[CallEvent]:
            await self._note("unapplied_events", cc_call_id)
            return self.unapplied

        @activity.defn(name="claim_seat")
        async def claim_seat(inp: ClaimSeatInput) -> None:
            await self._note("claim_seat", inp)  # a polled channel's seat: signed in, polled

        return [place_call, hangup_call, reconcile_call, save_record,
                release_line, take_failover_line, take_due_line, copy_recording,
                apply_late_events, note_recording, placed_call_id, unapplied_events,
                claim_seat]  # fmt: skip


@contextlib.asynccontextmanager
async def call_workers(
    client: Client,
    queue: str,
    activities: Sequence[Callable[..., Any]],
    workflows: Sequence[type],
    **options: Any,
) -> AsyncIterator[None]:
    """A test's worker on ``queue`` and, as ``worker.build_worker`` runs them, one on each
    vendor's placement queue taking the place requests (``place_call`` of ``activities``)."""
    place = [a for a in activities if a.__name__ == "place_call"]
    assert place, "the place request's activity is named place_call (its function too)"
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(
            Worker(client, task_queue=queue, activities=activities, workflows=workflows, **options)
        )
        for name in CHANNELS:
            placing = Worker(client, task_queue=placement_queue(queue, name), activities=place)
            await stack.enter_async_context(placing)
        yield
