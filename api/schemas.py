"""API models: what apps send (``CallCreate``) and what they see (``CallPublic``)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.types import DisplayPolicy
from store.models import CallRecordRow


class CallCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    caller: str = Field(min_length=3, max_length=32, description="leg A: the agent's phone")
    called: str = Field(min_length=3, max_length=32, description="leg B: the customer's phone")
    user: str | None = Field(default=None, max_length=64)
    channel: str | None = Field(default=None, max_length=8)
    # A bound user's call may go elsewhere when the bound channel is out of routing.
    fallback: bool = False
    display: DisplayPolicy | None = None
    biz_data: str | None = Field(default=None, max_length=16 * 1024)
    max_duration: int | None = Field(default=None, ge=1, le=14400)
    record: bool = True
    ivr_text: str | None = Field(default=None, max_length=1024)
    ivr_url: str | None = Field(default=None, max_length=512)
    main_num: str | None = Field(default=None, max_length=16)
    ext_num: str | None = Field(default=None, max_length=8)


class AttemptPublic(BaseModel):
    channel: str
    agent: str
    at: int
    outcome: str
    vendor_call_id: str | None = None
    error: str | None = None


class CallPublic(BaseModel):
    id: str
    tenant: str
    user: str | None
    main_num: str | None
    ext_num: str | None
    agent: str
    call_id: str | None
    caller: str
    called: str
    biz_data: str | None
    channel: str
    ch_state: str | None
    state: str
    a_call_time: int | None
    b_call_time: int | None
    a_offhook_time: int | None
    b_offhook_time: int | None
    conn_time: int | None
    close_time: int | None
    duration: int
    ch_audio_url: str | None
    audio_url: str | None
    ivr_url: str | None
    ivr_text: str | None
    close_type: int | None
    display: str
    max_duration: int
    record: bool
    attempts: list[AttemptPublic]
    updated: int
    created: int

    @classmethod
    def from_row(cls, row: CallRecordRow) -> CallPublic:
        data: dict[str, Any] = row.model_dump()
        data["id"] = row.cc_call_id
        data["record"] = row.record_audio
        data["close_type"] = None if row.close_type is None else int(row.close_type)
        data["attempts"] = json.loads(row.attempts or "[]")
        return cls.model_validate(data)


class EventPublic(BaseModel):
    id: int
    channel: str
    kind: str
    event_time: int
    received: int
    applied: bool
    note: str | None
    content_type: str
    body: str
