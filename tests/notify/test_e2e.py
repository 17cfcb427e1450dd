"""Notifications on the live stack: an app subscribes with an admin key, places a call, and
its receiver (verifying every signature) gets the call's events in order, each with the call
view as GET /v1/calls/{id} shows it then: init, conn, close, closed, recording."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.seed import add_tenant_key
from tests.e2e.calls import place
from tests.notify.support import EXPECTED, SECRET_KEY, Receiver
from tests.stack import Stack
from tests.support import free_port, wait_for

pytestmark = pytest.mark.e2e
SOLO_ADMIN = "test-key-solo-admin-notify"


@pytest.fixture
async def solo_admin(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An admin key of the solo tenant, with CC_SECRET_KEY set for the API and the worker
    (one Settings object in the in-process stack); the subscription is removed after."""
    add_tenant_key(stack.settings.database_url, "solo", SOLO_ADMIN, scope="admin")
    before, stack.settings.secret_key = stack.settings.secret_key, SECRET_KEY
    async with stack.as_tenant(SOLO_ADMIN) as admin:
        yield admin
        await admin.delete("/v1/notifications")
    stack.settings.secret_key = before


async def test_an_app_is_told_each_state_of_its_call_in_order(
    stack: Stack, solo_admin: httpx.AsyncClient
) -> None:
    port = free_port()
    subscribed = await solo_admin.put("/v1/notifications", json={
        "url": f"http://127.0.0.1:{port}/hooks/cc",
        "events": ["call.state", "call.closed", "call.recording"]})  # fmt: skip
    assert subscribed.status_code == 200, subscribed.text
    receiver = Receiver(port, secret=subscribed.json()["secret"]).start()
    try:
        call = await place(solo_admin, channel="e9")
        await wait_for(lambda: _all_of(receiver, call["id"]), 60, "every event of the call")
        view = (await solo_admin.get(f"/v1/calls/{call['id']}")).json()
    finally:
        receiver.stop()
    assert receiver.of_call(call["id"]) == EXPECTED
    first, last = receiver.events[0].event, receiver.events[-1].event
    assert first["call"] == call  # the view the POST answered: init
    assert last["call"] | {"updated": 0} == view | {"updated": 0}  # with CC's recording copy
    assert last["call"]["audio_url"]


async def _all_of(receiver: Receiver, call_id: str) -> bool:
    return len(receiver.of_call(call_id)) >= len(EXPECTED)
