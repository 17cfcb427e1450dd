"""Retention over the API: a tenant reads its retention and (admin) sets its own within the
platform's bound, the operator sets any tenant's; an admin deletes one call's recording now:
the file goes, the record stays, the call tells why, and who did it is logged."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from store.calls import get_call_any_tenant
from store.db import now_ms, session_scope
from store.tenants import add_api_key, ensure_tenant
from tests.api.conftest import OPERATOR_KEY, UNIT_TENANT, Harness, asgi_client
from tests.api.conftest import harness as harness  # the fixture
from tests.api.seed import bulk_insert, call_row

ADMIN_KEY, OTHER_KEY = "test-key-unit-admin", "test-key-other-admin"


@pytest.fixture
async def clients(harness: Harness) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    with session_scope(harness.state.engine) as session:
        add_api_key(session, UNIT_TENANT, ADMIN_KEY, "admin")
        ensure_tenant(session, "other-t")
        add_api_key(session, "other-t", OTHER_KEY, "admin")
    made = {
        name: asgi_client(harness.app, headers={"Authorization": f"Bearer {key}"})
        for name, key in (("admin", ADMIN_KEY), ("other", OTHER_KEY), ("operator", OPERATOR_KEY))
    }
    yield made
    for client in made.values():
        await client.aclose()


async def test_a_tenant_sets_its_own_retention_within_the_platforms_bound(
    harness: Harness, clients: dict[str, httpx.AsyncClient]
) -> None:
    assert (await harness.api.get("/v1/settings")).json() == {
        "retention_days": 90, "retention_source": "platform", "retention_max_days": 365,
        "retry": None, "window": None,
    }  # fmt: skip
    refused = await harness.api.put("/v1/settings", json={"retention_days": 7})
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")  # not admin
    too_long = await clients["admin"].put("/v1/settings", json={"retention_days": 366})
    assert (too_long.status_code, too_long.json()["code"]) == (422, "validation_error")
    assert too_long.json()["errors"][0]["field"] == "retention_days"
    for bad in (0, -1, "seven"):
        answer = await clients["admin"].put("/v1/settings", json={"retention_days": bad})
        assert answer.status_code == 422

    own = await clients["admin"].put("/v1/settings", json={"retention_days": 7})
    assert own.json()["retention_days"] == 7 and own.json()["retention_source"] == "tenant"
    assert (await clients["other"].get("/v1/settings")).json()["retention_days"] == 90
    back = await clients["admin"].put("/v1/settings", json={"retention_days": None})
    assert back.json()["retention_source"] == "platform"


async def test_the_operator_sets_a_tenants_retention_and_keeps_it_when_not_named(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    operator = clients["operator"]
    path = f"/v1/operator/tenants/{UNIT_TENANT}"
    set_ = await operator.put(path, json={"retention_days": 1000})  # beyond a tenant's bound
    assert set_.status_code == 200 and set_.json()["retention_days"] == 1000
    kept = await operator.put(path, json={"max_lines": 5})  # a quota change alone
    assert kept.json()["retention_days"] == 1000
    assert (await clients["admin"].get("/v1/settings")).json()["retention_days"] == 1000
    tenant_tries = await clients["admin"].put(path, json={"retention_days": 1})
    assert tenant_tries.status_code == 403


def recorded_call(harness: Harness, tenant: str = UNIT_TENANT) -> tuple[str, Path]:
    row = call_row(tenant, now_ms(), record_audio=True)
    key = f"{tenant}/2026/12/06/{row['cc_call_id']}.wav"
    path = Path(harness.state.settings.storage_dir) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF....WAVE")
    row.update(audio_url=f"local:{key}", ch_audio_url="https://vendor.example/r.wav")
    bulk_insert(harness.state.engine, [row])
    return row["cc_call_id"], path


async def test_an_admin_deletes_a_recording_now_and_it_stays_deleted(
    harness: Harness, clients: dict[str, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    cc_call_id, path = recorded_call(harness)
    url = f"/v1/calls/{cc_call_id}/recording"
    assert (await harness.api.get(url)).status_code == 200
    assert (await harness.api.delete(url)).status_code == 403  # a full key may not
    assert (await clients["other"].delete(url)).status_code == 404  # nor another tenant
    assert path.exists()

    with caplog.at_level(logging.INFO, logger="cc.api.recordings"):
        deleted = await clients["admin"].delete(url)
    assert deleted.status_code == 204 and not path.exists()
    [line] = [r.getMessage() for r in caplog.records if "recording deleted" in r.getMessage()]
    assert f"call={cc_call_id}" in line and "by key=" in line and "key=None" not in line

    gone = await harness.api.get(url)
    assert (gone.status_code, gone.json()["code"]) == (404, "no_recording")
    assert "deleted by admin key" in gone.json()["detail"]
    view = (await harness.api.get(f"/v1/calls/{cc_call_id}")).json()
    assert (view["audio_url"], view["ch_audio_url"]) == (None, None)
    assert view["called"] == "+8613900000002"  # the record itself stays
    assert (await clients["admin"].delete(url)).status_code == 204  # idempotent
    with session_scope(harness.state.engine) as session:
        stored = get_call_any_tenant(session, cc_call_id)
    assert stored is not None and stored.recording_deleted is not None
