"""Issue 20 rows 1, 2 and 6: what one tenant's key could do to another tenant, tried as an
attacker holding that key would, against the real app (routes, auth, store) in-process.

Each test failed on 966ee9f: a tenant's key took over another tenant's hw seat, switched a
vendor off for everyone, read every tenant's error rates, claimed another company's 400
number, learnt other tenants' line ids from 409s and had no quota."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from core.types import ResourceKind
from store.db import now_ms, session_scope
from store.models import CallRecordRow
from store.provisions import provision
from store.tenants import add_api_key, ensure_tenant
from tests.api.conftest import OPERATOR_KEY, UNIT_TENANT, Harness, asgi_client
from tests.api.conftest import harness as harness  # the fixture

OTHER, OTHER_KEY = "victim-t", "test-key-victim"
MASKED_KEY, ADMIN_KEY = "test-key-unit-masked", "test-key-unit-admin"
MAIN = "+864008009999"


@pytest.fixture
async def operator(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    async with asgi_client(harness.app, headers=headers) as client:
        yield client


@pytest.fixture
async def keys(harness: Harness) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """The attacker's masked and admin keys, and a victim tenant holding seat 10001 and the
    400 number MAIN."""
    with session_scope(harness.state.engine) as session:
        add_api_key(session, UNIT_TENANT, MASKED_KEY, "masked")
        add_api_key(session, UNIT_TENANT, ADMIN_KEY, "admin")
        ensure_tenant(session, OTHER)
        add_api_key(session, OTHER, OTHER_KEY, "admin")
        provision(session, OTHER, ResourceKind.LINE, "hw", "10001")
        provision(session, OTHER, ResourceKind.MAIN_NUM, "", MAIN)
    clients = {}
    for name, key in (("masked", MASKED_KEY), ("admin", ADMIN_KEY), ("victim", OTHER_KEY)):
        clients[name] = asgi_client(harness.app, headers={"Authorization": f"Bearer {key}"})
    yield clients
    for client in clients.values():
        await client.aclose()


def _seat(agent: str) -> dict[str, str]:
    return {"channel": "hw", "agent": agent, "number": "+861088000199"}


@pytest.mark.parametrize(
    "agent", ["a/../10001", "10001/../10002", "../10001", "1e3", "12345678901"]
)
async def test_row1_a_line_id_off_the_channels_pattern_never_reaches_the_vendor(
    harness: Harness, keys: dict[str, httpx.AsyncClient], agent: str
) -> None:
    answer = await keys["admin"].post("/v1/lines", json=_seat(agent))
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "validation_error"
    assert answer.json()["errors"][0]["field"] == "agent"


async def test_row1_another_tenants_seat_cannot_be_taken(
    harness: Harness, keys: dict[str, httpx.AsyncClient]
) -> None:
    held = await keys["admin"].post("/v1/lines", json=_seat("10001"))  # the victim's
    free = await keys["admin"].post("/v1/lines", json=_seat("10009"))  # nobody's
    assert (held.status_code, free.status_code) == (403, 403)
    assert held.json()["code"] == free.json()["code"] == "not_provisioned"
    # The answer is the same whether another tenant holds the seat or nobody does.
    assert held.json()["detail"].replace("10001", "X") == free.json()["detail"].replace(
        "10009", "X"
    )
    victim = await keys["victim"].post("/v1/lines", json=_seat("10001"))
    assert victim.status_code == 201, victim.text


async def test_row1_the_operator_provisions_and_then_the_tenant_creates(
    harness: Harness, keys: dict[str, httpx.AsyncClient], operator: httpx.AsyncClient
) -> None:
    granted = await operator.put("/v1/operator/lines/hw/10002", json={"tenant": UNIT_TENANT})
    assert granted.status_code == 200, granted.text
    assert (await keys["admin"].post("/v1/lines", json=_seat("10002"))).status_code == 201
    mine = await keys["admin"].get("/v1/provisions")
    held = [(p["channel"], p["resource"]) for p in mine.json()["items"]]
    assert ("hw", "10002") in held and ("hw", "10001") not in held
    taken = await operator.put("/v1/operator/lines/hw/10001", json={"tenant": UNIT_TENANT})
    assert (taken.status_code, taken.json()["code"]) == (409, "provisioned_elsewhere")
    in_use = await operator.delete("/v1/operator/lines/hw/10002")
    assert (in_use.status_code, in_use.json()["code"]) == (409, "resource_in_use")


async def test_row2_a_tenants_admin_key_cannot_switch_a_vendor_off(
    harness: Harness, keys: dict[str, httpx.AsyncClient], operator: httpx.AsyncClient
) -> None:
    refused = await keys["admin"].patch("/v1/channels/e9", json={"enabled": False})
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    listed = await keys["admin"].get("/v1/channels")
    assert {c["name"]: c["enabled"] for c in listed.json()}["e9"] is True
    done = await operator.patch("/v1/channels/e9", json={"enabled": False})
    assert (done.status_code, done.json()["enabled"]) == (200, False)
    for path in ("/v1/operator/provisions", "/v1/operator/tenants/victim-t"):
        assert (await keys["admin"].get(path)).status_code == 403
    assert (await asgi_client(harness.app).get("/v1/operator/provisions")).status_code == 401


async def test_row2_a_tenant_sees_its_own_error_rate_not_the_others(
    harness: Harness, keys: dict[str, httpx.AsyncClient], operator: httpx.AsyncClient
) -> None:
    now = now_ms()
    with session_scope(harness.state.engine) as session:  # the victim's calls: all failed
        for i in range(4):
            session.add(
                CallRecordRow(
                    cc_call_id=f"victim{i}",
                    tenant=OTHER,
                    channel="e9",
                    agent="+8610880000007",
                    caller="+8613800000001",
                    called="+8613900000002",
                    state="close",
                    close_type="6",
                    display="platform",
                    created=now,
                    updated=now,
                )  # fmt: skip
            )
    mine = {c["name"]: c for c in (await keys["admin"].get("/v1/channels")).json()}
    everyone = {c["name"]: c for c in (await operator.get("/v1/channels")).json()}
    assert mine["e9"]["error_rate"] == 0.0
    assert everyone["e9"]["error_rate"] == 1.0


async def test_row6_another_companys_400_number_cannot_be_claimed(
    harness: Harness, keys: dict[str, httpx.AsyncClient], operator: httpx.AsyncClient
) -> None:
    body = {"channel": "e9", "agent": "e9-unit-1", "phone": "+8613800000011"}
    held = await keys["admin"].put("/v1/extensions/4008009999/1", json=body)
    free = await keys["admin"].put("/v1/extensions/4008005678/1", json=body)
    assert (held.status_code, free.status_code) == (403, 403)
    assert held.json()["code"] == free.json()["code"] == "not_provisioned"
    granted = await operator.put(
        "/v1/operator/main-numbers/4008005678", json={"tenant": UNIT_TENANT}
    )
    assert granted.status_code == 200, granted.text
    bound = await keys["admin"].put("/v1/extensions/4008005678/1", json=body)
    assert bound.status_code == 200, bound.text


async def test_row6_lines_are_capped_by_the_tenants_quota(
    harness: Harness, keys: dict[str, httpx.AsyncClient], operator: httpx.AsyncClient
) -> None:
    assert (
        await operator.put(f"/v1/operator/tenants/{UNIT_TENANT}", json={"max_lines": 2})
    ).status_code == 200
    for seat in ("10002", "10003"):
        assert (
            await operator.put(f"/v1/operator/lines/hw/{seat}", json={"tenant": UNIT_TENANT})
        ).status_code == 200
    harness.state.callers.clear()
    first = await keys["admin"].post("/v1/lines", json=_seat("10002"))  # the 2nd line (e9-unit-1)
    over = await keys["admin"].post("/v1/lines", json=_seat("10003"))
    assert first.status_code == 201, first.text
    assert (over.status_code, over.json()["code"]) == (429, "quota_exceeded")
    assert int(over.headers["retry-after"]) >= 1


async def test_row6_calls_are_capped_per_minute_and_live(
    harness: Harness, operator: httpx.AsyncClient
) -> None:
    quota = {"calls_per_minute": 1}
    assert (
        await operator.put(f"/v1/operator/tenants/{UNIT_TENANT}", json=quota)
    ).status_code == 200
    harness.state.callers.clear()
    body = {"caller": "+8613800000001", "called": "+8613900000002", "channel": "e9"}
    first = await harness.api.post("/v1/calls", json=body)
    assert first.status_code == 201, first.text
    second = await harness.api.post("/v1/calls", json={**body, "called": "+8613900000003"})
    assert (second.status_code, second.json()["code"]) == (429, "quota_exceeded")
    assert 1 <= int(second.headers["retry-after"]) <= 60
    assert "per minute" in second.json()["detail"]

    quota = {"max_live_calls": 1}
    assert (
        await operator.put(f"/v1/operator/tenants/{UNIT_TENANT}", json=quota)
    ).status_code == 200
    harness.state.callers.clear()
    third = await harness.api.post("/v1/calls", json={**body, "called": "+8613900000004"})
    assert (third.status_code, third.json()["code"]) == (429, "quota_exceeded")
    assert "live" in third.json()["detail"]
