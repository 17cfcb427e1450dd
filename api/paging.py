"""Opaque cursors for list endpoints: the last row's id, base64-wrapped."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import Query

from api.errors import invalid_field

Limit = Annotated[int, Query(ge=1, le=500)]


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind != "id":
            raise ValueError(kind)
        return int(value)
    except ValueError as exc:
        raise invalid_field("cursor", "not a cursor from this API", "invalid cursor") from exc
