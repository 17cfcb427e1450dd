"""Small helpers the vendor adapters share: webhook addresses, lenient parsing, ids in paths."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from channels.errors import VendorRejected
from channels.events import CallEvent
from core.config import CoreSettings


def status_url(settings: CoreSettings, channel: str) -> str:
    """Where a webhook channel tells its vendor to post events (statusUrl, StatusCallback)."""
    return f"{settings.public_base_url.rstrip('/')}/webhooks/{channel}"


# What the call record's columns hold (longer vendor strings are digested or cut to fit).
CC_ID_MAX, VENDOR_ID_MAX, CH_STATE_MAX, DEDUPE_MAX = 32, 64, 32, 128


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
