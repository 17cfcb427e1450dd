"""Issue 12: an API process trusts a key it has looked up for ``api_key_cache_s``, so most
requests skip the key lookup; a removed key stops working once that time has passed."""

from __future__ import annotations

from typing import Any

import pytest
from cachetools import TTLCache
from sqlmodel import Session, delete

from store import tenants
from store.models import ApiKey
from tests.api.conftest import Harness


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def remove_keys(harness: Harness) -> None:
    with Session(harness.state.engine) as session:
        session.exec(delete(ApiKey))  # type: ignore[call-overload]
        session.commit()


async def test_a_known_key_skips_the_lookup_until_its_time_is_up(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    harness.state.callers = TTLCache(100, harness.state.settings.api_key_cache_s, timer=clock)
    lookups: list[str] = []
    real = tenants.key_by_hash

    def counted(session: Session, key_hash: str) -> Any:
        lookups.append(key_hash)
        return real(session, key_hash)

    monkeypatch.setattr(tenants, "key_by_hash", counted)
    for _ in range(5):
        assert (await harness.api.get("/v1/lines")).status_code == 200
    assert len(lookups) == 1
    remove_keys(harness)
    clock.now += harness.state.settings.api_key_cache_s - 0.1
    assert (await harness.api.get("/v1/lines")).status_code == 200  # still trusted
    clock.now += 0.2
    assert (await harness.api.get("/v1/lines")).status_code == 401
    assert len(lookups) == 2


async def test_an_unknown_key_is_never_remembered(harness: Harness) -> None:
    bad = {"Authorization": "Bearer no-such-key"}
    assert (await harness.api.get("/v1/lines", headers=bad)).status_code == 401
    assert len(harness.state.callers) == 0
