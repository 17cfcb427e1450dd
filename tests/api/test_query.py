"""GET /v1/calls and /v1/calls/export.csv on the live API: filters, keyset pages, CSV, and
tenant isolation on every call route."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from api.schemas import EXPORT_COLUMNS
from store.call_query import CallFilter
from store.db import make_engine
from tests.api.seed import add_tenant_key, bulk_insert, call_row, count_matching
from tests.stack import Stack

TENANT, KEY = "query-t", "test-key-query-t"
SINCE = 1_800_000_000_000


@pytest.fixture(scope="module")
def engine(stack: Stack) -> Iterator[Engine]:
    add_tenant_key(stack.settings.database_url, TENANT, KEY)
    engine = make_engine(stack.settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
async def api(stack: Stack, engine: Engine) -> Any:
    async with stack.as_tenant(KEY) as client:
        yield client


async def test_pages_through_10000_closed_hw_calls_without_duplicates_or_gaps(
    api: httpx.AsyncClient, engine: Engine
) -> None:
    since = SINCE + 10**6
    wanted = [call_row(TENANT, since + 1 + i // 6) for i in range(10_000)]
    noise = (
        [call_row(TENANT, since + i, state="conn") for i in range(200)]
        + [call_row(TENANT, since + i, channel="e9") for i in range(200)]
        + [call_row(TENANT, since - 1 - i) for i in range(200)]
    )
    bulk_insert(engine, wanted + noise)
    flt = CallFilter(tenant=TENANT, state="close", channel="hw", since=since)
    assert count_matching(engine, flt) == 10_000

    params: dict[str, Any] = {"state": "close", "channel": "hw", "since": since, "limit": 500}
    ids: list[str] = []
    keys: list[tuple[int, str]] = []
    while True:
        page = (await api.get("/v1/calls", params=params)).json()
        ids += [item["id"] for item in page["items"]]
        keys += [(item["created"], item["id"]) for item in page["items"]]
        assert all(i["state"] == "close" and i["channel"] == "hw" for i in page["items"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
        # A new call arriving mid-paging sorts before the first page: nothing shifts.
        bulk_insert(engine, [call_row(TENANT, since + 10**6)])
    assert len(ids) == len(set(ids)) == 10_000
    assert {row["cc_call_id"] for row in wanted} == set(ids)
    assert [created for created, _ in keys] == sorted((c for c, _ in keys), reverse=True)


async def test_filters_take_national_numbers_and_close_type(
    api: httpx.AsyncClient, engine: Engine
) -> None:
    base = SINCE + 5 * 10**6
    mine = call_row(TENANT, base, caller="+8613800000077", called="+8613900000077",
                    close_type="4", agent="hw-77", user="u77")  # fmt: skip
    bulk_insert(engine, [mine, call_row(TENANT, base + 1, close_type="4")])
    cases: list[dict[str, Any]] = [
        {"called": "13900000077"},
        {"called": "+8613900000077"},
        {"caller": "138 0000 0077"},
        {"agent": "hw-77", "close_type": 4},
        {"user": "u77", "since": base, "until": base + 1},
    ]
    for params in cases:
        page = (await api.get("/v1/calls", params=params)).json()
        assert [item["id"] for item in page["items"]] == [mine["cc_call_id"]], params
    page = (await api.get("/v1/calls", params={"close_type": 4, "since": base})).json()
    assert len(page["items"]) == 2 and page["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"called": "+86123"}, "called"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"state": "ringing"}, "state"),
        ({"close_type": 256}, "close_type"),
        ({"since": 2**64}, "since"),
        ({"cursor": "Y2s6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTox"}, "cursor"),  # ck:<beyond bigint>:1
    ],
)
async def test_bad_filters_are_problems_naming_the_field(
    api: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await api.get("/v1/calls", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"].removeprefix("query.") for e in response.json()["errors"]] == [field]


async def test_export_streams_the_same_filters_with_record_column_names(
    api: httpx.AsyncClient, engine: Engine
) -> None:
    base = SINCE + 6 * 10**6
    rows = [call_row(TENANT, base + i // 2, channel="jy", biz_data='a,"b"\nc') for i in range(1234)]
    bulk_insert(engine, rows + [call_row(TENANT, base, channel="e9")])
    async with api.stream("GET", "/v1/calls/export.csv",
                          params={"channel": "jy", "since": base}) as response:  # fmt: skip
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        text = "".join([chunk async for chunk in response.aiter_text()])
    table = list(csv.reader(io.StringIO(text)))
    assert tuple(table[0]) == EXPORT_COLUMNS
    exported = [dict(zip(table[0], line, strict=True)) for line in table[1:]]
    assert {r["id"] for r in exported} == {r["cc_call_id"] for r in rows}
    assert len(exported) == 1234
    assert all(r["channel"] == "jy" and r["biz_data"] == 'a,"b"\nc' for r in exported)
    listed = (await api.get("/v1/calls", params={"channel": "jy", "since": base})).json()
    assert [r["id"] for r in exported[:50]] == [i["id"] for i in listed["items"]]


async def test_another_tenants_call_is_404_on_every_route(
    stack: Stack, api: httpx.AsyncClient, engine: Engine
) -> None:
    theirs = call_row(TENANT, SINCE + 7 * 10**6, state="init", channel="e9")
    bulk_insert(engine, [theirs])
    call_id = theirs["cc_call_id"]
    assert (await api.get(f"/v1/calls/{call_id}")).status_code == 200
    other = stack.api  # tenant-a's key
    for method, path in (
        ("GET", f"/v1/calls/{call_id}"),
        ("GET", f"/v1/calls/{call_id}/events"),
        ("POST", f"/v1/calls/{call_id}/hangup"),
    ):
        response = await other.request(method, path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
    listed = (await other.get("/v1/calls", params={"channel": "e9", "limit": 500})).json()
    assert call_id not in {item["id"] for item in listed["items"]}
    assert all(item["tenant"] == "tenant-a" for item in listed["items"])
    exported = (await other.get("/v1/calls/export.csv")).text
    assert call_id not in exported and TENANT not in exported
