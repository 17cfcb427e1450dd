"""Lines, bindings and channel overrides through the API, and their effect on routing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.calls import place, wait_closed
from tests.stack import ADMIN_KEY, OPERATOR_KEY, Stack


async def test_lines_are_validated_listed_and_deleted(stack: Stack) -> None:
    api = stack.api
    line = {"channel": "e9", "agent": "+861077000001", "number": "+861077000001"}
    refused = await api.post("/v1/lines", json=line)
    assert refused.status_code == 403 and refused.json()["code"] == "not_provisioned"
    async with stack.as_tenant(OPERATOR_KEY) as operator:
        granted = await operator.put(
            "/v1/operator/lines/e9/+861077000001", json={"tenant": "tenant-a"}
        )
        assert granted.status_code == 200, granted.text
    created = await api.post("/v1/lines", json=line)
    assert created.status_code == 201 and created.json()["busy"] is False
    assert (await api.post("/v1/lines", json=line)).json()["code"] == "line_exists"
    bad = await api.post("/v1/lines", json={**line, "number": "12345"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_number"
    not_an_id = await api.post("/v1/lines", json={**line, "agent": "x"})
    assert not_an_id.status_code == 422 and not_an_id.json()["errors"][0]["field"] == "agent"
    assert (await api.post("/v1/lines", json={**line, "channel": "zz"})).status_code == 422

    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/lines", params=params)).json()
        seen += [(i["channel"], i["agent"]) for i in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert len(seen) == len(set(seen)) and ("e9", "+861077000001") in seen

    gone = await api.delete("/v1/lines/e9/+861077000001")
    assert gone.status_code == 204
    assert (await api.delete("/v1/lines/e9/+861077000001")).status_code == 404


async def test_binding_pins_a_users_calls_until_removed(stack: Stack) -> None:
    api = stack.api
    missing = await api.put("/v1/bindings/carol", json={"agent": "no-such", "channel": "jy"})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "agent"
    bound = await api.put("/v1/bindings/carol", json={"agent": "jy-3", "channel": "jy"})
    assert bound.json() == {"user": "carol", "agent": "jy-3", "channel": "jy"}
    assert (await api.get("/v1/bindings/carol")).json()["agent"] == "jy-3"
    in_use = await api.delete("/v1/lines/jy/jy-3")
    assert in_use.status_code == 409 and in_use.json()["code"] == "line_in_use"

    for _ in range(2):
        call = await place(api, user="carol")
        assert (call["channel"], call["agent"]) == ("jy", "jy-3")
        await wait_closed(api, call["id"])

    assert (await api.delete("/v1/bindings/carol")).status_code == 204
    assert (await api.get("/v1/bindings/carol")).status_code == 404
    free = await place(api, user="carol")
    assert free["channel"] == "e9"  # automatic choice again
    await wait_closed(api, free["id"])


@pytest.fixture
async def operator(stack: Stack) -> AsyncIterator[None]:
    yield
    async with stack.as_tenant(OPERATOR_KEY) as operator:
        for name in ("e9", "hw", "jy"):
            await operator.patch(f"/v1/channels/{name}", json={"enabled": None})


async def test_operator_override_takes_a_channel_out_of_routing(
    stack: Stack, operator: None
) -> None:
    channels = (await stack.api.get("/v1/channels")).json()
    assert {c["name"]: c["mode"] for c in channels} == {
        "e9": "webhook",
        "hw": "poll",
        "jy": "webhook",
    }
    refused = await stack.api.patch("/v1/channels/e9", json={"enabled": False})
    assert refused.status_code == 403
    async with stack.as_tenant(ADMIN_KEY) as admin:  # a tenant's admin is no operator
        tenant_admin = await admin.patch("/v1/channels/e9", json={"enabled": False})
        assert tenant_admin.status_code == 403
    async with stack.as_tenant(OPERATOR_KEY) as admin:
        off = await admin.patch("/v1/channels/e9", json={"enabled": False})
        assert off.json()["enabled"] is False and off.json()["override"] is False
        call = await place(stack.api)
        assert call["channel"] == "hw"
        pinned = await stack.api.post(
            "/v1/calls",
            json={"caller": "+8613800000001", "called": "+8613900000002", "channel": "e9"},
        )
        assert pinned.status_code == 503 and pinned.json()["code"] == "no_channel"
        back = await admin.patch("/v1/channels/e9", json={"enabled": None})
        assert back.json()["enabled"] is True and back.json()["override"] is None
    await wait_closed(stack.api, call["id"])
    assert (await place(stack.api))["channel"] == "e9"
