"""Call placement for the API: validate, lease a line, record the call, start its workflow.

The line is leased here, synchronously, so a busy line is a 409 in the app's answer rather
than a failed call later. The workflow owns the lease from then on and frees it at close.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass

from sqlmodel import Session
from temporalio.client import Client

from api.deps import AppState, Caller
from api.errors import Problem, invalid_field, quota_exceeded
from api.phones import to_e164
from api.schemas import CallCreate
from api.starting import start_call_workflow
from callflow.policy import CallingWindow, first_try_at
from contracts.call import CallPolicy, Routing
from core.metrics import CALLS_ACCEPTED, CALLS_REFUSED
from core.phones import mask
from core.types import CallState, DisplayPolicy
from store import calls, placement, tenants
from store.db import now_ms
from store.models import CallRecordRow
from store.quotas import QuotaExceeded, Quotas
from store.routing import LineBusy, NoChannel

log = logging.getLogger("cc.api.calls")


def new_call_id() -> str:
    """Time-ordered and unguessable: 12 hex digits of ms, 8 random."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(4)}"


def request_hash(body: CallCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Placement:
    row: CallRecordRow
    created: bool  # False: an earlier call with the same Idempotency-Key


async def place_call(
    state: AppState, temporal: Client, caller: Caller, body: CallCreate, idem_key: str | None
) -> Placement:
    settings, tenant = state.settings, caller.tenant
    a_number = to_e164(body.caller, "caller", tenant.default_region)
    b_number = to_e164(body.called, "called", tenant.default_region)
    if body.channel is not None and body.channel not in state.channels:
        allowed = f"one of {sorted(state.channels)}"
        raise invalid_field("channel", allowed, f"unknown channel {body.channel}")
    digest = request_hash(body)
    routing = Routing(
        user=body.user,
        channel=body.channel,
        allow_fallback=body.fallback,
        priority=channel_priority(state),
        modes={name: channel.mode for name, channel in state.channels.items()},
    )
    policy = CallPolicy(
        retry=body.retry or tenants.default_retry(tenant),
        window=body.window or tenants.default_window(tenant),
    )
    if idem_key and (earlier := await _earlier(state, tenant.id, idem_key, digest)):
        return await _replayed(state, temporal, earlier, routing, body.channel, policy)

    display = body.display or DisplayPolicy(tenant.default_display)
    now = now_ms()
    due, wait_reason = _due(body.not_before, policy.window, now)
    call = CallRecordRow(
        cc_call_id=new_call_id(),
        tenant=tenant.id,
        user=body.user,
        main_num=body.main_num,
        ext_num=body.ext_num,
        caller=a_number,
        called=b_number,
        biz_data=body.biz_data,
        ivr_url=body.ivr_url,
        ivr_text=body.ivr_text,
        display=display.value,
        idempotency_key=idem_key,
        request_hash=digest,
        max_duration=body.max_duration or settings.default_max_duration_s,
        record_audio=body.record,
        created=now,
        updated=now,
    )
    if wait_reason is not None:  # waits for its time holding no line; routed when due
        call.sqlmodel_update(
            {"state": CallState.SCHEDULED.value, "not_before": due, "wait_reason": wait_reason}
        )
    quotas = Quotas.of(tenant, Quotas.defaults(settings))
    recorded = await _record(state, call, routing, body.channel, quotas)
    if isinstance(recorded, Placement):
        return await _replayed(state, temporal, recorded.row, routing, body.channel, policy)
    row, lease = recorded.row, recorded.lease
    await start_call_workflow(state, temporal, recorded, routing, policy=policy)
    CALLS_ACCEPTED.labels(lease.channel if lease else "scheduled").inc()
    log.info(
        "call accepted tenant=%s call=%s channel=%s line=%s called=%s not_before=%s",
        tenant.id,
        row.cc_call_id,
        lease.channel if lease else "-",
        lease.agent if lease else "-",
        mask(b_number),
        row.not_before,
    )
    return Placement(row, created=True)


# A not_before less than this ahead is now; more than the horizon ahead is refused.
SCHEDULE_MIN_AHEAD_MS = 1_000
SCHEDULE_HORIZON_MS = 30 * 86_400_000


def _due(not_before: int | None, window: CallingWindow | None, now: int) -> tuple[int, str | None]:
    """When the call's first try may be placed, and why it waits till then (None: it is
    placed now): not before ``not_before`` (a time past or about now is now), inside the
    calling window (``window``: a call asked outside it waits for its next opening)."""
    if not_before is not None and not_before > now + SCHEDULE_HORIZON_MS:
        raise invalid_field("not_before", "at most 30 days ahead", "not_before is too far ahead")
    asked = max(now, not_before or 0)
    due = first_try_at(now, not_before, window)
    if due > now + SCHEDULE_MIN_AHEAD_MS:
        return due, "window" if due > asked else "not_before"
    return now, None


async def _replayed(
    state: AppState,
    temporal: Client,
    row: CallRecordRow,
    routing: Routing,
    channel: str | None,
    policy: CallPolicy,
) -> Placement:
    """The answer to a request that repeats an earlier one (same Idempotency-Key and body).

    The earlier request may have died (the API killed) after its call was recorded and
    before its workflow started: nobody would ever place that call, and the lease reconciler
    would close it unplaced. So a young call still in ``init`` has its workflow started here,
    idempotently: the workflow id is the call's, a running one is used as it is and a
    finished one is never run again, so at most one workflow ever places the call. An older
    one is left alone: past half ``lease_min_age_s`` the reconciler may be closing it."""
    young_ms = state.settings.lease_min_age_s * 500
    if row.state == CallState.SCHEDULED.value and row.lease_token is None:
        # Not due yet (no line taken): its workflow is started if it is not running; one
        # that ran already (cancelled, or due and routed) is never run again.
        waiting = placement.RecordedCall(row, lease=None, may_fail_over=False)
        await start_call_workflow(state, temporal, waiting, routing, True, policy)
    elif row.state == CallState.INIT.value and now_ms() - row.created < young_ms:
        recorded = await state.in_store(
            lambda s: placement.recorded_again(s, row.cc_call_id, routing, channel)
        )
        if recorded is not None:
            await start_call_workflow(state, temporal, recorded, routing, True, policy)
    return Placement(row, created=False)


async def _record(
    state: AppState, call: CallRecordRow, routing: Routing, channel: str | None, quotas: Quotas
) -> placement.RecordedCall | Placement:
    """Record the call and lease its line, or the earlier call an Idempotency-Key race shows
    is the answer; a refusal is a Problem."""
    tenant, key, digest = call.tenant, call.idempotency_key, call.request_hash or ""
    try:
        return await state.in_store(lambda s: _record_and_tell(s, call, routing, channel, quotas))
    except calls.IdempotencyClash:
        # Another request with the same key committed a moment ago: its call is the answer.
        return Placement(await _winner(state, tenant, key, digest), created=False)
    except LineBusy as exc:
        # The line may be busy with this very key's call (a retry racing the first request).
        if key and (earlier := await _earlier(state, tenant, key, digest)):
            return Placement(earlier, created=False)
        CALLS_REFUSED.labels("line_busy").inc()
        raise Problem(409, "line_busy", str(exc)) from exc
    except NoChannel as exc:
        CALLS_REFUSED.labels("no_channel").inc()
        raise Problem(503, "no_channel", str(exc)) from exc
    except QuotaExceeded as exc:
        CALLS_REFUSED.labels("quota_exceeded").inc()
        raise quota_exceeded(exc) from exc


def _record_and_tell(
    session: Session, call: CallRecordRow, routing: Routing, channel: str | None, quotas: Quotas
) -> placement.RecordedCall:
    """Record the call and, in the same transaction, its ``call.state`` for the app."""
    if call.state == CallState.SCHEDULED.value:
        placement.record_scheduled(session, call, quotas)
        recorded = placement.RecordedCall(call, lease=None, may_fail_over=False)
    else:
        recorded = placement.record_call(session, call, routing, channel, quotas)
    placement.record_born(session, recorded.row, written=True)
    return recorded


async def _winner(state: AppState, tenant: str, key: str | None, digest: str) -> CallRecordRow:
    earlier = await _earlier(state, tenant, key or "", digest)
    if earlier is None:
        # The request that held the key was undone (its workflow could not start).
        raise Problem(
            409, "idempotency_conflict", "a request with this Idempotency-Key failed; retry"
        )
    return earlier


async def _earlier(state: AppState, tenant: str, key: str, digest: str) -> CallRecordRow | None:
    earlier = await state.in_store(lambda s: calls.find_by_idempotency_key(s, tenant, key))
    if earlier is not None and earlier.request_hash != digest:
        raise Problem(409, "idempotency_conflict", "Idempotency-Key reused with another body")
    return earlier


def channel_priority(state: AppState) -> list[str]:
    preferred = [name for name in state.settings.channel_priority if name in state.channels]
    return preferred + [name for name in state.channels if name not in preferred]
