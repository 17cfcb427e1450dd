"""Callback policies on the API (issue 24): ``retry`` and ``window`` per call or as the
tenant's defaults (``PUT /v1/settings``); a call asked outside its window waits for the next
opening; every try carries the policies; hanging up a series reaches its waiting try."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from contracts.call import CallInput
from contracts.ids import workflow_id
from store import calls
from store.db import session_scope
from store.models import CallRecordRow
from store.tenants import add_api_key
from tests.api.conftest import UNIT_TENANT, Harness, asgi_client

BODY = {"caller": "+8613800000001", "called": "+8613900000082", "channel": "e9"}
RETRY = {"on": [2, 4], "max_attempts": 3, "interval_s": 60}
ADMIN_KEY = "test-key-policies-admin"
HOUR_MS = 3_600_000


def closed_window() -> tuple[dict[str, Any], int]:
    """A UTC window of the hour that starts two hours from now, and when it opens."""
    opens = (int(time.time() * 1000) // HOUR_MS + 2) * HOUR_MS
    hour = (opens // HOUR_MS) % 24
    closes = f"{hour + 1:02d}:00" if hour < 23 else "24:00"
    return {
        "tz": "UTC",
        "days": [1, 2, 3, 4, 5, 6, 7],
        "from": f"{hour:02d}:00",
        "to": closes,
    }, opens


@pytest.fixture
async def admin(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    with session_scope(harness.state.engine) as session:
        add_api_key(session, UNIT_TENANT, ADMIN_KEY, "admin")
    async with asgi_client(harness.app, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
        yield c


async def test_a_call_asked_outside_its_window_waits_for_the_opening(harness: Harness) -> None:
    window, opens = closed_window()
    answer = await harness.api.post("/v1/calls", json={**BODY, "window": window, "retry": RETRY})
    assert answer.status_code == 201, answer.text
    view = answer.json()
    assert (view["state"], view["not_before"], view["wait_reason"]) == (
        "scheduled",
        opens,
        "window",
    )
    started: CallInput = harness.temporal.inputs[workflow_id(view["id"])]
    assert started.policy.retry is not None and started.policy.retry.max_attempts == 3
    assert started.policy.window is not None and started.policy.window.tz == "UTC"


async def test_a_call_inside_its_window_is_placed_now(harness: Harness) -> None:
    always = {"tz": "Asia/Shanghai", "days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "24:00"}
    answer = await harness.api.post("/v1/calls", json={**BODY, "window": always})
    assert answer.status_code == 201 and answer.json()["state"] == "init"


@pytest.mark.parametrize(
    "policy",
    [
        {"retry": {**RETRY, "interval_s": 10}},
        {"retry": {**RETRY, "max_attempts": 11}},
        {"retry": {**RETRY, "on": []}},
        {"window": {"tz": "Mars/Olympus", "days": [1], "from": "09:00", "to": "20:00"}},
        {"window": {"tz": "UTC", "days": [8], "from": "09:00", "to": "20:00"}},
        {"window": {"tz": "UTC", "days": [1], "from": "20:00", "to": "09:00"}},
    ],
)
async def test_a_policy_outside_the_contract_is_a_422(
    harness: Harness, policy: dict[str, Any]
) -> None:
    answer = await harness.api.post("/v1/calls", json={**BODY, **policy})
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "validation_error" and harness.temporal.started == []


async def test_the_tenant_s_defaults_apply_to_calls_that_bring_none(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    window, opens = closed_window()
    refused = await harness.api.put("/v1/settings", json={"retry": RETRY})
    assert refused.status_code == 403
    put = await admin.put("/v1/settings", json={"retry": RETRY, "window": window})
    assert put.status_code == 200, put.text
    got = (await harness.api.get("/v1/settings")).json()
    assert got["retry"] == RETRY and got["window"] == window
    assert got["retention_source"] == "platform"  # untouched: not in the body
    answer = await harness.api.post("/v1/calls", json=BODY)
    assert (answer.json()["state"], answer.json()["not_before"]) == ("scheduled", opens)
    started: CallInput = harness.temporal.inputs[workflow_id(answer.json()["id"])]
    assert started.policy.retry is not None and started.policy.retry.on == [2, 4]
    cleared = await admin.put("/v1/settings", json={"window": None})
    assert cleared.json()["window"] is None and cleared.json()["retry"] == RETRY


def add_try(harness: Harness, head: CallRecordRow, number: int, state: str) -> str:
    cc_call_id = f"{head.cc_call_id}-{number}"
    with session_scope(harness.state.engine) as session:
        session.add(CallRecordRow(
            cc_call_id=cc_call_id, tenant=head.tenant, agent="", channel="", caller=head.caller,
            called=head.called, display=head.display, state=state, parent=head.cc_call_id,
            try_number=number, created=head.created, updated=head.created,
        ))  # fmt: skip
    return cc_call_id


async def test_hanging_up_a_closed_try_reaches_the_series_waiting_try(harness: Harness) -> None:
    first = (await harness.api.post("/v1/calls", json={**BODY, "retry": RETRY})).json()["id"]
    with Session(harness.state.engine) as session:
        head = calls.get_call_any_tenant(session, first)
        assert head is not None
        head.state, head.close_type, head.close_time = "close", "2", int(time.time() * 1000)
        session.add(head)
        session.commit()
        session.refresh(head)
    waiting = add_try(harness, head, 2, "scheduled")
    answer = await harness.api.post(f"/v1/calls/{first}/hangup")
    assert answer.status_code == 202, answer.text
    assert harness.temporal.updates == [workflow_id(waiting)]  # the try that waits
