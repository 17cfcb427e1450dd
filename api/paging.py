"""Opaque cursors for list endpoints, base64-wrapped.

``id:<n>`` pages on the last row's id (lines); ``ck:<created>:<id>`` is the (created, id)
keyset of the call query; ``ev:<event time>:<id>`` that of a call's events.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import Query

from api.errors import Problem, invalid_field
from store.calls import Keyset

Limit = Annotated[int, Query(ge=1, le=500)]


def _bad_cursor() -> Problem:
    return invalid_field("cursor", "not a cursor from this API", "invalid cursor")


def _unwrap(cursor: str, kind: str) -> str:
    try:
        found, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise _bad_cursor() from exc
    if found != kind:
        raise _bad_cursor()
    return value


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(_unwrap(cursor, "id"))
    except ValueError as exc:
        raise _bad_cursor() from exc


def _encode_pair(kind: str, first: int, second: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{first}:{second}".encode()).decode()


def _decode_pair(cursor: str, kind: str) -> tuple[int, int]:
    first, _, second = _unwrap(cursor, kind).partition(":")
    try:
        pair = int(first), int(second)
    except ValueError as exc:
        raise _bad_cursor() from exc
    if not all(0 <= value < 2**63 for value in pair):  # a bigint, or forged
        raise _bad_cursor()
    return pair


def encode_keyset(keyset: Keyset) -> str:
    return _encode_pair("ck", keyset.created, keyset.id)


def decode_keyset(cursor: str | None) -> Keyset | None:
    return Keyset(*_decode_pair(cursor, "ck")) if cursor else None


def encode_event_cursor(event_time: int, event_id: int) -> str:
    """``ev:<event time>:<id>``: where a page of a call's events ended (oldest first)."""
    return _encode_pair("ev", event_time, event_id)


def decode_event_cursor(cursor: str | None) -> tuple[int, int] | None:
    return _decode_pair(cursor, "ev") if cursor else None
