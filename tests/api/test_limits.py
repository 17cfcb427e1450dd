"""Issue 9: no request body over ``settings.max_body_bytes`` is buffered. A declared
Content-Length over the cap is a 413 before a byte is read; a chunked body is cut at the cap.
Webhooks too, before their signature check."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import httpx

from channels.e9 import webhook_signature
from tests.api.conftest import MAX_BODY, Harness
from tests.api.test_placement import BODY

CHUNK = 1024


class Source:
    """A request body of ``chunks`` chunks that counts how many were pulled."""

    def __init__(self, chunks: int) -> None:
        self.chunks, self.pulled = chunks, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield b"x" * CHUNK


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"


async def test_a_declared_length_over_the_cap_is_refused_unread(harness: Harness) -> None:
    body = Source(10_000)  # 10 MiB if it were read
    headers = {"Content-Length": str(10_000 * CHUNK), "Content-Type": "application/json"}
    response = await harness.api.post("/v1/calls", content=body, headers=headers)
    assert_too_large(response)
    assert body.pulled == 0
    assert harness.temporal.started == []


async def test_a_chunked_body_is_cut_at_the_cap(harness: Harness) -> None:
    body = Source(10_000)
    response = await harness.api.post(
        "/v1/calls", content=body, headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers  # chunked, as a stream goes
    assert_too_large(response)
    assert body.pulled <= MAX_BODY // CHUNK + 1  # read up to the cap, then no further
    assert harness.temporal.started == []


async def test_a_webhook_over_the_cap_is_413_before_its_signature_is_checked(
    harness: Harness,
) -> None:
    response = await harness.api.post("/webhooks/e9", content=b"{" + b" " * MAX_BODY + b"}")
    assert_too_large(response)
    chunked = Source(100)
    assert_too_large(await harness.api.post("/webhooks/jy", content=chunked))
    assert chunked.pulled <= MAX_BODY // CHUNK + 1


async def test_bodies_up_to_the_cap_go_through(harness: Harness) -> None:
    padded = {**BODY, "biz_data": "b" * (MAX_BODY - len(json.dumps(BODY)) - 20)}
    assert len(json.dumps(padded)) <= MAX_BODY
    assert (await harness.api.post("/v1/calls", json=padded)).status_code == 201
    # A signed e9 webhook at the cap reaches its handler (stored, acknowledged).
    event = {"event": "callA", "timestamp": "20261125120000", "eventId": "ev-limits-1",
             "callSid": "sid-limits-1", "userData": "no-such-call"}  # fmt: skip
    raw = json.dumps({**event, "pad": "p" * (MAX_BODY - len(json.dumps(event)) - 20)}).encode()
    assert len(raw) <= MAX_BODY
    ts = str(int(time.time()))
    token = harness.state.settings.e9_auth_token
    headers = {"x-e9-timestamp": ts, "x-e9-signature": webhook_signature(token, ts, raw),
               "Content-Type": "application/json"}  # fmt: skip
    response = await harness.api.post("/webhooks/e9", content=raw, headers=headers)
    assert response.status_code == 200, response.text
