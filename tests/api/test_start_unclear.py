"""Issue 9, on a real Temporal: a start_workflow that fails after the server started the
workflow (a lost answer) keeps the call; one that surely did not start is undone. The client
is the real one, wrapped so that start_workflow raises after (or instead of) starting."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlmodel import Session, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from contracts.ids import workflow_id
from store.models import AgentLine, CallRecordRow
from tests.api.conftest import UNIT_LINE, Harness
from tests.api.test_placement import BODY


class LosesTheAnswer:
    """The real client, but start_workflow raises ``error`` (after starting if ``start``)."""

    def __init__(self, real: Client, error: RPCError, start: bool) -> None:
        self.real, self.error, self.start = real, error, start

    async def start_workflow(self, *args: Any, **kwargs: Any) -> Any:
        if self.start:
            await self.real.start_workflow(*args, **kwargs)
        raise self.error

    def get_workflow_handle(self, *args: Any, **kwargs: Any) -> Any:
        return self.real.get_workflow_handle(*args, **kwargs)


def lease_of_line(harness: Harness) -> str | None:
    with Session(harness.state.engine) as session:
        line = session.exec(select(AgentLine).where(AgentLine.agent == UNIT_LINE[1])).one()
        return line.lease_call_id


def row_ids(harness: Harness) -> list[str]:
    with Session(harness.state.engine) as session:
        return [row.cc_call_id for row in session.exec(select(CallRecordRow)).all()]


async def test_a_start_whose_answer_was_lost_keeps_the_call(
    harness: Harness, temporal_env: WorkflowEnvironment
) -> None:
    timeout = RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b"")
    harness.state.temporal = LosesTheAnswer(temporal_env.client, timeout, start=True)  # type: ignore[assignment]
    response = await harness.api.post("/v1/calls", json=BODY)
    assert response.status_code == 201, response.text
    call_id = response.json()["id"]
    handle = temporal_env.client.get_workflow_handle(workflow_id(call_id))
    try:
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
        assert row_ids(harness) == [call_id]
        assert lease_of_line(harness) == call_id
        # Once that workflow is gone (terminated), hanging up the still-open call is
        # accepted: the lease reconciler ends it; nobody else would.
        await handle.terminate("test over")
        hangup = await harness.api.post(f"/v1/calls/{call_id}/hangup")
        assert hangup.status_code == 202, hangup.text
    finally:
        with contextlib.suppress(RPCError):  # already terminated
            await handle.terminate("test over")


async def test_an_unclear_start_that_did_not_start_is_undone(
    harness: Harness, temporal_env: WorkflowEnvironment
) -> None:
    unavailable = RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")
    harness.state.temporal = LosesTheAnswer(temporal_env.client, unavailable, start=False)  # type: ignore[assignment]
    response = await harness.api.post("/v1/calls", json=BODY)
    assert (response.status_code, response.json()["code"]) == (503, "temporal_unavailable")
    assert row_ids(harness) == []
    assert lease_of_line(harness) is None
