"""Opaque cursors for list endpoints, base64-wrapped.

``id:<n>`` pages on the last row's id (lines); ``ck:<created>:<id>`` is the (created, id)
keyset of the call query.
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


def encode_keyset(keyset: Keyset) -> str:
    return base64.urlsafe_b64encode(f"ck:{keyset.created}:{keyset.id}".encode()).decode()


def decode_keyset(cursor: str | None) -> Keyset | None:
    if not cursor:
        return None
    created, _, row_id = _unwrap(cursor, "ck").partition(":")
    try:
        keyset = Keyset(int(created), int(row_id))
    except ValueError as exc:
        raise _bad_cursor() from exc
    if not (0 <= keyset.created < 2**63 and 0 <= keyset.id < 2**63):  # a bigint, or forged
        raise _bad_cursor()
    return keyset
