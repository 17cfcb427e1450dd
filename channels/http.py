"""The vendor HTTP every adapter shares: what an answer (or its absence) means as a typed error.

An adapter builds its request (auth, paths, body) and judges a readable answer by its own
envelope (e9 ``statusCode``, hw ``resultcode``, jy HTTP status); everything in between is
here, so a timeout, a 5xx or a 429 means the same whichever vendor gave it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import zlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from channels.errors import (
    RecordingNotReady,
    RecordingUnavailable,
    VendorNetworkError,
    VendorOutcomeUnknown,
    VendorRateLimited,
    VendorServerError,
)
from channels.protocols import Recording
from core.config import CoreSettings
from core.egress import EgressPolicy, EgressRefused, Target, egress_client, read_capped

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
    5xx → ``VendorServerError``; 429 → ``VendorRateLimited`` (back-pressure) carrying the
    vendor's ``retry_after_s``, after waiting it out first with ``rate_limit``. ``what`` names the
    request in errors (e.g. ``"e9 /Calls/Callback"``).
    """
    attempt = 0
    while True:
        try:
            response = await _answer(http, http.build_request(method, url, **request), what)
        except httpx.RequestError as exc:  # no answer, or none we could decode
            raise transport_error(what, exc, placing) from exc
        except AnswerTooLarge as exc:
            # The vendor answered; a place request it took may have placed the call.
            if placing and exc.status < 400:
                raise VendorOutcomeUnknown(f"{exc}, the call may be placed") from exc
            raise VendorServerError(str(exc)) from exc
        if response.status_code != 429 or rate_limit is None:
            break
        wait = retry_after_s(response)
        if attempt >= rate_limit.retries or wait > rate_limit.max_wait_s:
            raise VendorRateLimited(f"{what}: rate limited", retry_after_s=wait)
        await asyncio.sleep(wait)
        attempt += 1
    if response.status_code == 429:
        raise VendorRateLimited(f"{what}: HTTP 429", retry_after_s=retry_after_s(response))
    if response.status_code >= 500:
        raise VendorServerError(f"{what}: HTTP {response.status_code}")
    return response


# The most of a vendor API answer CC reads, as sent and decoded (recordings are read apart,
# with their own cap): a vendor, or whatever answers on its address, cannot fill a worker's
# memory.
MAX_ANSWER_BYTES = 1024 * 1024
_BODY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class AnswerTooLarge(Exception):
    def __init__(self, what: str, status: int) -> None:
        super().__init__(f"{what}: answer over {MAX_ANSWER_BYTES} B (HTTP {status})")
        self.status = status


async def _answer(http: httpx.AsyncClient, request: httpx.Request, what: str) -> httpx.Response:
    """The vendor's answer as an answer in memory, at most ``MAX_ANSWER_BYTES`` as sent and
    decoded. CC asks for it uncompressed; one compressed all the same (gzip, deflate) is
    decoded here within the cap (a small bomb cannot grow past it); any other coding is a
    vendor fault."""
    request.headers["accept-encoding"] = "identity"
    response = await http.send(request, stream=True)
    # An answer made in memory (a test's transport) was decoded as it was made.
    coding = (
        "identity"
        if response.is_stream_consumed
        else response.headers.get("content-encoding", "identity")
    )
    try:
        body, whole = await read_capped(response, MAX_ANSWER_BYTES)
    finally:
        await response.aclose()
    if not whole:
        raise AnswerTooLarge(what, response.status_code)
    content = _decoded(body, coding.strip().lower(), what, response.status_code)
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _BODY_HEADERS]
    return httpx.Response(response.status_code, headers=headers, content=content, request=request)


def _decoded(body: bytes, coding: str, what: str, status: int) -> bytes:
    if coding in ("identity", ""):
        return body
    if coding not in ("gzip", "x-gzip", "deflate"):
        raise httpx.DecodingError(f"{what}: answer in an unasked coding {coding!r}")
    decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib, by its header
    try:
        content = decoder.decompress(body, MAX_ANSWER_BYTES + 1)
    except zlib.error as exc:
        raise httpx.DecodingError(f"{what}: answer not {coding}") from exc
    if len(content) > MAX_ANSWER_BYTES:
        raise AnswerTooLarge(what, status)
    return content


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


@dataclass(frozen=True)
class RecordingSource:
    """Where a channel may fetch the recordings its vendor reports, and how: only from the
    origins (scheme, host, port) its own settings name, through the egress policy
    (``core/egress.py``), within one deadline for the whole download and at most
    ``max_bytes``. A vendor's event names the URL, so it may name anything."""

    vendor: str
    origins: frozenset[Target]
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    max_bytes: int = 200 * 1024 * 1024
    deadline_s: float = 240.0

    @classmethod
    def of(
        cls, settings: CoreSettings, vendor: str, base_url: str, origins: Iterable[str] = ()
    ) -> RecordingSource:
        """The vendor's base URL and its recording origins from the settings."""
        return cls(
            vendor,
            frozenset(Target.of(url) for url in (base_url, *origins)),
            EgressPolicy.from_settings(settings),
            settings.recording_max_bytes,
            settings.recording_download_s,
        )

    @classmethod
    def strict(cls, vendor: str, base_url: str) -> RecordingSource:
        """Only from the vendor's base URL, no address the egress policy refuses, default caps."""
        return cls(vendor, frozenset({Target.of(base_url)}))

    def check(self, url: str) -> None:
        """``RecordingUnavailable`` unless ``url`` is on an origin the settings name."""
        try:
            target = Target.of(url)
        except EgressRefused as exc:
            raise RecordingUnavailable(f"{self.vendor} recording: {exc}") from exc
        if target not in self.origins:
            raise RecordingUnavailable(
                f"{self.vendor} recording: {target.host} is not a recording host of the channel"
            )


@contextlib.asynccontextmanager
async def stream_recording(
    source: RecordingSource,
    url: str,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> AsyncIterator[Recording]:
    """GET ``url`` as a stream, as ``source`` allows, and map the answer to the typed
    recording errors.

    Shared by the adapters; what differs per vendor (auth) is passed in. Redirects are never
    followed: a vendor that redirects does so on purpose and its adapter decides what to send
    to the new address. The answer's media type is the vendor's own (none if it sent none).
    """
    vendor = source.vendor
    source.check(url)
    client = egress_client(source.egress, require_https=False, timeout_s=source.deadline_s)
    try:
        async with (
            recording_deadline(source),
            client as http,
            http.stream("GET", url, headers=headers, auth=auth) as response,
        ):
            raise_for_recording(response, vendor)
            yield capped_recording(response, source)
    except EgressRefused as exc:
        raise RecordingUnavailable(f"{vendor} recording: {exc}") from exc


@contextlib.asynccontextmanager
async def recording_deadline(source: RecordingSource) -> AsyncIterator[None]:
    """The whole download within ``source.deadline_s``; running out of it, or the
    connection failing, is a ``VendorNetworkError`` (tried again later)."""
    try:
        async with asyncio.timeout(source.deadline_s):
            yield
    except TimeoutError as exc:
        late = f"{source.vendor} recording: not read within {source.deadline_s:g} s"
        raise VendorNetworkError(late) from exc
    except httpx.TransportError as exc:
        raise VendorNetworkError(f"{source.vendor} recording: {exc.__class__.__name__}") from exc


def capped_recording(response: httpx.Response, source: RecordingSource) -> Recording:
    """The answer as a recording read at most ``source.max_bytes`` (refused at once when it
    announces more), as sent (an encoded answer is refused)."""
    vendor, max_bytes = source.vendor, source.max_bytes
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):  # asked for identity: not audio as stored
        raise RecordingUnavailable(f"{vendor} recording: content-encoding {encoding:.20}")
    length = response.headers.get("content-length", "")
    announced = int(length) if length.isdigit() else None
    if announced is not None and announced > max_bytes:
        raise RecordingUnavailable(f"{vendor} recording: answer too large ({announced} B)")
    return Recording(
        content_type=response.headers.get("content-type", ""),
        chunks=_capped(_raw(response), max_bytes, vendor),
        length=announced,
    )


async def _raw(response: httpx.Response) -> AsyncIterator[bytes]:
    """The answer's bytes as sent; an answer already read (made in memory) from memory."""
    if response.is_stream_consumed:
        yield response.content
        return
    async for chunk in response.aiter_raw():
        yield chunk


async def _capped(
    chunks: AsyncIterator[bytes], max_bytes: int, vendor: str
) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise RecordingUnavailable(f"{vendor} recording: answer too large (over {max_bytes} B)")
        yield chunk


def raise_for_recording(response: httpx.Response, vendor: str) -> None:
    """404 is "not yet" (retry); 5xx/429 a vendor fault (retry); other 4xx is final."""
    status = response.status_code
    if status == 404:
        raise RecordingNotReady(f"{vendor} recording: not ready (HTTP 404)")
    if status == 429 or status >= 500:
        raise VendorServerError(f"{vendor} recording: HTTP {status}")
    if status >= 300:
        raise RecordingUnavailable(f"{vendor} recording: HTTP {status}")
