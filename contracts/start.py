"""How a call is born, whichever way it comes: ``POST /v1/calls`` (api/services.py), an e9 or
jy inbound call (api/inbound.py), a ring on an hw seat (activities/seat_rings.py). One path:

1. the row is written and, in the same transaction, the app's first ``call.state`` is queued
   (``store.placement.record_born``): no call is born untold;
2. ``call_input``: the workflow's input from the stored record, its line and its routing, with
   the deployment's timers;
3. ``start_call``: the CallWorkflow started once (its id from the call's, never reused), with
   the search attributes the UI filters on (no number among them) and the UI's summary and
   details of the call (``callflow.summary``: masked numbers, ISO times; sealed like every
   payload).

What a failed start means differs per caller (the API undoes a call Temporal surely did not
take; an inbound ring is tried again at its next poll), so errors are theirs to handle.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from callflow.record import CallRecord
from callflow.summary import start_details, start_summary
from channels.registry import Settings
from contracts.call import CallInput, CallPolicy, LineLease, Routing
from contracts.config import call_timers, recording_timers, seat_timers
from contracts.ids import CALL_WORKFLOW, SA_CALL_STATE, SA_CHANNEL, SA_TENANT, workflow_id
from core.types import CallState


def call_input(
    settings: Settings,
    record: CallRecord,
    line: LineLease | None,
    routing: Routing,
    max_duration_s: int,
    record_audio: bool,
    policy: CallPolicy | None = None,
) -> CallInput:
    """The CallWorkflow's input for a call just recorded (``line`` None: a scheduled call,
    which takes its line when due)."""
    return CallInput(
        record=record,
        line=line,
        max_duration_s=max_duration_s,
        routing=routing,
        recording=recording_timers(settings),
        seat=seat_timers(settings),
        record_audio=record_audio,
        timers=call_timers(settings),
        policy=policy or CallPolicy(),
    )


def call_start_options(inp: CallInput) -> dict[str, Any]:
    """Keyword arguments for ``Client.start_workflow`` of the call ``inp``."""
    record = inp.record
    return {
        "search_attributes": TypedSearchAttributes(
            [
                SearchAttributePair(SA_CALL_STATE, CallState(record.state).value),
                SearchAttributePair(SA_CHANNEL, record.channel),
                SearchAttributePair(SA_TENANT, record.tenant),
            ]
        ),
        "static_summary": start_summary(record),
        "static_details": start_details(record, inp.max_duration_s),
    }


async def start_call(
    client: Client, inp: CallInput, task_queue: str, existing: bool = False
) -> None:
    """Start the call's CallWorkflow. ``existing``: it may be running already (a replayed
    request): the running one is the answer. A finished one is never started again."""
    await client.start_workflow(
        CALL_WORKFLOW,
        inp,
        id=workflow_id(inp.record.cc_call_id),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=(
            WorkflowIDConflictPolicy.USE_EXISTING if existing else WorkflowIDConflictPolicy.FAIL
        ),
        **call_start_options(inp),
    )
