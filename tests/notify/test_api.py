"""/v1/notifications: an admin key subscribes and gets the signing secret once; the URL is
checked; a placed call's ``call.state`` init is in the outbox with the call's row; deliveries
are listed, filtered and paged; one is sent again with retry (202), another tenant's is 404."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import Session

from api.routes.notifications import receiver_policy
from core.egress import EgressPolicy
from store import notifications
from store.db import now_ms, session_scope
from store.lines import ensure_line
from store.models import NotificationDelivery
from store.tenants import add_api_key
from tests.api.conftest import UNIT_TENANT, Harness, asgi_client
from tests.notify.support import SECRET_KEY, deliveries, new_call, resolver, subscribe

ADMIN, MASKED = "test-key-unit-admin", "test-key-unit-masked"
BODY = {"url": "https://app.example/hooks/cc", "events": ["call.state", "call.closed"]}
CALL = {"caller": "+8613800000001", "called": "+8613900000002", "channel": "e9"}


@pytest.fixture
async def admin(harness: Harness) -> httpx.AsyncClient:
    harness.state.settings.secret_key = SECRET_KEY
    # A DNS that knows the receivers of these tests (a public address each).
    public = EgressPolicy(resolver=resolver({"app.example": "93.184.216.34"}))
    harness.app.dependency_overrides[receiver_policy] = lambda: public
    notifications.forget_subscriptions()
    with session_scope(harness.state.engine) as session:
        add_api_key(session, UNIT_TENANT, ADMIN, scope="admin")
        add_api_key(session, UNIT_TENANT, MASKED, scope="masked")
    return asgi_client(harness.app, headers={"Authorization": f"Bearer {ADMIN}"})


async def test_only_an_admin_key_subscribes(harness: Harness, admin: httpx.AsyncClient) -> None:
    assert (await harness.api.put("/v1/notifications", json=BODY)).status_code == 403  # full
    masked = asgi_client(harness.app, headers={"Authorization": f"Bearer {MASKED}"})
    assert (await masked.put("/v1/notifications", json=BODY)).status_code == 403
    assert (await admin.put("/v1/notifications", json=BODY)).status_code == 200
    assert (await harness.api.delete("/v1/notifications")).status_code == 403


async def test_the_secret_is_shown_once(harness: Harness, admin: httpx.AsyncClient) -> None:
    created = await admin.put("/v1/notifications", json=BODY)
    assert created.status_code == 200, created.text
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    shown = await harness.api.get("/v1/notifications")
    assert shown.status_code == 200
    assert shown.json() | {"created": 0, "updated": 0} == {
        "url": BODY["url"], "events": ["call.closed", "call.state"], "masked": False,
        "created": 0, "updated": 0,
    }  # fmt: skip
    assert secret not in shown.text
    replaced = await admin.put("/v1/notifications", json={**BODY, "masked": True})
    assert replaced.json()["secret"] != secret
    assert (await harness.api.get("/v1/notifications")).json()["masked"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BODY, "url": "ftp://app.example/hooks"}, "url"),
        ({**BODY, "url": "not a url"}, "url"),
        ({**BODY, "url": "http://"}, "url"),
        ({**BODY, "url": "http://app.example:port/"}, "url"),
        ({**BODY, "url": "http://app example/hooks"}, "url"),
        ({**BODY, "events": []}, "events"),
        ({**BODY, "events": ["call.answered"]}, "events.0"),
        ({"events": ["call.state"]}, "url"),
    ],
)
async def test_a_bad_subscription_is_a_clear_422(
    admin: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    refused = await admin.put("/v1/notifications", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "validation_error"
    assert [e["field"] for e in refused.json()["errors"]] == [field]


async def test_without_a_secret_key_there_is_no_subscription(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    harness.state.settings.secret_key = ""
    refused = await admin.put("/v1/notifications", json=BODY)
    assert (refused.status_code, refused.json()["code"]) == (409, "secret_key_missing")
    assert (await harness.api.get("/v1/notifications")).status_code == 404


async def test_delete_removes_the_subscription_and_its_deliveries(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    await admin.put("/v1/notifications", json=BODY)
    assert (await harness.api.post("/v1/calls", json=CALL)).status_code == 201
    assert len(deliveries(harness.state.engine)) == 1
    assert (await admin.delete("/v1/notifications")).status_code == 204
    assert (await harness.api.get("/v1/notifications")).status_code == 404
    assert (await admin.delete("/v1/notifications")).status_code == 404
    assert deliveries(harness.state.engine) == []


async def test_a_placed_call_is_told_from_its_first_state(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    with session_scope(harness.state.engine) as session:  # a second line for the second call
        ensure_line(session, UNIT_TENANT, "e9", "e9-unit-2", "+8610880000002")
    placed = await harness.api.post("/v1/calls", json=CALL)
    assert placed.status_code == 201
    assert deliveries(harness.state.engine) == []  # not subscribed yet: nothing
    await admin.put("/v1/notifications", json=BODY)
    placed = await harness.api.post("/v1/calls", json=CALL)
    call_id = placed.json()["id"]
    listed = await harness.api.get("/v1/notifications/deliveries")
    assert listed.status_code == 200
    (item,) = listed.json()["items"]
    assert item | {"id": 0, "at": 0, "next_attempt_at": 0, "webhook_id": ""} == {
        "id": 0, "type": "call.state", "call_id": call_id, "status": "pending", "webhook_id": "",
        "at": 0, "attempts": 0, "last_status": None, "last_error": None,
        "last_attempt_at": None, "next_attempt_at": 0, "delivered_at": None,
    }  # fmt: skip
    (row,) = deliveries(harness.state.engine)
    assert '"state":"init"' in row.call_json and call_id in row.call_json


async def test_deliveries_are_filtered_and_paged(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    engine = harness.state.engine
    subscribe(engine, "http://127.0.0.1:1/", tenant=UNIT_TENANT)
    for call in ("c1", "c2", "c3"):
        new_call(engine, call, tenant=UNIT_TENANT)
    _set_status(engine, deliveries(engine, "c2")[0], "failed")
    api = harness.api
    failed = (await api.get("/v1/notifications/deliveries", params={"status": "failed"})).json()
    assert [i["call_id"] for i in failed["items"]] == ["c2"]
    one = (await api.get("/v1/notifications/deliveries", params={"call_id": "c3"})).json()
    assert [i["call_id"] for i in one["items"]] == ["c3"]
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.get("/v1/notifications/deliveries", params=params)).json()
        seen += [i["call_id"] for i in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ["c1", "c2", "c3"]
    bad = await api.get("/v1/notifications/deliveries", params={"status": "lost"})
    assert bad.status_code == 422


async def test_retry_puts_a_delivery_back_to_be_sent_now(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    engine = harness.state.engine
    subscribe(engine, "http://127.0.0.1:1/", tenant=UNIT_TENANT)
    subscribe(engine, "http://127.0.0.1:1/", tenant="other")
    new_call(engine, "mine", tenant=UNIT_TENANT)
    new_call(engine, "theirs", tenant="other")
    mine, theirs = deliveries(engine, "mine")[0], deliveries(engine, "theirs")[0]
    _set_status(engine, mine, "failed")
    assert (
        await harness.api.post(f"/v1/notifications/deliveries/{mine.id}/retry")
    ).status_code == 403
    before = now_ms()
    retried = await admin.post(f"/v1/notifications/deliveries/{mine.id}/retry")
    assert retried.status_code == 202, retried.text
    assert retried.json()["status"] == "pending"
    assert retried.json()["next_attempt_at"] >= before
    assert deliveries(engine, "mine")[0].status == "pending"
    for missing in (theirs.id, 10**9):
        answer = await admin.post(f"/v1/notifications/deliveries/{missing}/retry")
        assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
    assert deliveries(engine, "theirs")[0].status == "pending"  # untouched


def _set_status(engine: object, delivery: NotificationDelivery, status: str) -> None:
    with Session(engine) as session:  # type: ignore[call-overload]
        row = session.get(NotificationDelivery, delivery.id)
        assert row is not None
        row.status, row.next_attempt_at = status, now_ms() + 3_600_000
        session.add(row)
        session.commit()


async def test_only_an_admin_key_sees_the_urls_credentials_and_query(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """Issue 20 row 9: a masked key read the receiver's credentials in its URL."""
    secret_url = "https://hook:s3cret@app.example/hooks/cc?token=t0ps3cret#frag"
    assert (await admin.put("/v1/notifications", json={**BODY, "url": secret_url})).is_success
    masked = asgi_client(harness.app, headers={"Authorization": f"Bearer {MASKED}"})
    for reader in (masked, harness.api):  # a masked and a full key
        shown = (await reader.get("/v1/notifications")).json()["url"]
        assert shown == "https://app.example/hooks/cc"
    assert (await admin.get("/v1/notifications")).json()["url"] == secret_url
