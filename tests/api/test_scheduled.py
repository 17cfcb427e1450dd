"""``not_before`` on ``POST /v1/calls`` (issue 24): a scheduled call is recorded ``scheduled``,
holds no line and starts its workflow with none; a time already past is now; a time too far
ahead is refused; a replay with its Idempotency-Key is the same call."""

from __future__ import annotations

import time

from sqlmodel import Session, select

from contracts.call import CallInput
from contracts.ids import workflow_id
from store.models import AgentLine, CallRecordRow
from tests.api.conftest import UNIT_LINE, Harness

BODY = {"caller": "+8613800000001", "called": "+8613900000002", "channel": "e9"}
HOUR_MS = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


def lease_of_line(harness: Harness) -> str | None:
    with Session(harness.state.engine) as session:
        line = session.exec(select(AgentLine).where(AgentLine.agent == UNIT_LINE[1])).one()
        return line.lease_call_id


async def test_a_scheduled_call_holds_no_line_until_it_is_due(harness: Harness) -> None:
    due = now_ms() + HOUR_MS
    answer = await harness.api.post("/v1/calls", json={**BODY, "not_before": due})
    assert answer.status_code == 201, answer.text
    view = answer.json()
    assert (view["state"], view["not_before"], view["wait_reason"]) == (
        "scheduled",
        due,
        "not_before",
    )
    assert (view["parent"], view["try"]) == (None, 1)
    assert lease_of_line(harness) is None  # the line is free for calls placed now
    started: CallInput = harness.temporal.inputs[workflow_id(view["id"])]
    assert started.line is None and started.routing.channel == "e9"
    assert started.record.not_before == due
    now = await harness.api.post("/v1/calls", json=BODY)  # the same line, placed now
    assert now.status_code == 201 and lease_of_line(harness) == now.json()["id"]
    listed = await harness.api.get("/v1/calls", params={"state": "scheduled"})
    assert [c["id"] for c in listed.json()["items"]] == [view["id"]]


async def test_a_not_before_already_past_places_the_call_now(harness: Harness) -> None:
    answer = await harness.api.post("/v1/calls", json={**BODY, "not_before": now_ms() - 5_000})
    assert answer.status_code == 201, answer.text
    assert answer.json()["state"] == "init" and answer.json()["wait_reason"] is None
    assert lease_of_line(harness) == answer.json()["id"]


async def test_a_not_before_too_far_ahead_or_negative_is_a_422(harness: Harness) -> None:
    for when in (now_ms() + 31 * 24 * HOUR_MS, -1):
        answer = await harness.api.post("/v1/calls", json={**BODY, "not_before": when})
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"].endswith("not_before")
    with Session(harness.state.engine) as session:
        assert session.exec(select(CallRecordRow)).all() == []
    assert harness.temporal.started == []


async def test_a_scheduled_call_replayed_with_its_key_is_the_same_call(harness: Harness) -> None:
    body, headers = {**BODY, "not_before": now_ms() + HOUR_MS}, {"Idempotency-Key": "later-1"}
    first = await harness.api.post("/v1/calls", json=body, headers=headers)
    again = await harness.api.post("/v1/calls", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["state"] == "scheduled"
    assert harness.temporal.started == [workflow_id(first.json()["id"])]  # one workflow
    other = await harness.api.post(
        "/v1/calls", json={**body, "not_before": body["not_before"] + 1}, headers=headers
    )
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"
