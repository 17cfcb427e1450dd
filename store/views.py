"""The call view: a record as apps see it (``GET /v1/calls/{id}``, and the ``call`` of every
notification), built from its row for a scope. A ``masked`` view shows the customer's number
masked: leg B (``called``) of a callback, leg A (``caller``) of an inbound call.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, field_validator
from sqlmodel.main import SQLModelConfig

from callflow.record import CallRecordBase
from core.phones import mask, mask_in_text
from core.types import CallState, CloseType, Direction, DisplayPolicy
from store.models import CallRecordRow, CallRowBase


def customer_field(direction: str | None) -> str:
    """The record column holding the customer's number: ``caller`` for an inbound call (the
    customer dialled a 400 number), ``called`` for a callback."""
    return "caller" if direction == Direction.IN.value else "called"


def customer_number(record: CallRecordBase) -> str:
    """The customer's number on this record, whichever leg the customer is."""
    number: str = getattr(record, customer_field(record.direction))
    return number


# close_type's meanings (RECORD.md), as the API's schema describes them.
CLOSE_WORDS = {
    CloseType.NORMAL: "normal hang-up",
    CloseType.A_UNREACHABLE: "leg A unreachable (no answer, power off, invalid)",
    CloseType.B_UNREACHABLE: "leg B unreachable",
    CloseType.A_BUSY: "leg A busy",
    CloseType.B_BUSY: "leg B busy",
    CloseType.MAX_DURATION: "maximum call duration reached",
    CloseType.CHANNEL_SERVER_ERROR: "channel server error",
    CloseType.CHANNEL_NETWORK_ERROR: "channel network error",
    CloseType.OTHER: "other error",
}


class AttemptPublic(BaseModel):
    channel: str
    agent: str
    at: int
    outcome: str  # placed, placed_unconfirmed, failed, rejected, unknown, expired
    tries: int = 1  # place requests sent to this channel
    vendor_call_id: str | None = None
    error: str | None = None


class CallPublic(CallRowBase):
    """The call view: the record's columns (RECORD.md; ``id`` is CC's call id, ``close_type``
    a number), how the app asked for the call (``record`` its recording flag) and each vendor
    tried. Built from the row as it is, for a scope (``from_row``)."""

    # Every field is in every answer, so the published schema says each one is required.
    model_config = SQLModelConfig(json_schema_serialization_defaults_required=True)

    cc_call_id: str = Field(serialization_alias="id", description="CC's call id")
    state: str = Field(
        default=CallState.INIT.value,
        description="`scheduled` (waits to be placed, holding no line: `not_before`, or no line "
        "free yet, see `wait_reason`), `init` (leg A being dialled), `conn` (both legs "
        "bridged), `close` (ended; final)",
        json_schema_extra={"enum": list(CallState)},
    )
    close_type: int | None = Field(  # type: ignore[assignment]  # stored as the code's text
        default=None,
        description="why the call ended (null until it has): "
        + "; ".join(f"{int(c)} {CLOSE_WORDS[c]}" for c in CloseType),
        json_schema_extra={"enum": [int(c) for c in CloseType] + [None]},
    )
    direction: str = Field(
        default=Direction.OUT.value,
        description="`out`: a callback CC placed (`called` is the customer); `in`: a customer "
        "who called a 400 number (`caller` is the customer)",
        json_schema_extra={"enum": list(Direction)},
    )
    display: str = Field(
        description="what leg B is shown: `passthrough` (the agent's own number) or "
        "`platform` (the line's number); leg A always sees the line's number",
        json_schema_extra={"enum": list(DisplayPolicy)},
    )
    record_audio: bool = Field(default=True, serialization_alias="record")
    conn_time_implied: bool = Field(default=False, exclude=True)  # CC's bookkeeping
    attempts: list[AttemptPublic] = []

    @field_validator("attempts", mode="before")
    @classmethod
    def _from_json(cls, value: object) -> object:
        """The row keeps the attempts as JSON text."""
        return json.loads(value or "[]") if isinstance(value, str) else value

    @classmethod
    def from_row(cls, row: CallRecordRow, masked: bool = False) -> CallPublic:
        view = cls.model_validate(row)
        if not masked:
            return view
        customer = customer_number(row)
        attempts = [
            a.model_copy(update={"error": mask_in_text(a.error, customer)}) if a.error else a
            for a in view.attempts
        ]
        masked_number = {customer_field(row.direction): mask(customer)}
        return view.model_copy(update={**masked_number, "attempts": attempts})


def call_view_json(row: CallRecordRow, masked: bool) -> dict[str, Any]:
    """The call view as JSON, as ``GET /v1/calls/{id}`` answers it (a notification's ``call``)."""
    return CallPublic.from_row(row, masked).model_dump(mode="json", by_alias=True)
