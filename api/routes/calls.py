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
from api.hangup import hang_up
from api.openapi import errors
from api.paging import (
    Cursor,
    Limit,
    decode_event_cursor,
    decode_keyset,
    encode_event_cursor,
    encode_keyset,
)
from api.phones import EXT_NUM, to_e164
from api.schemas import CallCreate, CallPage, EventPage, EventPublic, export_csv
from api.services import place_call
from core.types import CallState, Direction
from store import call_query, calls, inbox
from store.models import CallRecordRow
from store.views import CallPublic, customer_field, customer_number

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


def _leg_numbers(
    caller_number: str | None, called: str | None, direction: Direction | None, caller: Caller
) -> tuple[str | None, str | None, Direction | None]:
    """The ``caller``/``called`` filters in E.164, and the direction the search is limited to.

    The customer is ``called`` on a callback and ``caller`` on an inbound call. A masked key
    may search by the agent's leg only: answers would confirm a number it may not see, so a
    search by the customer's leg is refused, and a ``caller`` search without a direction
    looks at callbacks alone."""
    if caller.masked:
        searched = {"caller": caller_number, "called": called}
        if searched[customer_field(direction)] is not None:
            raise Problem(403, "forbidden", "a masked key cannot search by the customer's number")
        if caller_number is not None and direction is None:
            direction = Direction.OUT
    return _number(caller_number, "caller", caller), _number(called, "called", caller), direction


def call_filter(
    caller: CallerDep,
    state: CallState | None = None,
    channel: Annotated[str | None, Query(max_length=8)] = None,
    agent: Annotated[str | None, Query(max_length=64)] = None,
    user: Annotated[str | None, Query(max_length=64)] = None,
    caller_number: Annotated[str | None, Query(alias="caller", max_length=32)] = None,
    called: Annotated[str | None, Query(max_length=32)] = None,
    close_type: Annotated[int | None, Query(ge=0, le=255)] = None,
    direction: Direction | None = None,
    main_num: Annotated[str | None, Query(max_length=32)] = None,
    ext_num: Annotated[str | None, Query(pattern=EXT_NUM)] = None,
    since: Annotated[int | None, Query(ge=0, le=MAX_MS, description="created >= since")] = None,
    until: Annotated[int | None, Query(ge=0, le=MAX_MS, description="created < until")] = None,
) -> call_query.CallFilter:
    leg_a, leg_b, direction = _leg_numbers(caller_number, called, direction, caller)
    return call_query.CallFilter(
        tenant=caller.tenant.id,
        state=state.value if state else None,
        channel=channel,
        agent=agent,
        user=user,
        caller=leg_a,
        called=leg_b,
        close_type=None if close_type is None else str(close_type),
        direction=direction.value if direction else None,
        main_num=_number(main_num, "main_num", caller),
        ext_num=ext_num,
        since=since,
        until=until,
    )


CallFilterDep = Annotated[call_query.CallFilter, Depends(call_filter)]


@router.get("", response_model=CallPage)
async def list_calls(
    flt: CallFilterDep,
    state: StateDep,
    caller: CallerDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CallPage:
    """The tenant's calls, newest first (created, then id, descending); keyset-paged."""
    after = decode_keyset(cursor)
    page = await state.in_store(lambda s: call_query.query_calls(s, flt, after, limit))
    return CallPage(
        items=[_view(row, caller) for row in page.rows],
        next_cursor=None if page.next is None else encode_keyset(page.next),
    )


# Declared before /{call_id}: otherwise "export.csv" would be taken for a call id.
@router.get("/export.csv", response_class=StreamingResponse)
async def export_calls(
    flt: CallFilterDep,
    state: StateDep,
    caller: CallerDep,
    limit: Annotated[
        int | None, Query(ge=1, description="at most this many rows; absent: all")
    ] = None,
) -> Response:
    """Every call the same filters select (at most ``limit``), newest first, streamed as CSV
    (RECORD.md names)."""
    page_size = 500 if limit is None else min(limit, 500)
    rows = itertools.islice(call_query.iter_calls(state.engine, flt, page_size), limit)
    # The first page is read before answering: a database that is down is a 503, not a
    # stream cut after its 200.
    first = await asyncio.to_thread(next, rows, None)
    every = itertools.chain([] if first is None else [first], rows)
    return StreamingResponse(
        export_csv(every, masked=caller.masked),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="calls.csv"'},
    )


@router.post(
    "",
    status_code=201,
    response_model=CallPublic,
    responses=errors(
        409,
        429,
        s409="`line_busy` (the agent line is on a call) or `idempotency_conflict` (the same "
        "key with another body)",
        s503="`no_channel` (no healthy channel can take the call), or the database or Temporal "
        "is down: try again",
    ),
)
async def create_call(
    body: CallCreate,
    state: StateDep,
    temporal: TemporalDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKeyDep,
) -> Response:
    """Place a callback: CC dials the agent (leg A), then the customer (leg B), and bridges them.
    201 with the call view and `Location`; 200 with the same call for a repeated `Idempotency-
    Key`. Scope: any."""
    placement = await place_call(state, temporal, caller, body, idempotency_key)
    view = _view(placement.row, caller)
    return JSONResponse(
        view.model_dump(mode="json", by_alias=True),
        status_code=201 if placement.created else 200,
        headers={"Location": f"/v1/calls/{view.cc_call_id}"},
    )


@router.get("/{call_id}", response_model=CallPublic)
async def get_call(call_id: str, state: StateDep, caller: CallerDep) -> CallPublic:
    """One call as it stands now (state, times, close_type); an app polls this while the call runs.
    A `masked` key sees the customer's number masked."""
    return _view(await own_call(state, caller, call_id), caller)


@router.post(
    "/{call_id}/hangup",
    status_code=202,
    response_model=CallPublic,
    responses=errors(409, s409="`already_closed`: the call has ended"),
)
async def hangup_call(
    call_id: str, state: StateDep, temporal: TemporalDep, caller: CallerDep
) -> CallPublic:
    """End a live call now (202: the vendor is asked to hang up; the call then closes with
    its events)."""
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
        items=[EventPublic.from_row(row, customer_number(call), caller.masked) for row in rows],
        next_cursor=None if following is None else encode_event_cursor(*following),
    )
