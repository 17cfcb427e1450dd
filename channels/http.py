"""The vendor HTTP every adapter shares: what an answer (or its absence) means as a typed error.

An adapter builds its request (auth, paths, body) and judges a readable answer by its own
envelope (e9 ``statusCode``, hw ``resultcode``, jy HTTP status); everything in between is
here, so a timeout, a 5xx or a 429 means the same whichever vendor gave it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from channels.base import (
    Recording,
    RecordingNotReady,
    RecordingUnavailable,
    VendorNetworkError,
    VendorOutcomeUnknown,
    VendorServerError,
)

# Transport errors raised before the request reached the vendor: nothing can have been placed.
# Any other (read/write timeout, reset, cut answer) leaves a place request's outcome unknown.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@dataclass(frozen=True)
class RateLimit:
    """A vendor whose 429 says when to come back (``Retry-After``) and is worth waiting out:
    at most ``retries`` waits, none longer than ``max_wait_s``. Without one, a 429 is a
    vendor fault like a 5xx."""

    retries: int
    max_wait_s: float


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    placing: bool = False,
    rate_limit: RateLimit | None = None,
    **request: Any,
) -> httpx.Response:
    """Send one vendor request and return its answer, unless there is none worth reading.

    No answer → ``transport_error`` (for a place request sent and lost, an unknown outcome);
    5xx or 429 → ``VendorServerError``; with ``rate_limit``, a 429 is first waited out, then
    a ``VendorServerError`` carrying the vendor's ``retry_after_s``. ``what`` names the
    request in errors (e.g. ``"e9 /Calls/Callback"``).
    """
    attempt = 0
    while True:
        try:
            response = await http.request(method, url, **request)
        except httpx.RequestError as exc:  # no answer, or none we could decode
            raise transport_error(what, exc, placing) from exc
        if response.status_code != 429 or rate_limit is None:
            break
        wait = retry_after_s(response)
        if attempt >= rate_limit.retries or wait > rate_limit.max_wait_s:
            raise VendorServerError(f"{what}: rate limited", retry_after_s=wait)
        await asyncio.sleep(wait)
        attempt += 1
    if response.status_code == 429 or response.status_code >= 500:
        raise VendorServerError(f"{what}: HTTP {response.status_code}")
    return response


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The answer's JSON object, or None when the body is not one."""
    try:
        answer = json.loads(response.content)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def read_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The answer's JSON object; any other body is a vendor fault."""
    answer = json_object(response)
    if answer is None:
        raise VendorServerError(f"{what}: unreadable answer")
    return answer


def retry_after_s(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def transport_error(what: str, exc: httpx.RequestError, placing: bool) -> VendorNetworkError:
    """No answer from the vendor. For a place request sent and then lost (timed out, reset,
    cut) the vendor may have placed the call: ``VendorOutcomeUnknown``, never retried."""
    name = exc.__class__.__name__
    if placing and not isinstance(exc, NOT_SENT):
        return VendorOutcomeUnknown(f"{what}: {name} after sending, the call may be placed")
    return VendorNetworkError(f"{what}: {name}")


@contextlib.asynccontextmanager
async def stream_recording(
    http: httpx.AsyncClient,
    url: str,
    vendor: str,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> AsyncIterator[Recording]:
    """GET ``url`` as a stream and map the answer to the typed recording errors.

    Shared by the adapters; what differs per vendor (auth, redirects) is passed in or done
    by the adapter before calling this. Redirects are never followed here: a vendor that
    redirects does so on purpose and its adapter decides what to send to the new address.
    """
    try:
        async with http.stream(
            "GET", url, headers=headers, auth=auth, follow_redirects=False
        ) as response:
            raise_for_recording(response, vendor)
            length = response.headers.get("content-length", "")
            yield Recording(
                content_type=response.headers.get("content-type", "audio/wav"),
                chunks=response.aiter_bytes(),
                length=int(length) if length.isdigit() else None,
            )
    except httpx.TransportError as exc:
        raise VendorNetworkError(f"{vendor} recording: {exc.__class__.__name__}") from exc


def raise_for_recording(response: httpx.Response, vendor: str) -> None:
    """404 is "not yet" (retry); 5xx/429 a vendor fault (retry); other 4xx is final."""
    status = response.status_code
    if status == 404:
        raise RecordingNotReady(f"{vendor} recording: not ready (HTTP 404)")
    if status == 429 or status >= 500:
        raise VendorServerError(f"{vendor} recording: HTTP {status}")
    if status >= 300:
        raise RecordingUnavailable(f"{vendor} recording: HTTP {status}")
