"""Issue 13, ``/v1/extensions``: a 400 number's extension bound to one of the tenant's lines,
the number normalised to E.164, each field checked, and nothing of another tenant's shown."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from core.types import ResourceKind
from store.db import session_scope
from store.lines import ensure_line
from store.provisions import provision
from store.tenants import add_api_key, ensure_tenant
from tests.api.conftest import UNIT_LINE, Harness, asgi_client

MAIN, NATIONAL_MAIN = "+864008001234", "4008001234"
AGENT_PHONE = "+8613800000011"
LINE = {"channel": UNIT_LINE[0], "agent": UNIT_LINE[1], "phone": AGENT_PHONE}
OTHER_TENANT, OTHER_KEY = "other-t", "test-key-other-t"
OTHER_LINE = {"channel": "e9", "agent": "e9-other-1", "phone": "+8613800000021"}


@pytest.fixture
async def other(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """Another tenant's key, with a line of its own."""
    with session_scope(harness.state.engine) as session:
        ensure_tenant(session, OTHER_TENANT)
        add_api_key(session, OTHER_TENANT, OTHER_KEY)
        ensure_line(session, OTHER_TENANT, "e9", OTHER_LINE["agent"], "+8610880000002")
        provision(session, OTHER_TENANT, ResourceKind.MAIN_NUM, "", "+864006001234")
    async with asgi_client(harness.app, headers={"Authorization": f"Bearer {OTHER_KEY}"}) as api:
        yield api


async def test_put_get_list_and_delete_an_extension(harness: Harness) -> None:
    put = await harness.api.put(f"/v1/extensions/{NATIONAL_MAIN}/12", json=LINE)
    assert put.status_code == 200, put.text
    view = put.json()
    assert {k: view[k] for k in ("main_num", "ext_num", "channel", "agent", "phone")} == {
        "main_num": MAIN, "ext_num": "12", **LINE}  # fmt: skip
    assert isinstance(view["updated"], int)
    for spelling in (MAIN, "%2B864008001234", NATIONAL_MAIN):
        got = await harness.api.get(f"/v1/extensions/{spelling}/12")
        assert (got.status_code, got.json()) == (200, view), spelling
    listed = await harness.api.get("/v1/extensions")
    assert listed.json() == {"items": [view], "next_cursor": None}

    deleted = await harness.api.delete(f"/v1/extensions/{MAIN}/12")
    assert deleted.status_code == 204
    gone = await harness.api.get(f"/v1/extensions/{MAIN}/12")
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"
    again = await harness.api.delete(f"/v1/extensions/{MAIN}/12")
    assert again.status_code == 404 and again.json()["code"] == "not_found"
    assert (await harness.api.get("/v1/extensions")).json()["items"] == []


async def test_put_again_moves_the_extension(harness: Harness) -> None:
    with session_scope(harness.state.engine) as session:
        ensure_line(session, "unit-t", "hw", "10001", "+8610880000009")
    assert (await harness.api.put(f"/v1/extensions/{MAIN}/12", json=LINE)).status_code == 200
    moved = await harness.api.put(f"/v1/extensions/{MAIN}/12",
                                  json={"channel": "hw", "agent": "10001",
                                        "phone": "13800000012"})  # fmt: skip
    assert moved.status_code == 200 and (moved.json()["channel"], moved.json()["agent"]) == (
        "hw", "10001")  # fmt: skip
    listed = (await harness.api.get("/v1/extensions")).json()["items"]
    assert [(i["ext_num"], i["channel"], i["phone"]) for i in listed] == [
        ("12", "hw", "+8613800000012")]  # fmt: skip


async def test_the_agents_phone_is_the_lines_id_when_that_is_a_number(harness: Harness) -> None:
    with session_scope(harness.state.engine) as session:
        ensure_line(session, "unit-t", "e9", "+8613800000077", "+8610880000007")
        ensure_line(session, "unit-t", "hw", "10002", "+8610880000008")
    own = await harness.api.put(f"/v1/extensions/{MAIN}/7",
                                json={"channel": "e9", "agent": "+8613800000077"})  # fmt: skip
    assert own.status_code == 200 and own.json()["phone"] == "+8613800000077"
    seat = await harness.api.put(f"/v1/extensions/{MAIN}/8",
                                 json={"channel": "hw", "agent": "10002"})  # fmt: skip
    assert seat.status_code == 422, seat.text
    assert [e["field"] for e in seat.json()["errors"]] == ["phone"]


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "field"),
    [
        (f"{MAIN}/12a", LINE, 422, "validation_error", "ext_num"),
        (f"{MAIN}/123456789", LINE, 422, "validation_error", "ext_num"),
        (f"{MAIN}/%20", LINE, 422, "validation_error", "ext_num"),
        ("12345/12", LINE, 422, "invalid_number", "main_num"),
        ("not-a-number/12", LINE, 422, "invalid_number", "main_num"),
        (f"{MAIN}/12", {**LINE, "channel": "zz"}, 422, "validation_error", "channel"),
        # The line exists, but on another channel: the same rule as bindings.
        (f"{MAIN}/12", {**LINE, "channel": "jy"}, 422, "validation_error", "agent"),
        (f"{MAIN}/12", {**LINE, "agent": "nobody"}, 422, "validation_error", "agent"),
        (f"{MAIN}/12", {"channel": "e9"}, 422, "validation_error", "agent"),
    ],
)
async def test_bad_fields_are_refused_and_nothing_is_stored(
    harness: Harness, path: str, body: dict[str, str], status: int, code: str, field: str
) -> None:
    response = await harness.api.put(f"/v1/extensions/{path}", json=body)
    assert response.status_code == status, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == code
    assert [e["field"].split(".")[-1] for e in problem["errors"]] == [field]
    assert (await harness.api.get("/v1/extensions")).json()["items"] == []


async def test_eight_digits_and_one_digit_are_extensions(harness: Harness) -> None:
    for ext_num in ("0", "01234567"):
        response = await harness.api.put(f"/v1/extensions/{MAIN}/{ext_num}", json=LINE)
        assert (response.status_code, response.json()["ext_num"]) == (200, ext_num)


async def test_another_tenant_sees_nothing_and_cannot_take_the_number(
    harness: Harness, other: httpx.AsyncClient
) -> None:
    mine = await harness.api.put(f"/v1/extensions/{MAIN}/12", json=LINE)
    assert mine.status_code == 200
    assert (await other.get(f"/v1/extensions/{MAIN}/12")).status_code == 404
    assert (await other.delete(f"/v1/extensions/{MAIN}/12")).status_code == 404
    assert (await other.get("/v1/extensions")).json() == {"items": [], "next_cursor": None}
    for ext_num in ("12", "13"):  # the extension, or another one of the same number
        taken = await other.put(f"/v1/extensions/{MAIN}/{ext_num}", json=OTHER_LINE)
        assert taken.status_code == 403 and taken.json()["code"] == "not_provisioned"
        assert "unit-t" not in taken.text and UNIT_LINE[1] not in taken.text
    # The other tenant's own line is not ours to bind either.
    theirs = await harness.api.put(f"/v1/extensions/{MAIN}/14", json=OTHER_LINE)
    assert theirs.status_code == 422 and theirs.json()["errors"][0]["field"] == "agent"
    still = await harness.api.get(f"/v1/extensions/{MAIN}/12")
    assert still.json() == mine.json()
    other_number = await other.put("/v1/extensions/4006001234/12", json=OTHER_LINE)
    assert other_number.status_code == 200
    assert [i["main_num"] for i in (await harness.api.get("/v1/extensions")).json()["items"]] == [
        MAIN]  # fmt: skip


async def test_list_pages_with_a_cursor(harness: Harness) -> None:
    with session_scope(harness.state.engine) as session:
        provision(session, "unit-t", ResourceKind.MAIN_NUM, "", "+864006001234")
    for i in range(5):
        number = MAIN if i < 3 else "+864006001234"
        assert (await harness.api.put(f"/v1/extensions/{number}/{i}", json=LINE)).status_code == 200
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = (await harness.api.get("/v1/extensions", params=params)).json()
        seen += [item["ext_num"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == ["0", "1", "2", "3", "4"]
    of_main = await harness.api.get("/v1/extensions", params={"main_num": NATIONAL_MAIN})
    assert [i["ext_num"] for i in of_main.json()["items"]] == ["0", "1", "2"]
    forged = await harness.api.get("/v1/extensions", params={"cursor": "bm9wZQ=="})
    assert forged.status_code == 422 and forged.json()["errors"][0]["field"] == "cursor"
    too_many = await harness.api.get("/v1/extensions", params={"limit": 501})
    assert too_many.status_code == 422


async def test_a_key_is_required(harness: Harness) -> None:
    async with asgi_client(harness.app) as anonymous:
        responses = [
            await anonymous.get("/v1/extensions"),
            await anonymous.get(f"/v1/extensions/{MAIN}/12"),
            await anonymous.put(f"/v1/extensions/{MAIN}/12", json=LINE),
            await anonymous.delete(f"/v1/extensions/{MAIN}/12"),
        ]
    assert [r.status_code for r in responses] == [401] * 4


async def test_every_answer_says_how_hw_routes_its_own_inbound_calls(harness: Harness) -> None:
    """Issue 22: a newcomer bound an extension and called the hw simulator's 400 number: hw
    routes its own inbound calls (keyed digits = a signed-in seat's work number) and never
    asks CC. The answer says so."""
    bound = await harness.api.put(f"/v1/extensions/{MAIN}/12", json=LINE)
    assert "hw (Huawei CEC) routes the inbound calls it hosts itself" in bound.json()["routing"]
    assert "work number" in bound.json()["routing"]
    listed = (await harness.api.get("/v1/extensions")).json()["items"]
    assert listed[0]["routing"] == bound.json()["routing"]
