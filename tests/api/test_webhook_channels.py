"""POST /webhooks/{channel} exists only for webhook channels: a polled one has none; it
answers once the events are stored, and signals them after."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlmodel import Session, select

from store.models import VendorEvent
from tests.api.conftest import FakeHandle, Harness
from tests.api.test_store_down import signed_e9


async def test_a_polled_channel_answers_webhooks_like_an_unknown_channel(
    harness: Harness,
) -> None:
    unknown = await harness.api.post("/webhooks/nosuch", content=b"{}")
    polled = await harness.api.post("/webhooks/hw", content=b"{}")
    assert unknown.status_code == polled.status_code == 404
    assert polled.headers["content-type"] == unknown.headers["content-type"]
    assert polled.json() == unknown.json()


async def test_a_webhook_is_answered_once_stored_whatever_temporal_does(
    harness: Harness, monkeypatch: Any
) -> None:
    """Issue 12: the vendor's answer waits for the inbox commit only; the signal follows."""
    held = asyncio.Event()

    async def hanging(*_: Any, **__: Any) -> None:
        await held.wait()

    monkeypatch.setattr(FakeHandle, "signal", hanging)
    raw, headers = signed_e9(harness)
    answer = await asyncio.wait_for(harness.api.post("/webhooks/e9", content=raw,
                                                     headers=headers), 5)  # fmt: skip
    assert answer.status_code == 200
    with Session(harness.state.engine) as session:
        stored = session.exec(select(VendorEvent)).one()
    assert (stored.dedupe_key, stored.signalled_at) == ("ev-down-1", None)
    held.set()
    await harness.state.dispatcher.drain()
    with Session(harness.state.engine) as session:
        assert session.exec(select(VendorEvent)).one().signal_attempts == 1
