"""The seams every vendor adapter implements, and the unified event it produces.

Vendor quirks stay in ``channels/<vendor>.py``; everything above this module sees only the
``Channel`` protocols, ``CallEvent``, ``PlaceCallRequest`` and the typed errors below. The
HTTP that turns a vendor's answer into those errors is shared in ``channels/http.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from pydantic import BaseModel

from core.config import CoreSettings
from core.types import ChannelMode, CloseType, EventKind, InboundAction


class CallEvent(BaseModel):
    """One vendor event, translated to CC's vocabulary."""

    cc_call_id: str | None  # from userData; None when the vendor lost it
    vendor_call_id: str | None = None
    kind: EventKind
    at: int  # epoch ms, UTC
    ch_state: str | None = None  # the vendor's own state string, untranslated
    close_type: CloseType | None = None  # only on hangup
    recording_url: str | None = None
    dedupe_key: str
    inbox_id: int | None = None  # set once the raw event is stored in the inbox
    channel: str | None = None  # which vendor sent it (set by intake)
    # Talk seconds the vendor reported with its hang-up (e9 ``duration``, jy ``CallDuration``):
    # gives conn_time when the bridge event itself was lost.
    duration_s: int | None = None


class InboundCall(BaseModel):
    """A customer calling a tenant's 400 number: the vendor asks CC where to send the call."""

    vendor_call_id: str
    caller: str  # the customer, as the vendor gave it (not yet E.164)
    main_num: str  # the 400 number dialled, as the vendor gave it
    ext_num: str | None = None  # the digits keyed; None until the customer keyed some
    at: int  # epoch ms, UTC
    dedupe_key: str


class InboundAnswer(BaseModel):
    """CC's answer to an ``InboundCall``, in CC's words; each adapter renders it in its
    vendor's (e9: a JSON action, jy: TwiML)."""

    action: InboundAction
    cc_call_id: str | None = None  # dial: the record the call's events belong to
    to: str | None = None  # dial: the agent's phone (E.164)
    display: str | None = None  # dial: what the agent is shown, main_num (E.164)
    record: bool = True
    prompt: str | None = None  # ivr: asks for the extension; reject: says why
    collect: int = 0  # ivr: how many digits to collect


class PlaceCallRequest(BaseModel):
    cc_call_id: str
    caller: str  # leg A, E.164
    called: str  # leg B, E.164
    display_to_a: str  # always the line's number: A never sees the customer
    display_to_b: str  # the agent's own number or the line's number
    agent: str  # the line id (e9: a phone number, hw: a seat id)
    max_duration_s: int
    record: bool = True
    ivr_text: str | None = None
    ivr_url: str | None = None

    def prompt(self, url_field: str, text_field: str) -> dict[str, str]:
        """The IVR prompt under the vendor's own field names: a recording's URL wins over a
        text to speak; nothing when there is neither."""
        if self.ivr_url:
            return {url_field: self.ivr_url}
        if self.ivr_text:
            return {text_field: self.ivr_text}
        return {}


class PlacedCall(BaseModel):
    vendor_call_id: str


class PollBatch(BaseModel):
    """What one poll of a per-call polled vendor returned (the old hw protocol's shape; no
    channel produces it now, ``PolledChannel`` polls per seat: ``SeatPoll``)."""

    events: list[CallEvent]
    cursor: str | None  # pass back as ``since`` next time
    more: bool = False  # the vendor has more right now: poll again at once
    final: bool = False  # the vendor's last word on the call (e.g. its CDR) is in
    raw: bytes = b""  # the vendor's answer, kept in the inbox as it came


class ChannelError(Exception):
    """Base of every vendor error an adapter raises."""

    retryable: bool = False


class VendorRejected(ChannelError):
    """The vendor understood the request and refused it (bad number, auth, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class VendorServerError(ChannelError):
    """The vendor answered 5xx or an unreadable body: close_type 6 if it persists."""

    retryable = True

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s  # the vendor said when to come back (429)


class PollInFlight(VendorServerError):
    """The vendor refused a poll because another poll of the seat is in flight (hw 000-007):
    CC's own doing (a poller that outlived its turn), not the vendor failing, so it never
    counts against the channel's health."""


class VendorNetworkError(ChannelError):
    """No answer: connection refused, reset or timed out: close_type 7 if it persists."""

    retryable = True


class VendorOutcomeUnknown(VendorNetworkError):
    """A place request was sent but no answer came (timed out or cut after sending): the vendor
    may have placed the call. It is never placed again elsewhere (VENDORS.md)."""

    retryable = False


class SeatSignedOut(ChannelError):
    """The seat's session is gone (hw ``100-006``, ``105-005/006/007`` after a gateway
    failover): the seat must sign in again; a call it had goes on at the vendor."""

    retryable = True  # once the seat is signed in again


class SeatRefused(VendorRejected):
    """The seat itself cannot be used, for what only its tenant can mend: a wrong or expired
    password, a locked account, no rights (hw ``100-004``, ...), taken elsewhere. Its line
    goes out of service; it is no failure of the vendor's and never counts against the
    channel's health."""


class SeatTaken(SeatRefused):
    """The seat is signed in elsewhere (hw ``100-015``): only that line is out of service."""


class InvalidSignature(ChannelError):
    """A webhook whose signature does not verify: answered 401, never applied."""


class MalformedEvent(ChannelError):
    """A webhook body the adapter cannot read: answered 400."""


class RecordingNotReady(ChannelError):
    """The vendor has no file yet (404): vendors publish recordings late, so ask again later."""

    retryable = True


class RecordingUnavailable(ChannelError):
    """The link is expired, forbidden or gone: asking again will not help."""


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


class SeatStatus(StrEnum):
    IDLE = "idle"  # signed in, no call
    BUSY = "busy"  # signed in, in a call (its phone or the other party ringing)
    OFFHOOK = "offhook"  # signed in, in a call, its phone off-hook (the agent answered)
    SIGNED_OUT = "signed_out"


class SeatLogin(BaseModel):
    """How a seat signs in; ``password`` "" means the channel's default seat password."""

    seat: str
    password: str
    phonenum: str  # the agent's phone the seat rings (leg A), E.164; sent as national digits


class SeatContext(BaseModel):
    """The parser's memory of the seat's current call, carried from poll to poll (and across
    worker restarts): vendor events name their call only once B is dialled, and a failure's
    leg and cause come from earlier events."""

    vendor_call_id: str | None = None
    offhook: bool = False  # the seat's phone (leg A) answered
    detect: int | None = None  # the failure cause announced (hw OUTBOUND_DETECT_EVENT)
    # The last event's number: strictly increasing, from the receipt clock (epoch ms), so
    # that it stays unique across contexts and restarts; a repeated event keeps it.
    seq: int = 0
    bridged: bool = False  # both legs talked: the seat's phone hanging up ends the call
    # The call's moments seen so far (the seat's phone alerting; B alerting): a later moment
    # proves an earlier one the gateway never showed (lost with a session), see hw_events.
    a_dialled: bool = False
    b_dialled: bool = False
    last: str | None = None  # digest of the last event, to know a repeat of it
    # An inbound call rang the seat: the customer is leg A (already on the line), the seat's
    # phone is leg B, so its alerting, off-hook and failure are B's.
    inbound: bool = False


class SeatRing(BaseModel):
    """A call the vendor's own routing offered one of CC's seats (hw ``AgentEvent_Ringing`` or
    ``AgentEvent_Auto_Answer``): an inbound call unless CC placed it."""

    vendor_call_id: str
    caller: str  # the customer, as the vendor gave it (national digits, not yet E.164)
    called: str  # the number the customer dialled (the 400 main number), as the vendor gave it
    at: int  # epoch ms, UTC


class SeatPoll(BaseModel):
    """One long poll of a seat: its events (``cc_call_id`` None: the poller fills it from the
    seat's lease), the parser's context for the next poll, the vendor's answer as it came,
    and the inbound calls the vendor rang the seat with (for CC to record)."""

    events: list[CallEvent]
    context: SeatContext
    raw: bytes = b""
    rings: list[SeatRing] = []


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


def status_url(settings: CoreSettings, channel: str) -> str:
    """Where a webhook channel tells its vendor to post events (statusUrl, StatusCallback)."""
    return f"{settings.public_base_url.rstrip('/')}/webhooks/{channel}"


# What the call record's columns hold (longer vendor strings are digested or cut to fit).
CC_ID_MAX, VENDOR_ID_MAX, CH_STATE_MAX, DEDUPE_MAX = 32, 64, 32, 128


# -- shared by the adapters: fitting vendor strings ---------------------------------------------


def int_or_none(value: object) -> int | None:
    """A vendor's number field as an int (a string of digits too); None when it is none."""
    if isinstance(value, bool):
        return None
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError, OverflowError):
        return None


def fit(value: str, limit: int) -> str:
    """``value`` if it fits a column of ``limit`` chars, else a digest of it, so that distinct
    long values stay distinct (a cut would merge them)."""
    if len(value) <= limit and encodable(value):
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return ("sha256:" + digest)[:limit]


def vendor_event(
    *, vendor_call_id: str, ch_state: str, dedupe_key: str, **fields: Any
) -> CallEvent:
    """A ``CallEvent`` with the vendor's strings (call id, state, dedupe key) fitted to their
    columns; ``fields`` are the rest of the event."""
    return CallEvent(
        vendor_call_id=fit(vendor_call_id, VENDOR_ID_MAX),
        ch_state=ch_state[:CH_STATE_MAX],
        dedupe_key=fit(dedupe_key, DEDUPE_MAX),
        **fields,
    )


def cc_call_id_of(value: object) -> str | None:
    """CC's id from userData: CC's ids are short ASCII; anything else is not ours."""
    if isinstance(value, str) and 0 < len(value) <= CC_ID_MAX and value.isascii():
        return value if value.isprintable() else None
    return None


def path_segment(value: str) -> str:
    """An id (a seat, a call) as exactly one segment of a vendor URL's path: every character
    but the unreserved ones percent-encoded, ``/`` too, so that ``a/../10001`` goes out as
    ``a%2F..%2F10001`` and no client or server resolves it into another resource's path.
    ``""``, ``.`` and ``..`` are refused: as a segment they name the path itself or its parent,
    however encoded (a server may decode ``%2E``, RFC 3986 6.2.2.2)."""
    try:
        if value not in ("", ".", ".."):
            return quote(value, safe="")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape
        pass
    raise VendorRejected("invalid-id", "not an id a URL path can carry")


def encodable(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape
        return False
    return True
