"""API models: what apps send (``CallCreate``) and the pages, events and exports they see.

The call view itself (``CallPublic``) is ``store.views``'s, shared with the notifications.
A view is built for a scope: a ``masked`` key gets the customer's number masked wherever it
shows, including inside raw vendor event bodies.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator

from pydantic import BaseModel, ConfigDict, Field

from callflow.policy import CallingWindow, RetryPolicy
from core.phones import mask_in_text
from core.types import DisplayPolicy
from store.models import CallRecordRow, VendorEvent
from store.views import CallPublic


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
    not_before: int | None = Field(
        default=None,
        ge=0,
        description="epoch ms: place the call then, not now (a scheduled callback, at most "
        "30 days ahead); until then the call is `scheduled`, holds no line, and "
        "`POST /v1/calls/{id}/hangup` cancels it. A time already past places it now",
    )
    retry: RetryPolicy | None = Field(
        default=None,
        description="try again when a try ends with one of `on`'s close types (e.g. 2 no "
        "answer, 4 busy), `interval_s` after it, up to `max_attempts` tries in all; each try "
        "is its own call, linked by `parent` and `try`. Default: the tenant's settings",
    )
    window: CallingWindow | None = Field(
        default=None,
        description="calling hours: tries happen only on `days` (ISO weekdays) between "
        "`from` and `to` local time in `tz` (IANA); a try due outside waits for the next "
        "opening. Default: the tenant's settings",
    )


def public_columns(view: type[BaseModel]) -> tuple[str, ...]:
    """A view's columns as apps see them (public names), in order."""
    fields = view.model_fields.items()
    return tuple(info.serialization_alias or name for name, info in fields if not info.exclude)


class CallPage(BaseModel):
    items: list[CallPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last")


class EventPage(BaseModel):
    items: list[EventPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last")


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

    @classmethod
    def from_row(cls, row: VendorEvent, customer: str, masked: bool = False) -> EventPublic:
        """``customer``: the call's customer number (``customer_number``), masked in the raw
        body for a masked key, in every spelling the vendor may use."""
        event = cls.model_validate(row.model_dump())
        if masked:
            event.body = mask_in_text(event.body, customer)
        return event


# Apps read the CSV by position, so the columns it has always had keep their places:
# RECORD.md's in its order (``id`` being CC's call id, as in the view), then user and display.
# Every other column of the view follows, in the view's order, but for these: the attempts
# (a list) and CC's own settings and notes for the call.
_CSV_PLACES = (
    "id",
    "tenant",
    "main_num",
    "ext_num",
    "agent",
    "call_id",
    "caller",
    "called",
    "biz_data",
    "channel",
    "ch_state",
    "state",
    "a_call_time",
    "b_call_time",
    "a_offhook_time",
    "b_offhook_time",
    "conn_time",
    "close_time",
    "duration",
    "ch_audio_url",
    "audio_url",
    "ivr_url",
    "ivr_text",
    "close_type",
    "updated",
    "created",
    "user",
    "display",
)
_NOT_IN_CSV = frozenset({"attempts", "max_duration", "record", "recording_error"})
EXPORT_COLUMNS = _CSV_PLACES + tuple(
    name
    for name in public_columns(CallPublic)
    if name not in _CSV_PLACES and name not in _NOT_IN_CSV
)


def export_csv(rows: Iterable[CallRecordRow], masked: bool, chunk_rows: int = 200) -> Iterator[str]:
    """The header, then the rows as CSV text, ``chunk_rows`` rows per chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    pending = 0
    for row in rows:
        view = CallPublic.from_row(row, masked).model_dump(by_alias=True)
        writer.writerow([csv_cell(view[name]) for name in EXPORT_COLUMNS])
        pending += 1
        if pending >= chunk_rows:
            yield _drain(buffer)
            pending = 0
    yield _drain(buffer)


# A spreadsheet takes a cell starting with one of these for a formula (OWASP, CSV Injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A phone number, E.164 or masked (``+86139****0055``): a leading ``+`` and digits (and the
# mask's ``*``) cannot call a function, reference a cell or run a DDE command, so it is kept
# as is. A ``'`` there would corrupt the one column apps most often read back.
_PHONE_LIKE = re.compile(r"\+[0-9][0-9*]{0,19}")


def csv_cell(value: object) -> object:
    """A value as a CSV cell: None is empty; text a spreadsheet would run as a formula gets a
    leading ``'`` (OWASP's advice), so it shows as the text it is."""
    if value is None:
        return ""
    formula = isinstance(value, str) and value.startswith(_FORMULA_START)
    if formula and not _PHONE_LIKE.fullmatch(str(value)):
        return f"'{value}"
    return value


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
