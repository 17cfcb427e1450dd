"""Issue 9: a database that cannot be reached or used (connection refused, file missing,
"database is locked") is a 503 ``store_unavailable`` with ``Retry-After``, never a 500:
vendors retry a webhook on it and apps see a clear code."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy.exc import IntegrityError, OperationalError

from api.deps import AppState
from channels.e9 import webhook_signature
from tests.api.conftest import UNIT_KEY, Harness
from tests.api.test_placement import BODY
from tests.support import free_port


def assert_store_down(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "store_unavailable"
    assert int(response.headers["retry-after"]) > 0
    assert "sqlite" not in response.text.lower() and "select" not in response.text.lower()


def signed_e9(harness: Harness) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps({"event": "callA", "timestamp": "20261125120000", "eventId": "ev-down-1",
                      "callSid": "sid-down-1", "userData": "x"}).encode()  # fmt: skip
    ts = str(int(time.time()))
    signature = webhook_signature(harness.state.settings.e9_auth_token, ts, raw)
    return raw, {"x-e9-timestamp": ts, "x-e9-signature": signature}


def requests(harness: Harness) -> list[tuple[str, str, dict[str, Any]]]:
    raw, headers = signed_e9(harness)
    return [
        ("GET", "/v1/calls", {}),
        ("GET", "/v1/lines", {}),
        ("GET", "/v1/calls/export.csv", {}),
        ("GET", "/v1/calls/some-call/events", {}),
        ("POST", "/v1/calls", {"json": BODY}),
        ("POST", "/webhooks/e9", {"content": raw, "headers": headers}),
    ]


def missing_sqlite(tmp_path: Path) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")


def refused_postgres(_: Path) -> sqlalchemy.Engine:
    pytest.importorskip("psycopg")
    url = f"postgresql+psycopg://cc@127.0.0.1:{free_port()}/cc?connect_timeout=2"
    return sqlalchemy.create_engine(url)


@pytest.mark.parametrize("engine", [missing_sqlite, refused_postgres])
async def test_an_unreachable_database_is_503_everywhere(
    harness: Harness, tmp_path: Path, engine: Any
) -> None:
    harness.state.engine = engine(tmp_path)
    for method, path, kwargs in requests(harness):
        assert_store_down(await harness.api.request(method, path, **kwargs))


async def test_a_locked_database_is_503(harness: Harness, monkeypatch: Any) -> None:
    async def locked(self: AppState, fn: Any) -> Any:
        raise OperationalError("UPDATE agent_line ...", {}, Exception("database is locked"))

    monkeypatch.setattr(AppState, "in_store", locked)
    assert_store_down(await harness.api.get("/v1/lines"))
    assert_store_down(await harness.api.post("/v1/calls", json=BODY))


async def test_a_bug_in_a_query_is_still_a_500(harness: Harness, monkeypatch: Any) -> None:
    async def broken(self: AppState, fn: Any) -> Any:
        raise IntegrityError("INSERT ...", {}, Exception("NOT NULL constraint failed"))

    monkeypatch.setattr(AppState, "in_store", broken)
    response = await harness.api.get("/v1/lines", headers={"Authorization": f"Bearer {UNIT_KEY}"})
    assert (response.status_code, response.json()["code"]) == (500, "internal_error")
