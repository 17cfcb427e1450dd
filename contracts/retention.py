"""The retention sweep's names and types (issue 21): the ``cc-retention`` Temporal Schedule
starts a RetentionWorkflow, which runs ``purge_expired`` once per part."""

from __future__ import annotations

from enum import StrEnum
from typing import NoReturn

from pydantic import BaseModel
from temporalio import activity

from contracts.ids import TASK_QUEUE_DEFAULT

RETENTION_WORKFLOW = "RetentionWorkflow"
RETENTION_SCHEDULE_ID = "cc-retention"  # the schedule, and the id its workflows start with


def retention_schedule_id(task_queue: str) -> str:
    """``cc-retention``; a deployment on its own task queue in a shared namespace (a test
    stack, a second CC) has its own schedule beside it."""
    return (
        RETENTION_SCHEDULE_ID if task_queue == TASK_QUEUE_DEFAULT else f"cc-retention-{task_queue}"
    )


class PurgePart(StrEnum):
    CALLS = "calls"  # a call's raw vendor events and recording, past its tenant's retention
    ORPHAN_EVENTS = "orphan events"  # events of no call (or a purged one)
    SEAT_SESSIONS = "seat sessions"  # hw seat sessions not written for the retention


class PurgeOutcome(BaseModel):
    part: PurgePart
    calls: int = 0  # calls purged
    events: int = 0  # raw vendor events deleted
    recordings: int = 0  # recording objects deleted from storage
    sessions: int = 0  # seat sessions deleted
    batches: int = 0


class RetentionResult(BaseModel):
    parts: list[PurgeOutcome]


@activity.defn(name="purge_expired")
async def purge_expired(part: PurgePart) -> PurgeOutcome:
    """The sweep of one part (activities/retention.py): batch after batch, each its own short
    transaction, heartbeating, until nothing past its retention is left."""
    _stub()


def _stub() -> NoReturn:
    raise NotImplementedError("a signature only: the worker runs the implementation")
