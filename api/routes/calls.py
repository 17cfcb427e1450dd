"""/v1/calls: place a callback, read it live, hang it up, list its vendor events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import JSONResponse
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from api.deps import CallerDep, StateDep, TemporalDep
from api.errors import Problem
from api.schemas import CallCreate, CallPublic, EventPublic
from api.services import place_call
from core.types import CallState
from store import calls, inbox
from store.models import CallRecordRow
from workflows.call import CallWorkflow
from workflows.types import workflow_id

router = APIRouter(prefix="/v1/calls", tags=["calls"])


async def _own_call(state: StateDep, caller: CallerDep, call_id: str) -> CallRecordRow:
    row = await state.in_store(lambda s: calls.get_call(s, caller.tenant.id, call_id))
    if row is None:
        raise Problem(404, "not_found", "no such call")
    return row


@router.post("", status_code=201, response_model=CallPublic)
async def create_call(
    body: CallCreate,
    state: StateDep,
    temporal: TemporalDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(max_length=64)] = None,
) -> Response:
    placement = await place_call(state, temporal, caller, body, idempotency_key)
    view = CallPublic.from_row(placement.row)
    return JSONResponse(
        view.model_dump(mode="json"),
        status_code=201 if placement.created else 200,
        headers={"Location": f"/v1/calls/{view.id}"},
    )


@router.get("/{call_id}", response_model=CallPublic)
async def get_call(call_id: str, state: StateDep, caller: CallerDep) -> CallPublic:
    return CallPublic.from_row(await _own_call(state, caller, call_id))


@router.post("/{call_id}/hangup", status_code=202, response_model=CallPublic)
async def hangup_call(
    call_id: str, state: StateDep, temporal: TemporalDep, caller: CallerDep
) -> CallPublic:
    row = await _own_call(state, caller, call_id)
    if row.state == CallState.CLOSE.value:
        raise Problem(409, "already_closed", "the call has already ended")
    handle = temporal.get_workflow_handle(workflow_id(call_id))
    try:
        # Accepted is enough: the vendor is asked in the background and the close arrives
        # as the vendor's own hang-up event.
        await handle.start_update(CallWorkflow.hangup, wait_for_stage=WorkflowUpdateStage.ACCEPTED)
    except WorkflowUpdateFailedError as exc:
        if isinstance(exc.cause, ApplicationError) and exc.cause.type == "AlreadyClosed":
            raise Problem(409, "already_closed", "the call has already ended") from exc
        raise
    except RPCError as exc:
        raise Problem(409, "already_closed", "the call is no longer running") from exc
    return CallPublic.from_row(row)


@router.get("/{call_id}/events", response_model=list[EventPublic])
async def call_events(call_id: str, state: StateDep, caller: CallerDep) -> list[EventPublic]:
    await _own_call(state, caller, call_id)
    rows = await state.in_store(lambda s: inbox.events_for_call(s, call_id))
    return [EventPublic.model_validate(r.model_dump()) for r in rows]
