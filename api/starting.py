"""Starting a recorded call's workflow, for the API's calls and inbound calls: the start
asked of Temporal, and what a start that failed leaves behind (nothing, if it surely did not
happen; the call as placed, if it may have)."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import AppState
from api.errors import unavailable
from contracts.call import CallPolicy, Routing
from contracts.ids import workflow_id
from contracts.start import call_input, start_call
from store import calls, placement

log = logging.getLogger("cc.api.calls")


async def start_call_workflow(
    state: AppState,
    temporal: Client,
    recorded: placement.RecordedCall,
    routing: Routing,
    existing: bool = False,
    policy: CallPolicy | None = None,
) -> None:
    """Start the call's workflow with the line leased and ``routing`` as asked and decided.
    ``existing``: the workflow may exist already (a replayed request): a running one is
    used, a finished one is not run again.

    A start that surely did not happen is undone (row and lease); a start that may have
    happened keeps the call (the lease reconciler closes it if its workflow never appears).
    """
    settings, row, lease = state.settings, recorded.row, recorded.lease
    routing = routing.model_copy(update={"may_fail_over": recorded.may_fail_over})
    record = calls.record_of(row)
    inp = call_input(
        settings, record, lease, routing, row.max_duration, row.record_audio, policy=policy
    )
    try:
        await start_call(temporal, inp, settings.task_queue, existing=existing)
    except WorkflowAlreadyStartedError:
        # Our ids are fresh: only an earlier attempt of this very start (a retried RPC) can
        # have started it. Started is what we wanted.
        log.info("workflow already started call=%s", row.cc_call_id)
    except Exception as exc:
        if not await _surely_not_started(temporal, row.cc_call_id, exc):
            # Perhaps started (the answer was lost): the call stands, with its row and lease.
            # If the workflow really does not exist, the lease reconciler frees the line and
            # closes the record once the lease is CC_LEASE_MIN_AGE_S old.
            log.warning(
                "workflow start unclear call=%s (%s); kept as placed",
                row.cc_call_id,
                exc.__class__.__name__,
            )
            return
        # Surely not accepted: undo the row and the lease so nothing is left half-made.
        log.error("workflow start failed call=%s: %s", row.cc_call_id, exc.__class__.__name__)
        await state.in_store(lambda s: placement.undo_call(s, row.cc_call_id, lease))
        raise unavailable("temporal_unavailable", "the call could not be started; retry") from exc


# Temporal refused the start outright: the request reached it and nothing was created.
_REFUSED = frozenset(
    {
        RPCStatusCode.INVALID_ARGUMENT,
        RPCStatusCode.NOT_FOUND,
        RPCStatusCode.PERMISSION_DENIED,
        RPCStatusCode.UNAUTHENTICATED,
        RPCStatusCode.FAILED_PRECONDITION,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.UNIMPLEMENTED,
        RPCStatusCode.OUT_OF_RANGE,
    }
)
DESCRIBE_TIMEOUT = timedelta(seconds=5)


async def _surely_not_started(temporal: Client, cc_call_id: str, exc: Exception) -> bool:
    """After a failed start: True only when the workflow certainly does not exist. A timeout,
    a cancelled or unavailable RPC may come after the server started it, so ask."""
    if isinstance(exc, RPCError) and exc.status in _REFUSED:
        return True
    try:
        await temporal.get_workflow_handle(workflow_id(cc_call_id)).describe(
            rpc_timeout=DESCRIBE_TIMEOUT
        )
    except RPCError as missing:
        return missing.status == RPCStatusCode.NOT_FOUND  # otherwise: cannot be told
    except Exception:  # noqa: BLE001 - cannot be told: keep the call
        return False
    return False  # it exists: started after all
