"""API edges on the live stack: validation, auth, webhook signatures, inbox-first storage."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from store import inbox
from store.db import make_engine, session_scope
from tests.stack import Stack


def e9_webhook(stack: Stack, payload: dict[str, object], token: str | None = None) -> dict:  # type: ignore[type-arg]
    body = json.dumps(payload).encode()
    ts = str(int(time.time()))
    key = (token or stack.settings.e9_auth_token).encode()
    sig = hmac.new(key, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {"X-E9-Timestamp": ts, "X-E9-Signature": sig, "Content-Type": "application/json"}
    return {"content": body, "headers": headers}


def stored_events(stack: Stack, cc_call_id: str) -> int:
    engine = make_engine(stack.settings.database_url)
    with session_scope(engine) as s:
        count = len(inbox.events_for_call(s, cc_call_id))
    engine.dispose()
    return count


EVENT = {"eventId": "ev-x1", "callSid": "S-unknown", "event": "bridge",
         "timestamp": "20261124120000", "userData": "no-such-call"}  # fmt: skip


async def test_bad_numbers_name_the_field(stack: Stack) -> None:
    response = await stack.api.post(
        "/v1/calls", json={"caller": "+8613800000001", "called": "+86123"}
    )
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "invalid_number"
    assert problem["errors"][0]["field"] == "called"


async def test_schema_errors_list_each_field(stack: Stack) -> None:
    response = await stack.api.post(
        "/v1/calls", json={"caller": "+8613800000001", "max_duration": 0, "channel": "xx"}
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"called", "max_duration"} <= fields
    assert response.json()["code"] == "validation_error"


async def test_missing_or_wrong_key_is_401(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=str(stack.api.base_url)) as anonymous:
        assert (await anonymous.get("/v1/calls/x")).status_code == 401
        wrong = await anonymous.get("/v1/calls/x", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["code"] == "unauthorized"


async def test_bad_signature_is_401_and_stores_nothing(stack: Stack) -> None:
    payload = {**EVENT, "eventId": "ev-bad-sig", "userData": "sig-test"}
    response = await stack.api.post("/webhooks/e9", **e9_webhook(stack, payload, token="wrong"))
    assert response.status_code == 401
    assert stored_events(stack, "sig-test") == 0


async def test_malformed_webhook_is_400(stack: Stack) -> None:
    request = e9_webhook(stack, {"hello": "world"})
    response = await stack.api.post("/webhooks/e9", **request)
    assert response.status_code == 400 and response.json()["code"] == "malformed_event"


async def test_event_for_unknown_call_is_stored_and_acknowledged(stack: Stack) -> None:
    response = await stack.api.post("/webhooks/e9", **e9_webhook(stack, EVENT))
    assert response.status_code == 200
    assert response.json() == {"statusCode": "000000"}
    assert stored_events(stack, "no-such-call") == 1
    again = await stack.api.post("/webhooks/e9", **e9_webhook(stack, EVENT))
    assert again.status_code == 200
    assert stored_events(stack, "no-such-call") == 1  # deduplicated by eventId


async def test_operations_endpoints(stack: Stack) -> None:
    assert (await stack.api.get("/healthz")).json() == {"status": "ok"}
    assert (await stack.api.get("/readyz")).status_code == 200
    payload = {**EVENT, "eventId": "ev-metrics"}
    await stack.api.post("/webhooks/e9", **e9_webhook(stack, payload))
    await stack.api.post("/webhooks/e9", **e9_webhook(stack, payload, token="wrong"))
    metrics = await stack.api.get("/metrics")
    assert metrics.status_code == 200
    assert 'cc_vendor_events_total{channel="e9",outcome="stored"}' in metrics.text
    assert 'cc_vendor_events_total{channel="e9",outcome="bad_signature"}' in metrics.text
