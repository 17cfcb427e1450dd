"""Issue 9: a forged, oversized or garbage ``cursor`` on any paged endpoint is a 422
``validation_error`` on ``cursor``, never a 500 (an id of 10**30 used to overflow SQLite)."""

from __future__ import annotations

import base64

import pytest

from api.paging import (
    decode_cursor,
    decode_event_cursor,
    decode_keyset,
    encode_cursor,
    encode_event_cursor,
    encode_keyset,
)
from store.call_query import Keyset
from tests.api.conftest import Harness


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


BIG = 10**30
GARBAGE = {
    "lines": [b64(f"id:{BIG}"), b64(f"id:{2**63}"), b64("id:-1"), b64("id:1:2"), b64("ck:1:2")],
    "calls": [b64(f"ck:{BIG}:1"), b64(f"ck:1:{BIG}"), b64("ck:1"), b64("ck:1:2:3"),
              b64("id:5"), b64("ck:١:2"), b64("ck: 1:2")],
    "events": [b64(f"ev:{BIG}:1"), b64(f"ev:1:{BIG}"), b64("ev:1"), b64("ck:1:2")],
}  # fmt: skip
# Wrong for every endpoint: not base64, not ASCII, not UTF-8 inside, empty payload, too long.
EVERYWHERE = ["%%%not-base64%%%", "abc", "é", base64.b64encode(b"\xff\xfe:1").decode(),
              b64(":"), b64("id:" + "9" * 5000), "A" * 4000]  # fmt: skip


@pytest.mark.parametrize("endpoint", ["lines", "calls", "events"])
async def test_a_garbage_cursor_is_a_422_on_every_paged_endpoint(
    harness: Harness, endpoint: str
) -> None:
    path = {"lines": "/v1/lines", "calls": "/v1/calls", "events": "/v1/calls/nosuch/events"}
    for cursor in GARBAGE[endpoint] + EVERYWHERE:
        response = await harness.api.get(path[endpoint], params={"cursor": cursor})
        assert response.status_code == 422, (cursor[:40], response.text[:200])
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == "validation_error"
        assert [e["field"] for e in body["errors"]][-1].endswith("cursor")


async def test_cursors_of_this_api_still_page(harness: Harness) -> None:
    response = await harness.api.get("/v1/lines", params={"cursor": encode_cursor(0)})
    assert response.status_code == 200
    assert [line["agent"] for line in response.json()["items"]] == ["e9-unit-1"]
    assert (await harness.api.get("/v1/lines", params={"cursor": encode_cursor(10**9)})).json() == {
        "items": [],
        "next_cursor": None,
    }
    last = encode_keyset(Keyset(2**63 - 1, 2**63 - 1))
    assert (await harness.api.get("/v1/calls", params={"cursor": last})).status_code == 200


def test_round_trips_and_unpadded_cursors() -> None:
    assert decode_cursor(encode_cursor(42)) == 42
    assert decode_keyset(encode_keyset(Keyset(1_800_000_000_000, 7))) == Keyset(
        1_800_000_000_000, 7
    )
    assert decode_event_cursor(encode_event_cursor(5, 6)) == (5, 6)
    assert decode_cursor(encode_cursor(42).rstrip("=")) == 42  # padding stripped by a client
    assert decode_cursor(None) == decode_cursor("") == 0
