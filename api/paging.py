"""Opaque cursors for list endpoints, base64-wrapped.

``id:<n>`` pages on the last row's id (lines); ``ck:<created>:<id>`` is the (created, id)
keyset of the call query; ``ev:<event time>:<id>`` that of a call's events.

A cursor comes back from the client, so it is parsed strictly: base64 (padding optional),
the expected kind, decimal digits only, each value a non-negative bigint. Anything else is a
422 ``validation_error`` on ``cursor``, never a database error.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated

from fastapi import Query

from api.errors import Problem, invalid_field
from store.call_query import Keyset

Limit = Annotated[int, Query(ge=1, le=500)]
# Ours are under 60 characters; the cap keeps a forged one from costing anything to parse.
Cursor = Annotated[
    str | None, Query(max_length=128, description="`next_cursor` of the previous page")
]

_BIGINT = 2**63  # every value is a bigint column: an id, epoch ms
_VALUE = r"(0|[1-9][0-9]{0,18})"  # at most 19 digits, no sign, no leading zeros
_SHAPES = {kind: re.compile(rf"{kind}:{_VALUE}(?::{_VALUE})?") for kind in ("id", "ck", "ev")}


def _bad_cursor() -> Problem:
    return invalid_field("cursor", "not a cursor from this API", "invalid cursor")


def _values(cursor: str, kind: str, count: int) -> tuple[int, ...]:
    """The ``count`` integers of a ``kind`` cursor, or a 422."""
    try:
        raw = cursor.encode("ascii")
        raw += b"=" * (-len(raw) % 4)
        text = base64.b64decode(raw, altchars=b"-_", validate=True).decode("ascii")
    except (UnicodeError, binascii.Error) as exc:
        raise _bad_cursor() from exc
    match = _SHAPES[kind].fullmatch(text)
    if match is None:
        raise _bad_cursor()
    found = tuple(int(group) for group in match.groups() if group is not None)
    if len(found) != count or not all(value < _BIGINT for value in found):
        raise _bad_cursor()
    return found


def _encode(kind: str, *values: int) -> str:
    return base64.urlsafe_b64encode(":".join([kind, *map(str, values)]).encode()).decode()


def encode_cursor(last_id: int) -> str:
    return _encode("id", last_id)


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    (last_id,) = _values(cursor, "id", 1)
    return last_id


def encode_keyset(keyset: Keyset) -> str:
    return _encode("ck", keyset.created, keyset.id)


def decode_keyset(cursor: str | None) -> Keyset | None:
    if not cursor:
        return None
    created, row_id = _values(cursor, "ck", 2)
    return Keyset(created, row_id)


def encode_event_cursor(event_time: int, event_id: int) -> str:
    """``ev:<event time>:<id>``: where a page of a call's events ended (oldest first)."""
    return _encode("ev", event_time, event_id)


def decode_event_cursor(cursor: str | None) -> tuple[int, int] | None:
    if not cursor:
        return None
    event_time, event_id = _values(cursor, "ev", 2)
    return event_time, event_id
