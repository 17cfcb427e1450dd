"""The seams every vendor adapter implements (``Channel``, and exactly one of ``WebhookChannel``
or ``PolledChannel``), and the stores a polled vendor's sessions live in.

Vendor quirks stay in ``channels/<vendor>.py``; everything above this package sees only these
protocols, ``channels.events`` and ``channels.errors``; ``channels/http.py`` holds the HTTP
that turns a vendor's answers into those errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from channels.events import (
    CallEvent,
    InboundAnswer,
    InboundCall,
    PlaceCallRequest,
    PlacedCall,
    SeatContext,
    SeatLogin,
    SeatPoll,
    SeatStatus,
)
from core.types import ChannelMode


@dataclass
class Recording:
    """An open vendor recording: its media type and its bytes, read as they arrive."""

    content_type: str
    chunks: AsyncIterator[bytes]
    length: int | None = None  # the vendor's Content-Length, when it sent one


# A line id that is a phone number: E.164, as ITU-T gives it (a leading +, up to 15 digits).
E164_PATTERN = r"\+[1-9][0-9]{1,14}"


@runtime_checkable
class Channel(Protocol):
    """What every vendor does, however its events reach CC: place and hang up calls, say what
    became of one, serve its recordings, answer a probe. A channel is also exactly one of
    ``WebhookChannel`` (the vendor pushes events) or ``PolledChannel`` (CC asks for them),
    and its ``mode`` says which."""

    name: str
    mode: ChannelMode
    # What the vendor's line ids look like (re.fullmatch): the API refuses any other, so no
    # tenant's id ever reaches a vendor's path or body unchecked.
    line_id_pattern: str

    async def place_call(self, request: PlaceCallRequest) -> PlacedCall: ...

    async def call_result(self, vendor_call_id: str, cc_call_id: str) -> list[CallEvent]:
        """Ask the vendor what became of a call (e9 CallResult, jy call resource; hw: nothing).

        For reconciling a call whose events went missing: the answer is translated into
        unified events (with ``cc_call_id`` set) that CC applies like any other; an empty list
        when the vendor has nothing to say yet. Raises ChannelError when it cannot be asked.
        """
        ...

    async def hangup(self, vendor_call_id: str) -> None: ...

    async def probe(self) -> None:
        """A cheap authenticated request; raises a ChannelError when the vendor is not well."""
        ...

    def open_recording(self, url: str) -> contextlib.AbstractAsyncContextManager[Recording]:
        """Stream the recording at ``url`` (from a hangup/recording_ready event).

        Raises ``RecordingNotReady`` while the vendor answers 404 and ``RecordingUnavailable``
        when the link is expired or forbidden.
        """
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class WebhookChannel(Channel, Protocol):
    """A vendor that pushes its events to ``POST /webhooks/{name}`` (``ChannelMode.WEBHOOK``)."""

    def verify_webhook(self, url: str, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ``InvalidSignature`` unless the request is signed by the vendor."""
        ...

    def parse_webhook(self, body: bytes, content_type: str) -> list[CallEvent]:
        """Raise ``MalformedEvent`` when the body is not the vendor's event format."""
        ...

    def webhook_ack(self) -> dict[str, str]: ...


@runtime_checkable
class InboundChannel(WebhookChannel, Protocol):
    """A webhook vendor that hosts 400 numbers and asks CC, at ``POST
    /webhooks/{name}/inbound`` (signed as its events), where to send a customer's call."""

    def parse_inbound(self, body: bytes, content_type: str) -> InboundCall:
        """Raise ``MalformedEvent`` when the body is not the vendor's inbound request."""
        ...

    def inbound_reply(self, answer: InboundAnswer, inbound_url: str) -> tuple[bytes, str]:
        """CC's answer as the vendor expects it: (body, media type). ``inbound_url`` is CC's
        public inbound URL, for a vendor that comes back there with the keyed digits."""
        ...


class SessionStore(Protocol):
    """A polled vendor's sessions (guids, cookies, which seat placed which call), shared by
    every worker and API process."""

    async def load(self, channel: str, key: str) -> str | None: ...

    async def save(self, channel: str, key: str, value: str) -> None: ...


@runtime_checkable
class SeatLogins(Protocol):
    """How a seat signs in (its password is CC's to keep): for an adapter that must sign a
    seat in again on its own (hw: a callout refused for a stale session)."""

    async def seat_login(self, channel: str, seat: str, phonenum: str) -> SeatLogin: ...


class MemorySessions:
    """A ``SessionStore`` in this process only: for tests and a single-process CC."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], str] = {}

    async def load(self, channel: str, key: str) -> str | None:
        return self._values.get((channel, key))

    async def save(self, channel: str, key: str, value: str) -> None:
        self._values[(channel, key)] = value


@runtime_checkable
class PolledChannel(Channel, Protocol):
    """A vendor that must be asked for events (``ChannelMode.POLL``): per signed-in seat."""

    async def sign_in(self, login: SeatLogin) -> None:
        """Sign the seat in (forcibly when it already is); raises ``SeatRefused``."""
        ...

    async def sign_out(self, seat: str) -> None:
        """Sign the seat out; a seat already signed out is fine."""
        ...

    async def poll_seat(self, login: SeatLogin, context: SeatContext) -> SeatPoll:
        """One long poll; raises ``SeatSignedOut`` when the seat must sign in again."""
        ...

    async def seat_status(self, seat: str) -> SeatStatus: ...
