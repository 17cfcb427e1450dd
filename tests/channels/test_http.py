"""The shared vendor HTTP: the same answer means the same typed error for every adapter."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from channels.errors import (
    VendorNetworkError,
    VendorOutcomeUnknown,
    VendorRateLimited,
    VendorServerError,
)
from channels.http import MAX_ANSWER_BYTES, RateLimit, json_object, read_object, send


def client(*responses: httpx.Response) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    answers = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(answers)

    return httpx.AsyncClient(base_url="http://v", transport=httpx.MockTransport(handler)), seen


async def test_a_429_without_a_rate_limit_is_back_pressure_with_the_vendors_wait() -> None:
    http, seen = client(httpx.Response(429, headers={"Retry-After": "7"}))
    with pytest.raises(VendorRateLimited, match="x /p: HTTP 429") as caught:
        await send(http, "GET", "/p", what="x /p")
    assert caught.value.retry_after_s == 7.0 and len(seen) == 1
    http, _ = client(httpx.Response(503, headers={"Retry-After": "7"}))
    with pytest.raises(VendorServerError) as failed:
        await send(http, "GET", "/p", what="x /p")
    assert not isinstance(failed.value, VendorRateLimited)  # a 5xx is the vendor failing


async def test_a_429_with_a_rate_limit_is_waited_out_then_carries_retry_after() -> None:
    limited = httpx.Response(429, headers={"Retry-After": "0"})
    http, seen = client(limited, limited, httpx.Response(200, json={"ok": 1}))
    answer = await send(http, "GET", "/p", what="x", rate_limit=RateLimit(2, 1.0))
    assert answer.status_code == 200 and len(seen) == 3
    http, seen = client(limited, limited, limited)
    with pytest.raises(VendorRateLimited, match="rate limited") as caught:
        await send(http, "GET", "/p", what="x", rate_limit=RateLimit(2, 1.0))
    assert caught.value.retry_after_s == 0.0 and len(seen) == 3
    http, seen = client(httpx.Response(429, headers={"Retry-After": "30"}))
    with pytest.raises(VendorRateLimited) as caught:
        await send(http, "GET", "/p", what="x", rate_limit=RateLimit(2, 1.0))
    assert caught.value.retry_after_s == 30.0 and len(seen) == 1  # too long to wait here


async def test_5xx_is_a_server_error_and_other_answers_are_returned() -> None:
    http, _ = client(httpx.Response(503), httpx.Response(400, json={"e": 1}))
    with pytest.raises(VendorServerError, match="HTTP 503"):
        await send(http, "GET", "/p", what="x")
    assert (await send(http, "GET", "/p", what="x")).status_code == 400


async def test_a_lost_place_request_has_an_unknown_outcome_and_others_do_not() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    http = httpx.AsyncClient(base_url="http://v", transport=httpx.MockTransport(timeout))
    with pytest.raises(VendorOutcomeUnknown):
        await send(http, "POST", "/p", what="x", placing=True)
    with pytest.raises(VendorNetworkError) as caught:
        await send(http, "POST", "/p", what="x")
    assert not isinstance(caught.value, VendorOutcomeUnknown)


@pytest.mark.parametrize("body", [b"<html>", b"[]", b'"s"', b"\xff"])
def test_only_a_json_object_is_readable(body: bytes) -> None:
    response = httpx.Response(200, content=body)
    assert json_object(response) is None
    with pytest.raises(VendorServerError, match="x: unreadable answer"):
        read_object(response, "x")
    assert read_object(httpx.Response(200, json={"a": 1}), "x") == {"a": 1}


async def test_an_answer_too_large_is_not_read_whole() -> None:
    """Every vendor API answer CC reads has a cap (MAX_ANSWER_BYTES, decoded): over it the
    answer is dropped after the cap, a vendor fault; for a place request the vendor took
    (2xx), an unknown outcome, since the call may be placed."""
    sent: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(64):  # 64 MiB if read whole
            sent.append(1)
            yield b"x" * (1024 * 1024)

    def handler(request: httpx.Request) -> httpx.Response:
        status = 200 if request.url.path == "/ok" else 500
        return httpx.Response(status, content=endless())

    http = httpx.AsyncClient(base_url="http://v", transport=httpx.MockTransport(handler))
    with pytest.raises(VendorOutcomeUnknown, match="answer over"):
        await send(http, "POST", "/ok", what="x", placing=True)
    assert len(sent) <= 2  # stopped at the cap
    with pytest.raises(VendorServerError, match="answer over") as caught:
        await send(http, "POST", "/ok", what="x")
    assert not isinstance(caught.value, VendorOutcomeUnknown)
    with pytest.raises(VendorServerError, match=r"answer over .* \(HTTP 500\)"):
        await send(http, "POST", "/err", what="x", placing=True)


def streamed(body: bytes, coding: str) -> httpx.Response:
    """An answer as a vendor streams it (not made in memory), in ``coding``."""

    async def chunks() -> AsyncIterator[bytes]:
        for at in range(0, len(body), 4096):
            yield body[at : at + 4096]

    return httpx.Response(200, content=chunks(), headers={"Content-Encoding": coding})


async def test_a_compressed_answer_is_read_decoded_within_the_cap() -> None:
    """CC asks for an uncompressed answer; one compressed all the same is decoded within the
    cap: a small gzip bomb (about 1 KiB that decodes past 1 MiB) stops at the cap."""
    body = json.dumps({"ok": 1, "pad": "y" * 1000}).encode()
    http, seen = client(streamed(gzip.compress(body), "gzip"))
    answer = await send(http, "GET", "/p", what="x")
    assert read_object(answer, "x")["ok"] == 1 and answer.content == body
    assert seen[0].headers["accept-encoding"] == "identity"
    bomb = gzip.compress(b"0" * (MAX_ANSWER_BYTES * 64))
    assert len(bomb) < MAX_ANSWER_BYTES // 10
    http, _ = client(streamed(bomb, "gzip"))
    with pytest.raises(VendorServerError, match="answer over"):
        await send(http, "GET", "/p", what="x")
    http, _ = client(streamed(body, "br"))  # a coding CC cannot decode within the cap
    with pytest.raises(VendorNetworkError):
        await send(http, "GET", "/p", what="x")
