"""Issue 9, placing a call: the Idempotency-Key (blank keys refused; concurrent retries get
the one call, never line_busy) and a workflow start whose outcome is unclear."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import Session, select
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from contracts.ids import workflow_id
from store.models import AgentLine, CallRecordRow
from tests.api.conftest import UNIT_LINE, Harness

BODY = {"caller": "+8613800000001", "called": "+8613900000002", "channel": "e9"}


def rows(harness: Harness) -> list[CallRecordRow]:
    with Session(harness.state.engine) as session:
        return list(session.exec(select(CallRecordRow)).all())


def line(harness: Harness) -> AgentLine:
    with Session(harness.state.engine) as session:
        return session.exec(select(AgentLine).where(AgentLine.agent == UNIT_LINE[1])).one()


@pytest.mark.parametrize("key", ["", " ", "\t", "k" * 65])
async def test_a_blank_or_overlong_idempotency_key_is_a_422(harness: Harness, key: str) -> None:
    response = await harness.api.post("/v1/calls", json=BODY, headers={"Idempotency-Key": key})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert rows(harness) == [] and harness.temporal.started == []


async def test_an_empty_key_is_never_stored_as_a_key(harness: Harness) -> None:
    first = await harness.api.post("/v1/calls", json=BODY, headers={"Idempotency-Key": ""})
    assert first.status_code == 422
    assert (await harness.api.post("/v1/calls", json=BODY)).status_code == 201
    assert [row.idempotency_key for row in rows(harness)] == [None]


async def test_concurrent_retries_with_one_key_get_the_one_call(harness: Harness) -> None:
    headers = {"Idempotency-Key": "retry-storm-1"}
    answers = await asyncio.gather(
        *(harness.api.post("/v1/calls", json=BODY, headers=headers) for _ in range(5))
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201], [
        a.text for a in answers
    ]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(harness.temporal.started) == 1  # one workflow, one lease
    assert [row.cc_call_id for row in rows(harness)] == [answers[0].json()["id"]]
    assert line(harness).lease_call_id == answers[0].json()["id"]
    assert line(harness).lease_token == 1  # leased once, never by a retry


async def test_another_key_on_the_busy_line_is_still_line_busy(harness: Harness) -> None:
    first = await harness.api.post("/v1/calls", json=BODY, headers={"Idempotency-Key": "a"})
    second = await harness.api.post("/v1/calls", json=BODY, headers={"Idempotency-Key": "b"})
    assert (first.status_code, second.status_code) == (201, 409)
    assert second.json()["code"] == "line_busy"
    changed = await harness.api.post(
        "/v1/calls", json={**BODY, "biz_data": "x"}, headers={"Idempotency-Key": "a"}
    )
    assert (changed.status_code, changed.json()["code"]) == (409, "idempotency_conflict")


UNCLEAR: list[BaseException] = [
    RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b""),
    RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b""),
    RPCError("cancelled", RPCStatusCode.CANCELLED, b""),
    TimeoutError(),
]


@pytest.mark.parametrize("error", UNCLEAR, ids=lambda e: e.__class__.__name__)
async def test_a_start_that_failed_after_starting_keeps_the_call(
    harness: Harness, error: BaseException
) -> None:
    harness.temporal.start_error, harness.temporal.start_anyway = error, True
    response = await harness.api.post("/v1/calls", json=BODY)
    assert response.status_code == 201, response.text
    call_id = response.json()["id"]
    assert harness.temporal.started == [workflow_id(call_id)]
    assert [row.cc_call_id for row in rows(harness)] == [call_id]
    assert line(harness).lease_call_id == call_id


async def test_an_unclear_start_that_cannot_be_checked_keeps_the_call(harness: Harness) -> None:
    # Neither the start nor the describe gets through: the reconciler settles it later.
    harness.temporal.start_error = RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")
    harness.temporal.describe_error = RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")
    response = await harness.api.post("/v1/calls", json=BODY)
    assert response.status_code == 201, response.text
    assert line(harness).lease_call_id == response.json()["id"]


async def test_already_started_is_started(harness: Harness) -> None:
    harness.temporal.start_error = WorkflowAlreadyStartedError("call-x", "CallWorkflow")
    harness.temporal.start_anyway = True
    response = await harness.api.post("/v1/calls", json=BODY)
    assert response.status_code == 201
    assert line(harness).lease_call_id == response.json()["id"]


DEFINITE: list[Any] = [
    # refused outright
    (RPCError("bad request", RPCStatusCode.INVALID_ARGUMENT, b""), None),
    (RPCError("rate limited", RPCStatusCode.RESOURCE_EXHAUSTED, b""), None),
    # unclear, but describe says there is no such workflow
    (RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b""), "not found"),
    (TimeoutError(), "not found"),
]


@pytest.mark.parametrize("error, describe", DEFINITE, ids=lambda e: str(e)[:20])
async def test_a_start_that_surely_failed_is_undone(
    harness: Harness, error: BaseException, describe: str | None
) -> None:
    harness.temporal.start_error = error
    response = await harness.api.post("/v1/calls", json=BODY)
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "temporal_unavailable"
    assert response.headers["retry-after"]
    assert rows(harness) == []
    assert line(harness).lease_call_id is None
    assert harness.temporal.started == []


async def test_a_replay_starts_the_workflow_a_killed_request_never_started(
    harness: Harness,
) -> None:
    """Chaos scenario 3 (issue 19): the API was killed after committing the call and before
    starting its workflow; the app's retry with the same key must get the call placed, not
    an answer for a call nobody will ever place (the reconciler would close it 255)."""
    headers = {"Idempotency-Key": "killed-mid-start"}
    # The first request's start: an error that cannot be told from "started", and no
    # workflow behind it (describe cannot answer either): the call stands, unstarted.
    harness.temporal.start_error = RuntimeError("the process died here")
    harness.temporal.describe_error = RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")
    first = await harness.api.post("/v1/calls", json=BODY, headers=headers)
    assert first.status_code == 201, first.text
    assert harness.temporal.started == []
    harness.temporal.start_error = harness.temporal.describe_error = None
    replay = await harness.api.post("/v1/calls", json=BODY, headers=headers)
    assert (replay.status_code, replay.json()["id"]) == (200, first.json()["id"])
    assert harness.temporal.started == [workflow_id(first.json()["id"])]
    assert line(harness).lease_call_id == first.json()["id"]
    again = await harness.api.post("/v1/calls", json=BODY, headers=headers)
    assert again.status_code == 200 and len(harness.temporal.started) == 1


async def test_a_replay_of_a_placed_or_closed_call_starts_nothing(harness: Harness) -> None:
    headers = {"Idempotency-Key": "placed-already"}
    first = await harness.api.post("/v1/calls", json=BODY, headers=headers)
    call_id = first.json()["id"]
    with Session(harness.state.engine) as session:
        row = session.exec(select(CallRecordRow).where(CallRecordRow.cc_call_id == call_id)).one()
        row.vendor_call_id = "vendor-1"  # the workflow placed it
        session.add(row)
        session.commit()
    harness.temporal.started.clear()
    replay = await harness.api.post("/v1/calls", json=BODY, headers=headers)
    assert replay.status_code == 200 and harness.temporal.started == []
