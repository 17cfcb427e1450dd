"""The activities' signatures: what workflows call, by name and type, without importing the
modules that implement them (``activities/``).

Each stub carries the name the worker registers (the implementing method's name) and the
input and output types the data converter needs; ``tests/contracts`` checks the worker
registers exactly these names with these signatures. The bodies are never run.
"""

from __future__ import annotations

from typing import NoReturn

from temporalio import activity

from channels.events import CallEvent
from contracts import call, health
from contracts.inbox import RedeliveryConfig


def _stub() -> NoReturn:
    raise NotImplementedError("a signature only: the worker runs the implementation")


# -- vendors (activities/channels.py) -------------------------------------------------------
@activity.defn(name="place_call")
async def place_call(inp: call.PlaceCallInput) -> call.PlaceCallResult:
    _stub()


@activity.defn(name="hangup_call")
async def hangup_call(inp: call.HangupInput) -> None:
    _stub()


@activity.defn(name="reconcile_call")
async def reconcile_call(inp: call.ReconcileInput) -> list[CallEvent]:
    _stub()


# -- the record (activities/records.py) -----------------------------------------------------
@activity.defn(name="save_record")
def save_record(inp: call.SaveRecordInput) -> None:
    _stub()


@activity.defn(name="release_line")
def release_line(inp: call.ReleaseLineInput) -> bool:
    _stub()


@activity.defn(name="take_failover_line")
def take_failover_line(inp: call.FailoverInput) -> call.LineLease | None:
    _stub()


@activity.defn(name="take_due_line")
def take_due_line(inp: call.TakeLineInput) -> call.TakenLine:
    _stub()


@activity.defn(name="start_next_try")
def start_next_try(inp: call.NextTryInput) -> call.NextTry | None:
    _stub()


@activity.defn(name="apply_late_events")
def apply_late_events(events: list[CallEvent]) -> call.LateEventsResult:
    _stub()


@activity.defn(name="placed_call_id")
def placed_call_id(cc_call_id: str) -> str | None:
    _stub()


@activity.defn(name="unapplied_events")
def unapplied_events(cc_call_id: str) -> list[CallEvent]:
    _stub()


@activity.defn(name="note_recording")
def note_recording(inp: call.RecordingOutcome) -> None:
    _stub()


# -- recordings (activities/recordings.py) --------------------------------------------------
@activity.defn(name="copy_recording")
async def copy_recording(inp: call.CopyRecordingInput) -> call.CopyRecordingResult:
    _stub()


# -- inbox redelivery (activities/inbox.py) -------------------------------------------------
@activity.defn(name="redeliver_inbox")
async def redeliver_inbox(config: RedeliveryConfig) -> int:
    _stub()


# -- channel health (activities/health.py) --------------------------------------------------
@activity.defn(name="probe_channels")
async def probe_channels(inp: health.ProbeInput) -> list[health.Observation]:
    _stub()


@activity.defn(name="write_routing")
def write_routing(verdicts: list[health.Verdict]) -> None:
    _stub()


@activity.defn(name="reconcile_leases")
async def reconcile_leases(inp: health.ReconcileLeasesInput) -> health.ReconcileLeasesResult:
    _stub()
