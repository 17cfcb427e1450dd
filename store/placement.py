"""Recording a new call, the API's part of placing it: claim its Idempotency-Key, lease its
line and write its row, in the caller's one transaction; and undo all that when its workflow
surely never started."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from contracts.call import LineLease, Routing
from core.types import CallState
from store import notifications
from store.calls import IdempotencyClash, drop_call, get_call_any_tenant, insert_call
from store.lines import find_line, lease_of, release_line
from store.models import AgentLine, CallRecordRow
from store.quotas import Quotas, check_calls, check_live, hold
from store.routing import Route, RouteRequest, choose_line, route_taken
from store.tenants import get_tenant

# A new call's line columns before its line is leased. They are NOT NULL and the row must go
# in first (see record_call), so they hold this until the line is written, later in the same
# transaction: no other transaction ever sees them so.
_NOT_LEASED_YET = {"channel": "", "agent": ""}


@dataclass(frozen=True)
class RecordedCall:
    row: CallRecordRow  # the call's row, on its line
    lease: LineLease | None  # the line it holds; None: a scheduled call (no line until due)
    may_fail_over: bool  # False when the request or a binding pins the channel


def record_call(
    session: Session,
    call: CallRecordRow,
    routing: Routing,
    channel: str | None,
    quotas: Quotas | None = None,
) -> RecordedCall:
    """Record ``call`` (the call as requested, before it has a line) and lease it a line as
    ``routing`` says, ``channel`` pinning one if the request names it.

    The row goes in first: it claims the Idempotency-Key, so a concurrent retry with the same
    key clashes on the unique key (after waiting for this transaction to commit) before it can
    lease a line; a write as the first statement also takes SQLite's write lock at once, so
    concurrent placements queue instead of failing "locked". Raises IdempotencyClash, and
    store.routing's NoChannel or LineBusy, and store.quotas' QuotaExceeded over ``quotas``.
    """
    _claim_within_quota(session, call, quotas)
    request = RouteRequest.for_call(call.tenant, call.cc_call_id, routing, channel)
    route = choose_line(session, request)
    _on_line(session, call, route.line)
    return RecordedCall(call, lease_of(route.line), route.may_fail_over)


def _on_line(session: Session, row: CallRecordRow, line: AgentLine) -> None:
    """The call's row on the line it leased (its fencing token with it)."""
    row.sqlmodel_update(
        {"channel": line.channel, "agent": line.agent, "lease_token": line.lease_token}
    )
    session.add(row)


def record_scheduled(session: Session, call: CallRecordRow, quotas: Quotas | None = None) -> None:
    """Record ``call``, which waits to be placed (state ``scheduled``): it claims its
    Idempotency-Key and counts against the tenant's calls per minute now, but holds no line
    and is not live until it is due (``take_due_line``)."""
    _claim_within_quota(session, call, quotas)


def take_due_line(
    session: Session, tenant: str, cc_call_id: str, routing: Routing, defaults: Quotas | None
) -> Route:
    """A scheduled call that is due: lease it a line as ``routing`` says (the channel the
    request pinned, a binding, priority), within the tenant's live-call quota, and write the
    line on its row. Raises store.routing's NoChannel or LineBusy, or QuotaExceeded."""
    if defaults is not None:
        hold(session, tenant)
    owner = get_tenant(session, tenant)
    if defaults is not None and owner is not None:
        check_live(session, tenant, Quotas.of(owner, defaults))
    route = choose_line(
        session, RouteRequest.for_call(tenant, cc_call_id, routing, routing.channel)
    )
    row = get_call_any_tenant(session, cc_call_id)
    if row is not None:
        _on_line(session, row, route.line)
    return route


def record_born(session: Session, row: CallRecordRow, written: bool = False) -> None:
    """A new call's row written (unless ``record_call`` wrote it: ``written``) and, in the same
    transaction, the app's first ``call.state`` queued. Every way a call is born goes through
    here (contracts/start.py), so none is born untold."""
    if not written:
        insert_call(session, row)
    notifications.enqueue_created(session, row)


def recorded_again(
    session: Session, cc_call_id: str, routing: Routing, channel: str | None
) -> RecordedCall | None:
    """The call ``record_call`` recorded, as it recorded it, for a request replayed with its
    Idempotency-Key; None once the call is no longer a new one holding its line (placed,
    closed, or its line freed)."""
    row = get_call_any_tenant(session, cc_call_id)
    if row is None or row.state != CallState.INIT.value or row.vendor_call_id is not None:
        return None
    line = find_line(session, row.channel, row.agent)
    if line is None or line.lease_call_id != cc_call_id or line.lease_token != row.lease_token:
        return None
    request = RouteRequest.for_call(row.tenant, cc_call_id, routing, channel)
    return RecordedCall(row, lease_of(line), route_taken(session, request, line).may_fail_over)


def _claim_within_quota(session: Session, call: CallRecordRow, quotas: Quotas | None) -> None:
    """The tenant held (``quotas.hold``), the row written (``_claim_key``), then the tenant's
    calls counted with it (QuotaExceeded over ``quotas``; None: not counted)."""
    if quotas is not None:
        hold(session, call.tenant)
    _claim_key(session, call)
    if quotas is not None:
        check_calls(session, call.tenant, quotas, call.created)


def _claim_key(session: Session, call: CallRecordRow) -> None:
    """Insert the row as the transaction's first statement (no savepoint: with pysqlite a
    SAVEPOINT outside a transaction would commit on release)."""
    call.sqlmodel_update(_NOT_LEASED_YET)
    session.add(call)
    try:
        session.flush()
    except IntegrityError as exc:
        if call.idempotency_key is None:
            raise
        raise IdempotencyClash(call.idempotency_key) from exc


def undo_call(session: Session, cc_call_id: str, lease: LineLease | None) -> None:
    """Undo a recorded call whose workflow surely never started: free its line, drop its row,
    so nothing is left half-made."""
    if lease is not None:
        release_line(session, lease.channel, lease.agent, cc_call_id, lease.token)
    notifications.forget_call(session, cc_call_id)  # its "init" was never true
    stored = get_call_any_tenant(session, cc_call_id)
    if stored is not None:
        drop_call(session, stored)
