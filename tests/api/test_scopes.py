"""What each key's scope may do (README's table, the API's description): ``masked`` reads
(numbers masked) and places and ends calls, but changes none of the tenant's set-up; ``full``
also sets up lines, bindings and extensions; only ``admin`` changes notifications, settings and
recordings. And a credential sent the wrong way is told how to send it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from store.db import session_scope
from store.tenants import add_api_key
from tests.api.conftest import UNIT_LINE, UNIT_MAIN, UNIT_TENANT, Harness, asgi_client
from tests.api.conftest import harness as harness  # the fixture

MASKED_KEY = "test-key-unit-masked"
SETUP = [  # (method, path, body): changes of the tenant's set-up
    ("POST", "/v1/lines", {"channel": "e9", "agent": "+8613700000099", "number": "+8613700000099"}),
    ("DELETE", f"/v1/lines/{UNIT_LINE[0]}/{UNIT_LINE[1]}", None),
    ("PUT", "/v1/bindings/u1", {"channel": UNIT_LINE[0], "agent": UNIT_LINE[1]}),
    ("DELETE", "/v1/bindings/u1", None),
    ("PUT", f"/v1/extensions/{UNIT_MAIN}/12",
     {"channel": UNIT_LINE[0], "agent": UNIT_LINE[1], "phone": "+8613800000011"}),
    ("DELETE", f"/v1/extensions/{UNIT_MAIN}/12", None),
]  # fmt: skip
ADMIN_ONLY = [
    ("PUT", "/v1/settings", {"retention_days": 30}),
    ("PUT", "/v1/notifications", {"url": "https://hooks.example/cc", "events": ["call.state"]}),
    ("DELETE", "/v1/notifications", None),
    ("DELETE", "/v1/calls/no-such-call/recording", None),
]


@pytest.fixture
async def masked(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    with session_scope(harness.state.engine) as session:
        add_api_key(session, UNIT_TENANT, MASKED_KEY, "masked")
    async with asgi_client(harness.app, headers={"Authorization": f"Bearer {MASKED_KEY}"}) as c:
        yield c


async def send(client: httpx.AsyncClient, method: str, path: str, body: object) -> httpx.Response:
    return await client.request(method, path, json=body)


@pytest.mark.parametrize(("method", "path", "body"), SETUP)
async def test_a_masked_key_changes_no_set_up(
    masked: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    answer = await send(masked, method, path, body)
    assert (answer.status_code, answer.json()["code"]) == (403, "forbidden")
    assert "with a full or admin key (this key is masked)" in answer.json()["detail"]


async def test_a_masked_key_reads_and_places_calls(
    harness: Harness, masked: httpx.AsyncClient
) -> None:
    for path in ("/v1/lines", "/v1/calls", "/v1/extensions", "/v1/settings", "/v1/channels"):
        assert (await masked.get(path)).status_code == 200, path
    placed = await masked.post("/v1/calls", json={"caller": "+8613800000001",
                                                 "called": "+8613900000002"})  # fmt: skip
    assert placed.status_code == 201, placed.text
    assert placed.json()["called"] == "+86139****0002"


@pytest.mark.parametrize(("method", "path", "body"), SETUP)
async def test_a_full_key_sets_up(harness: Harness, method: str, path: str, body: object) -> None:
    answer = await send(harness.api, method, path, body)  # UNIT_KEY: scope full
    # Allowed: done, or refused for what it asks (not provisioned, no such binding), never
    # for the key's scope.
    assert answer.status_code < 400 or answer.json()["code"] != "forbidden", answer.text


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY)
async def test_only_an_admin_key_changes_notifications_settings_and_recordings(
    harness: Harness, method: str, path: str, body: object
) -> None:
    answer = await send(harness.api, method, path, body)
    assert (answer.status_code, answer.json()["code"]) == (403, "forbidden")
    assert "with an admin key (this key is full)" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (None, "send the header `Authorization: Bearer <key>`"),
        ("test-key-unit-t", "must be `Bearer <key>`"),
        ("Token test-key-unit-t", "must be `Bearer <key>`"),
        ("Bearer ", "missing API key"),
        ("Bearer not-a-key", "invalid API key"),
    ],
)
async def test_a_key_sent_the_wrong_way_is_told_how(
    harness: Harness, header: str | None, says: str
) -> None:
    headers = {} if header is None else {"Authorization": header}
    async with asgi_client(harness.app, headers=headers) as client:
        answer = await client.get("/v1/calls")
    assert (answer.status_code, answer.json()["code"]) == (401, "unauthorized")
    assert says in answer.json()["detail"]
    assert answer.headers["www-authenticate"] == "Bearer"
