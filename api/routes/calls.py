"""/v1/calls: place a callback, query and export calls, read one live, hang it up, list its
vendor events. Every answer is scoped to the key's tenant and shaped for the key's scope."""

from __future__ import annotations

import asyncio
import itertools
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse

from api.deps import Caller, CallerDep, IdempotencyKeyDep, StateDep, TemporalDep
from api.errors import Problem
from api.paging import (
    Cursor,
    Limit,
    decode_event_cursor,
    decode_keyset,
    encode_event_cursor,
    encode_keyset,
)
from api.phones import to_e164
from api.schemas import CallCreate, CallPage, CallPublic, EventPage, EventPublic, export_csv
from api.services import hang_up, place_call
from core.types import CallState
from store import calls, inbox
from store.models import CallRecordRow

router = APIRouter(prefix="/v1/calls", tags=["calls"])

MAX_MS = 2**63 - 1  # since/until are epoch ms on `created`, a bigint


async def own_call(state: StateDep, caller: CallerDep, call_id: str) -> CallRecordRow:
    row = await state.in_store(lambda s: calls.get_call(s, caller.tenant.id, call_id))
    if row is None:
        raise Problem(404, "not_found", "no such call")
    return row


def _view(row: CallRecordRow, caller: Caller) -> CallPublic:
    return CallPublic.from_row(row, masked=caller.masked)


def _number(value: str | None, field: str, caller: Caller) -> str | None:
    return None if value is None else to_e164(value, field, caller.tenant.default_region)


def _customer_number(value: str | None, caller: Caller) -> str | None:
    if value is not None and caller.masked:
        # Answers would confirm a number the key may not see: masked means not at all.
        raise Problem(403, "forbidden", "a masked key cannot search by the customer's number")
    return _number(value, "called", caller)


def call_filter(
    caller: CallerDep,
    state: CallState | None = None,
    channel: Annotated[str | None, Query(max_length=8)] = None,
    agent: Annotated[str | None, Query(max_length=64)] = None,
    user: Annotated[str | None, Query(max_length=64)] = None,
    caller_number: Annotated[str | None, Query(alias="caller", max_length=32)] = None,
    called: Annotated[str | None, Query(max_length=32)] = None,
    close_type: Annotated[int | None, Query(ge=0, le=255)] = None,
    since: Annotated[int | None, Query(ge=0, le=MAX_MS, description="created >= since")] = None,
    until: Annotated[int | None, Query(ge=0, le=MAX_MS, description="created < until")] = None,
) -> calls.CallFilter:
    return calls.CallFilter(
        tenant=caller.tenant.id, state=state.value if state else None, channel=channel,
        agent=agent, user=user, caller=_number(caller_number, "caller", caller),
        called=_customer_number(called, caller),
        close_type=None if close_type is None else str(close_type), since=since, until=until,
    )  # fmt: skip


CallFilterDep = Annotated[calls.CallFilter, Depends(call_filter)]


@router.get("", response_model=CallPage)
async def list_calls(
    flt: CallFilterDep, state: StateDep, caller: CallerDep, limit: Limit = 50,
    cursor: Cursor = None,
) -> CallPage:  # fmt: skip
    """The tenant's calls, newest first (created, then id, descending); keyset-paged."""
    after = decode_keyset(cursor)
    page = await state.in_store(lambda s: calls.query_calls(s, flt, after, limit))
    return CallPage(
        items=[_view(row, caller) for row in page.rows],
        next_cursor=None if page.next is None else encode_keyset(page.next),
    )


# Declared before /{call_id}: otherwise "export.csv" would be taken for a call id.
@router.get("/export.csv", response_class=StreamingResponse)
async def export_calls(
    flt: CallFilterDep, state: StateDep, caller: CallerDep,
    limit: Annotated[int | None, Query(ge=1, description="at most this many rows; absent: all")]
    = None,
) -> Response:  # fmt: skip
    """Every call the same filters select (at most ``limit``), newest first, streamed as CSV
    (RECORD.md names)."""
    page_size = 500 if limit is None else min(limit, 500)
    rows = itertools.islice(calls.iter_calls(state.engine, flt, page_size), limit)
    # The first page is read before answering: a database that is down is a 503, not a
    # stream cut after its 200.
    first = await asyncio.to_thread(next, rows, None)
    every = itertools.chain([] if first is None else [first], rows)
    return StreamingResponse(
        export_csv(every, masked=caller.masked),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="calls.csv"'},
    )


@router.post("", status_code=201, response_model=CallPublic)
async def create_call(
    body: CallCreate,
    state: StateDep,
    temporal: TemporalDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKeyDep,
) -> Response:
    placement = await place_call(state, temporal, caller, body, idempotency_key)
    view = _view(placement.row, caller)
    return JSONResponse(
        view.model_dump(mode="json", by_alias=True),
        status_code=201 if placement.created else 200,
        headers={"Location": f"/v1/calls/{view.cc_call_id}"},
    )


@router.get("/{call_id}", response_model=CallPublic)
async def get_call(call_id: str, state: StateDep, caller: CallerDep) -> CallPublic:
    return _view(await own_call(state, caller, call_id), caller)


@router.post("/{call_id}/hangup", status_code=202, response_model=CallPublic)
async def hangup_call(
    call_id: str, state: StateDep, temporal: TemporalDep, caller: CallerDep
) -> CallPublic:
    row = await own_call(state, caller, call_id)
    await hang_up(state, temporal, row)
    return _view(row, caller)


@router.get("/{call_id}/events", response_model=EventPage)
async def call_events(
    call_id: str, state: StateDep, caller: CallerDep, limit: Limit = 50, cursor: Cursor = None
) -> EventPage:
    """The raw vendor events stored for the call, oldest first, each with ``applied``."""
    after = decode_event_cursor(cursor)
    call = await own_call(state, caller, call_id)
    rows, following = await state.in_store(lambda s: inbox.events_page(s, call_id, after, limit))
    return EventPage(
        items=[EventPublic.from_row(row, call.called, caller.masked) for row in rows],
        next_cursor=None if following is None else encode_event_cursor(*following),
    )
