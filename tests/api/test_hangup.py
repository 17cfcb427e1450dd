"""Issue 9: ``POST /v1/calls/{id}/hangup`` answers what happened, not 409 for any Temporal
error: 409 only for a call that has ended, 503 when Temporal cannot be asked, 202 when the
workflow is gone but the record is still open (the lease reconciler ends that call)."""

from __future__ import annotations

import pytest
from sqlmodel import Session
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from contracts.ids import workflow_id
from store import calls, series
from store.db import now_ms
from tests.api.conftest import Harness, not_found
from tests.api.test_placement import BODY


async def placed(harness: Harness) -> str:
    response = await harness.api.post("/v1/calls", json=BODY)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def close_row(harness: Harness, call_id: str) -> None:
    with Session(harness.state.engine) as session:
        row = calls.get_call_any_tenant(session, call_id)
        assert row is not None
        row.state, row.close_type = "close", "0"
        session.add(row)
        session.commit()


async def test_a_running_call_is_accepted(harness: Harness) -> None:
    call_id = await placed(harness)
    response = await harness.api.post(f"/v1/calls/{call_id}/hangup")
    assert response.status_code == 202
    assert harness.temporal.updates == [workflow_id(call_id)]


async def test_the_validators_already_closed_is_409(harness: Harness) -> None:
    call_id = await placed(harness)
    rejected = ApplicationError("call already closed", type="AlreadyClosed")
    harness.temporal.update_error = WorkflowUpdateFailedError(rejected)
    response = await harness.api.post(f"/v1/calls/{call_id}/hangup")
    assert (response.status_code, response.json()["code"]) == (409, "already_closed")


async def test_a_closed_record_is_409_without_asking_temporal(harness: Harness) -> None:
    call_id = await placed(harness)
    close_row(harness, call_id)
    response = await harness.api.post(f"/v1/calls/{call_id}/hangup")
    assert (response.status_code, response.json()["code"]) == (409, "already_closed")
    assert harness.temporal.updates == []


@pytest.mark.parametrize(
    "error",
    [
        RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b""),
        RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b""),
        WorkflowUpdateRPCTimeoutOrCancelledError(),
    ],
    ids=["unavailable", "deadline", "update-timeout"],
)
async def test_temporal_unreachable_is_503(harness: Harness, error: BaseException) -> None:
    call_id = await placed(harness)
    harness.temporal.update_error = error
    response = await harness.api.post(f"/v1/calls/{call_id}/hangup")
    assert (response.status_code, response.json()["code"]) == (503, "temporal_unavailable")
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0


async def test_no_temporal_client_yet_is_503(harness: Harness) -> None:
    call_id = await placed(harness)
    harness.state.temporal = None
    response = await harness.api.post(f"/v1/calls/{call_id}/hangup")
    assert (response.status_code, response.json()["code"]) == (503, "temporal_unavailable")
    assert response.headers["retry-after"]


async def test_a_gone_workflow_with_an_open_record_is_accepted(harness: Harness) -> None:
    # Terminated or never started: the record is open, so the call has not "already ended";
    # the lease reconciler hangs it up at the vendor and closes the record.
    call_id = await placed(harness)
    harness.temporal.update_error = not_found()
    response = await harness.api.post(f"/v1/calls/{call_id}/hangup")
    assert response.status_code == 202, response.text
    assert response.json()["id"] == call_id


async def test_a_workflow_that_completed_meanwhile_is_409(harness: Harness) -> None:
    call_id = await placed(harness)
    harness.temporal.update_error = not_found()
    harness.temporal.on_update = lambda: close_row(harness, call_id)
    response = await harness.api.post(f"/v1/calls/{call_id}/hangup")
    assert (response.status_code, response.json()["code"]) == (409, "already_closed")


def next_try_made(harness: Harness, call_id: str) -> str:
    """The first try closed 2 and its next try recorded (scheduled), as its workflow's
    start_next_try activity writes it just before it starts the try's workflow."""
    with Session(harness.state.engine) as session:
        row = calls.get_call_any_tenant(session, call_id)
        assert row is not None
        row.state, row.close_type, row.close_time = "close", "2", now_ms()
        session.add(row)
        session.commit()
        made = series.record_next_try(session, calls.record_of(row), now_ms() + 60_000, "retry")
        session.commit()
        return made.cc_call_id


async def test_a_series_hung_up_while_its_next_try_is_being_started_reaches_the_try_making_it(
    harness: Harness,
) -> None:
    """Issue 24: the next try is recorded but its workflow not started yet. Its hang-up goes
    to the try that is making it (whose validator takes it then, and which cancels the new
    try once started), not lost to a 202 nobody acts on until the reconciler."""
    first = await placed(harness)
    second = next_try_made(harness, first)
    harness.temporal.update_errors[workflow_id(second)] = not_found()

    response = await harness.api.post(f"/v1/calls/{first}/hangup")

    assert response.status_code == 202, response.text
    assert harness.temporal.updates == [workflow_id(second), workflow_id(first)]


async def test_a_try_started_just_before_the_fallback_takes_the_hang_up_itself(
    harness: Harness,
) -> None:
    """The try making it refuses (it has just made and started the next try): the next try
    is asked again, and takes it."""
    first = await placed(harness)
    second = next_try_made(harness, first)
    refused = WorkflowUpdateFailedError(ApplicationError("closed", type="AlreadyClosed"))
    errors = iter([not_found()])

    def next_error() -> None:
        harness.temporal.update_errors.pop(workflow_id(second), None)
        if (error := next(errors, None)) is not None:
            harness.temporal.update_errors[workflow_id(second)] = error

    harness.temporal.update_errors[workflow_id(first)] = refused
    harness.temporal.on_update = next_error

    response = await harness.api.post(f"/v1/calls/{first}/hangup")

    assert response.status_code == 202, response.text
    assert harness.temporal.updates == [workflow_id(second), workflow_id(first),
                                        workflow_id(second)]  # fmt: skip


async def test_the_try_making_it_unreachable_is_503_not_202(harness: Harness) -> None:
    """The fallback does not hide Temporal being down: the app is told to retry."""
    first = await placed(harness)
    second = next_try_made(harness, first)
    harness.temporal.update_errors[workflow_id(second)] = not_found()
    harness.temporal.update_errors[workflow_id(first)] = RPCError(
        "connection refused", RPCStatusCode.UNAVAILABLE, b""
    )

    response = await harness.api.post(f"/v1/calls/{first}/hangup")

    assert (response.status_code, response.json()["code"]) == (503, "temporal_unavailable")
