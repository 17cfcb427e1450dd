"""GET /v1/stats on the API: the figures of the key's own tenant only, for any key, grouped as
asked; a range that cannot be is a 422 that names the field."""

from __future__ import annotations

from typing import Any

from store.db import session_scope
from store.histogram import bucket
from store.stats import DAY_MS
from store.tenants import add_api_key, ensure_tenant
from tests.api.conftest import UNIT_TENANT, Harness, asgi_client
from tests.api.seed import bulk_insert, call_row

DAY = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS
MASKED_KEY = "test-key-stats-masked"


def talked(tenant: str, created: int, channel: str, seconds: int) -> dict[str, Any]:
    return call_row(
        tenant,
        created,
        channel=channel,
        vendor_call_id=f"v{created}",
        conn_time=created + 4_000,
        duration=seconds,
    )


async def test_a_tenant_reads_its_own_figures_grouped_as_asked(harness: Harness) -> None:
    engine = harness.state.engine
    with session_scope(engine) as session:
        ensure_tenant(session, "other-t")
        add_api_key(session, UNIT_TENANT, MASKED_KEY, "masked")
    bulk_insert(
        engine,
        [
            talked(UNIT_TENANT, DAY + 1, "e9", 20),
            talked(UNIT_TENANT, DAY + 2, "e9", 40),
            call_row(UNIT_TENANT, DAY + 3, channel="jy", vendor_call_id="v3", duration=0),
            talked("other-t", DAY + 4, "e9", 500),  # another tenant's: never counted
        ],
    )
    params = {"since": DAY, "until": DAY + DAY_MS, "by": "channel"}
    async with asgi_client(harness.app, headers={"Authorization": f"Bearer {MASKED_KEY}"}) as api:
        answer = await api.get("/v1/stats", params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["since"], body["until"], body["by"]) == (DAY, DAY + DAY_MS, "channel")
    e9, jy = body["groups"]
    assert e9 == {
        "key": "e9",
        "calls": 2,
        "placed": 2,
        "connected": 2,
        "answer_rate": 1.0,
        "talk_seconds": {"sum": 60, "p50": 20, "p95": 40},
        # 4 s, as its bucket's start (store/histogram.py: under 1 % below)
        "placement_to_answer_seconds": {"p50": bucket(4_000) / 1000, "p95": bucket(4_000) / 1000},
    }
    assert (jy["key"], jy["connected"], jy["answer_rate"], jy["talk_seconds"]["p50"]) == (
        "jy",
        0,
        0.0,
        None,
    )
    whole = (await harness.api.get("/v1/stats", params={"since": DAY, "until": DAY + 9})).json()
    assert [(g["key"], g["calls"]) for g in whole["groups"]] == [(None, 3)]


async def test_a_range_that_cannot_be_is_refused_naming_since(harness: Harness) -> None:
    for params in ({"since": DAY, "until": DAY}, {"since": DAY, "until": DAY + 367 * DAY_MS}):
        answer = await harness.api.get("/v1/stats", params=params)
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == "since"
    assert (await harness.api.get("/v1/stats", params={"by": "caller"})).status_code == 422


async def test_the_default_range_is_the_last_seven_days(harness: Harness) -> None:
    body = (await harness.api.get("/v1/stats")).json()
    assert body["until"] - body["since"] == 7 * DAY_MS and body["groups"] == []
