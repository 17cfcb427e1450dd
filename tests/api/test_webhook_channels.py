"""POST /webhooks/{channel} exists only for webhook channels: a polled one has none."""

from __future__ import annotations

from tests.api.conftest import Harness


async def test_a_polled_channel_answers_webhooks_like_an_unknown_channel(
    harness: Harness,
) -> None:
    unknown = await harness.api.post("/webhooks/nosuch", content=b"{}")
    polled = await harness.api.post("/webhooks/hw", content=b"{}")
    assert unknown.status_code == polled.status_code == 404
    assert polled.headers["content-type"] == unknown.headers["content-type"]
    assert polled.json() == unknown.json()
