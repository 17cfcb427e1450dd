"""Hanging up a call for the API: the call's workflow is asked (a workflow update), and
the answer says what the app may expect."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import AppState
from api.errors import Problem, unavailable
from contracts.errors import ALREADY_CLOSED
from contracts.ids import HANGUP_UPDATE, workflow_id
from core.types import CallState, Direction
from store import calls, series
from store.db import now_ms
from store.models import CallRecordRow

log = logging.getLogger("cc.api.calls")


# Statuses of a Temporal that is down, overloaded or slow: worth retrying.
_PASSING = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.ABORTED,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.UNKNOWN,
    }
)
HANGUP_TIMEOUT = timedelta(seconds=10)


def _already_closed() -> Problem:
    return Problem(409, "already_closed", "the call has already ended")


async def hang_up(state: AppState, temporal: Client, row: CallRecordRow) -> None:
    """Ask the call's workflow to end the call; returns once the workflow accepted.

    409 ``already_closed``: the record is closed, or the workflow's validator says closed.
    503 ``temporal_unavailable``: Temporal could not be asked (down, timed out).
    A workflow that is gone (completed, terminated, never started) while the record is still
    open answers 202 all the same: nobody else will end that call, and the lease reconciler
    does exactly that (hangs up at the vendor, frees the line, closes the record) at its next
    round, so "accepted, it will end" is the truth; 409 would tell the app it already ended.
    """
    if row.state == CallState.CLOSE.value:
        row = await _series_try(state, row)
    try:
        await _ask(temporal, row.cc_call_id)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        current = await state.in_store(lambda s: calls.get_call_any_tenant(s, row.cc_call_id))
        if current is None or current.state == CallState.CLOSE.value:
            raise _already_closed() from exc
        if current.parent is not None and current.state == CallState.SCHEDULED.value:
            # A series' try whose workflow the try before it is starting right now: that one
            # takes the hang-up (its validator does, while it makes the next try) and cancels
            # this one as soon as it has started it; if it has just done so, this one takes it.
            for asked in (series.previous_try_id(current), row.cc_call_id):
                if await _asked_if_there(temporal, asked):
                    return
        log.warning(
            "hangup of call=%s with no running workflow; left to the reconciler", row.cc_call_id
        )


async def _ask(temporal: Client, cc_call_id: str) -> None:
    """The hang-up update to the call's workflow, accepted. 409 and 503 as ``hang_up`` says;
    a workflow that does not exist raises the RPCError (NOT_FOUND)."""
    handle = temporal.get_workflow_handle(workflow_id(cc_call_id))
    try:
        # Accepted is enough: the vendor is asked in the background and the close arrives
        # as the vendor's own hang-up event.
        update = await handle.start_update(
            HANGUP_UPDATE,
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            rpc_timeout=HANGUP_TIMEOUT,
        )
        # An update the workflow's validator rejected comes back as an outcome already known
        # (start_update itself does not raise for it): reading it raises the rejection.
        if update._known_outcome is not None:  # noqa: SLF001 - the SDK's only way to tell
            await update.result(rpc_timeout=HANGUP_TIMEOUT)
    except WorkflowUpdateFailedError as exc:
        if isinstance(exc.cause, ApplicationError) and exc.cause.type == ALREADY_CLOSED:
            raise _already_closed() from exc
        raise
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
        raise unavailable("temporal_unavailable", "the workflow service timed out") from exc
    except RPCError as exc:
        if exc.status in _PASSING:
            raise unavailable(
                "temporal_unavailable", "the workflow service is unavailable"
            ) from exc
        raise


async def _asked_if_there(temporal: Client, cc_call_id: str) -> bool:
    """``_ask``, False when there is no such workflow, or it says closed (409); any other
    answer (503 included) is raised."""
    try:
        await _ask(temporal, cc_call_id)
    except RPCError as gone:
        if gone.status != RPCStatusCode.NOT_FOUND:
            raise
        return False
    except Problem as refused:
        if refused.status != 409:
            raise
        return False
    return True


async def _series_try(state: AppState, closed: CallRecordRow) -> CallRecordRow:
    """What hanging up a closed call reaches: its retry series' try that has not ended
    (scheduled, or being placed), which the series' cancel ends; else the call itself when
    its workflow may be making the next try (it then cancels that); else 409."""
    head = closed.parent or closed.cc_call_id
    pending = await state.in_store(lambda s: series.pending_try(s, closed.tenant, head))
    if pending is not None:
        return pending
    just_closed = closed.close_time is not None and now_ms() - closed.close_time < NEXT_TRY_MS
    if closed.direction != Direction.OUT.value or not just_closed:
        raise _already_closed()
    return closed  # its workflow refuses (409) unless a next try is due from it


# A try's workflow makes the series' next try right after the close (a store write and a
# workflow start): a call closed longer ago than this has made it, or never will.
NEXT_TRY_MS = 120_000
