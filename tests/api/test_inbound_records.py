"""Issue 13, inbound calls as records: ``GET /v1/calls`` and the export filter on
``direction``, ``main_num`` and ``ext_num``, and a ``masked`` key never reads the customer's
number, which on an inbound call is ``caller`` (the view, pages, the CSV, raw vendor events,
searches)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from core.phones import mask
from store.db import session_scope
from store.tenants import add_api_key
from tests.api.conftest import UNIT_TENANT, Harness, asgi_client
from tests.api.seed import add_event, bulk_insert, call_row

CREATED = 1_800_000_000_000
CUSTOMER, NATIONAL = "+8613900000066", "13900000066"  # the customer who dialled the 400 number
AGENT = "+8613800000012"  # the agent's phone the call was bridged to
OUT_CUSTOMER, OUT_NATIONAL = "+8613900000088", "13900000088"  # a callback's customer
MAIN, EXT = "+864008001234", "12"
MASKED_KEY = "test-key-unit-t-masked"


def inbound(created: int, **fields: Any) -> dict[str, Any]:
    values = {"direction": "in", "caller": CUSTOMER, "called": AGENT, "main_num": MAIN,
              "ext_num": EXT, "channel": "e9", "agent": AGENT, **fields}  # fmt: skip
    return call_row(UNIT_TENANT, created, **values)


@pytest.fixture
def seeded(harness: Harness) -> dict[str, str]:
    """An inbound call (with its e9 and jy vendor events and a failed attempt naming the
    customer), a second inbound call to another extension, and a callback."""
    attempts = [{"channel": "e9", "agent": AGENT, "at": CREATED, "outcome": "failed",
                 "error": f"vendor refused {CUSTOMER}"}]  # fmt: skip
    rows = {
        "in": inbound(CREATED + 3, attempts=json.dumps(attempts)),
        "in_other_ext": inbound(CREATED + 2, ext_num="13"),
        "out": call_row(UNIT_TENANT, CREATED + 1, caller=AGENT, called=OUT_CUSTOMER),
    }
    bulk_insert(harness.state.engine, list(rows.values()))
    call_id = rows["in"]["cc_call_id"]
    e9 = {"eventId": "ev1", "callSid": "c1", "event": "callin", "caller": NATIONAL,
          "called": "4008001234", "ext": EXT, "timestamp": "20270115080000",
          "userData": ""}  # fmt: skip
    add_event(harness.state.engine, call_id, json.dumps(e9), "application/json")
    jy = "CallSid=CA1&From=%2B8613900000066&To=%2B864008001234&Digits=12"
    add_event(harness.state.engine, call_id, jy, "application/x-www-form-urlencoded")
    with session_scope(harness.state.engine) as session:
        add_api_key(session, UNIT_TENANT, MASKED_KEY, "masked")
    return {name: row["cc_call_id"] for name, row in rows.items()}


@pytest.fixture
async def masked(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(harness.app, headers={"Authorization": f"Bearer {MASKED_KEY}"}) as api:
        yield api


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_the_query_filters_on_direction_main_num_and_ext_num(
    harness: Harness, seeded: dict[str, str]
) -> None:
    async def find(**params: str) -> list[str]:
        return ids(await harness.api.get("/v1/calls", params=params))

    both_in = [seeded["in"], seeded["in_other_ext"]]
    assert await find(direction="in") == both_in
    assert await find(direction="out") == [seeded["out"]]
    assert await find(main_num=MAIN) == both_in
    assert await find(main_num="4008001234") == both_in  # national, in the tenant's region
    assert await find(main_num="4006001234") == []
    assert await find(main_num=MAIN, ext_num=EXT) == [seeded["in"]]
    assert await find(ext_num="13") == [seeded["in_other_ext"]]
    assert await find(direction="out", main_num=MAIN) == []
    view = (await harness.api.get(f"/v1/calls/{seeded['in']}")).json()
    assert (view["direction"], view["caller"], view["called"]) == ("in", CUSTOMER, AGENT)
    assert (view["main_num"], view["ext_num"]) == (MAIN, EXT)


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"direction": "sideways"}, "validation_error", "direction"),
        ({"direction": "IN"}, "validation_error", "direction"),
        ({"ext_num": "12a"}, "validation_error", "ext_num"),
        ({"ext_num": "123456789"}, "validation_error", "ext_num"),
        ({"main_num": "12345"}, "invalid_number", "main_num"),
    ],
)
async def test_bad_inbound_filters_are_refused(
    harness: Harness, params: dict[str, str], code: str, field: str
) -> None:
    for path in ("/v1/calls", "/v1/calls/export.csv"):
        response = await harness.api.get(path, params=params)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["code"] == code
        assert [e["field"].split(".")[-1] for e in response.json()["errors"]] == [field]


async def test_the_export_takes_the_same_filters(harness: Harness, seeded: dict[str, str]) -> None:
    params = {"direction": "in", "main_num": "4008001234", "ext_num": EXT}
    rows = csv_rows(await harness.api.get("/v1/calls/export.csv", params=params))
    assert [(r["id"], r["direction"], r["main_num"], r["ext_num"]) for r in rows] == [
        (seeded["in"], "in", MAIN, EXT)]  # fmt: skip
    assert (rows[0]["caller"], rows[0]["called"]) == (CUSTOMER, AGENT)
    outbound = csv_rows(await harness.api.get("/v1/calls/export.csv", params={"direction": "out"}))
    assert [r["id"] for r in outbound] == [seeded["out"]]


async def test_a_masked_key_never_reads_an_inbound_customer(
    masked: httpx.AsyncClient, seeded: dict[str, str]
) -> None:
    call_id = seeded["in"]
    reads = {
        "view": await masked.get(f"/v1/calls/{call_id}"),
        "list": await masked.get("/v1/calls", params={"direction": "in"}),
        "export": await masked.get("/v1/calls/export.csv", params={"main_num": MAIN}),
        "events": await masked.get(f"/v1/calls/{call_id}/events"),
    }
    for what, response in reads.items():
        assert response.status_code == 200, what
        assert NATIONAL not in response.text, f"{what} shows the inbound customer's number"
    view = reads["view"].json()
    assert (view["caller"], view["called"]) == (mask(CUSTOMER), AGENT)  # the agent's in full
    assert view["attempts"][0]["error"] == f"vendor refused {mask(CUSTOMER)}"
    assert [(i["caller"], i["called"]) for i in reads["list"].json()["items"]] == [
        (mask(CUSTOMER), AGENT)] * 2  # fmt: skip
    assert {(r["caller"], r["called"]) for r in csv_rows(reads["export"])} == {
        (mask(CUSTOMER), AGENT)}  # fmt: skip
    e9, jy = (event["body"] for event in reads["events"].json()["items"])
    assert json.loads(e9)["caller"] == "139****0066" and json.loads(e9)["called"] == "4008001234"
    assert jy == "CallSid=CA1&From=%2B86139****0066&To=%2B864008001234&Digits=12"


async def test_a_masked_key_still_reads_a_callbacks_caller_and_masks_its_called(
    masked: httpx.AsyncClient, seeded: dict[str, str]
) -> None:
    view = (await masked.get(f"/v1/calls/{seeded['out']}")).json()
    assert (view["caller"], view["called"]) == (AGENT, mask(OUT_CUSTOMER))
    everything = await masked.get("/v1/calls/export.csv")
    assert NATIONAL not in everything.text and OUT_NATIONAL not in everything.text
    assert len(csv_rows(everything)) == 3


async def test_a_masked_key_cannot_search_by_an_inbound_customer(
    harness: Harness, masked: httpx.AsyncClient, seeded: dict[str, str]
) -> None:
    for params in ({"caller": CUSTOMER, "direction": "in"}, {"caller": NATIONAL, "direction": "in"},
                   {"called": OUT_CUSTOMER}, {"called": AGENT, "direction": "out"}):  # fmt: skip
        for path in ("/v1/calls", "/v1/calls/export.csv"):
            refused = await masked.get(path, params=params)
            assert refused.status_code == 403, (path, params)
            assert refused.json()["code"] == "forbidden" and NATIONAL not in refused.text
    # Without a direction a masked key's `caller` is the agent's leg: callbacks only, so an
    # inbound customer's number finds nothing (not even "it called").
    assert ids(await masked.get("/v1/calls", params={"caller": CUSTOMER})) == []
    assert ids(await masked.get("/v1/calls", params={"caller": AGENT})) == [seeded["out"]]
    assert csv_rows(await masked.get("/v1/calls/export.csv", params={"caller": CUSTOMER})) == []
    # On an inbound call `called` is the agent's phone: a masked key may search by it.
    by_agent = await masked.get("/v1/calls", params={"called": AGENT, "direction": "in"})
    assert ids(by_agent) == [seeded["in"], seeded["in_other_ext"]]
    # A full key searches by either leg.
    found = await harness.api.get("/v1/calls", params={"caller": NATIONAL})
    assert ids(found) == [seeded["in"], seeded["in_other_ext"]]
