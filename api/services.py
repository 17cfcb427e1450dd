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
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from api.deps import AppState, Caller
from api.errors import Problem, invalid_field
from api.phones import mask, to_e164
from api.schemas import CallCreate
from callflow.record import CallRecord
from core.metrics import CALLS_ACCEPTED, CALLS_REFUSED
from core.types import CallState, DisplayPolicy
from store import calls, tenants
from store.db import now_ms
from store.models import CallRecordRow
from store.routing import LineBusy, NoChannel, RouteRequest, choose_line
from workflows.call import CallWorkflow
from workflows.types import (
    SA_CALL_STATE,
    SA_CHANNEL,
    SA_TENANT,
    CallInput,
    CallTimers,
    LineLease,
    PollTimers,
    RecordingTimers,
    Routing,
    lease_of,
    workflow_id,
)

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
    if idem_key and (earlier := await _earlier(state, tenant.id, idem_key, digest)):
        return Placement(earlier, created=False)

    cc_call_id = new_call_id()
    display = body.display or DisplayPolicy(tenant.default_display)
    row = CallRecordRow(
        tenant=tenant.id, user=body.user, main_num=body.main_num, ext_num=body.ext_num,
        agent="", caller=a_number, called=b_number, biz_data=body.biz_data, channel="",
        state=CallState.INIT.value, ivr_url=body.ivr_url, ivr_text=body.ivr_text,
        cc_call_id=cc_call_id, display=display.value, idempotency_key=idem_key,
        request_hash=digest, max_duration=body.max_duration or settings.default_max_duration_s,
        record_audio=body.record, created=now_ms(), updated=now_ms(),
    )  # fmt: skip
    modes = {name: channel.mode for name, channel in state.channels.items()}
    routing = Routing(user=body.user, allow_fallback=body.fallback,
                      priority=channel_priority(state), modes=modes)  # fmt: skip
    route_request = RouteRequest(tenant=tenant.id, cc_call_id=cc_call_id, user=body.user,
                                 channel=body.channel, allow_fallback=body.fallback,
                                 priority=routing.priority)  # fmt: skip

    def route_and_insert(session: Session) -> LineLease:
        route = choose_line(session, route_request)
        routing.may_fail_over = route.may_fail_over
        row.channel, row.agent, row.lease_token = (
            route.line.channel,
            route.line.agent,
            route.line.lease_token,
        )
        calls.insert_call(session, row)
        return lease_of(route.line)

    try:
        lease = await state.in_store(route_and_insert)
    except calls.IdempotencyClash:
        # Another request with the same key won the race a moment ago.
        earlier = await _earlier(state, tenant.id, idem_key or "", digest)
        if earlier is None:
            raise
        return Placement(earlier, created=False)
    except LineBusy as exc:
        CALLS_REFUSED.labels("line_busy").inc()
        raise Problem(409, "line_busy", str(exc)) from exc
    except NoChannel as exc:
        CALLS_REFUSED.labels("no_channel").inc()
        raise Problem(503, "no_channel", str(exc)) from exc
    channel = lease.channel

    await _start_workflow(state, temporal, row, lease, routing)
    CALLS_ACCEPTED.labels(channel).inc()
    log.info("call accepted tenant=%s call=%s channel=%s line=%s called=%s", tenant.id,
             cc_call_id, channel, lease.agent, mask(b_number))  # fmt: skip
    return Placement(row, created=True)


async def _earlier(state: AppState, tenant: str, key: str, digest: str) -> CallRecordRow | None:
    earlier = await state.in_store(lambda s: calls.find_by_idempotency_key(s, tenant, key))
    if earlier is not None and earlier.request_hash != digest:
        raise Problem(409, "idempotency_conflict", "Idempotency-Key reused with another body")
    return earlier


def channel_priority(state: AppState) -> list[str]:
    preferred = [name for name in state.settings.channel_priority if name in state.channels]
    return preferred + [name for name in state.channels if name not in preferred]


async def _start_workflow(
    state: AppState, temporal: Client, row: CallRecordRow, lease: LineLease, routing: Routing
) -> None:
    settings = state.settings
    record = CallRecord(
        cc_call_id=row.cc_call_id, tenant=row.tenant, channel=row.channel, agent=row.agent,
        caller=row.caller, called=row.called, display=DisplayPolicy(row.display),
        created=row.created, main_num=row.main_num, ext_num=row.ext_num, biz_data=row.biz_data,
        ivr_url=row.ivr_url, ivr_text=row.ivr_text,
    )  # fmt: skip
    timers = CallTimers(
        watchdog_grace_s=settings.watchdog_grace_s,
        hangup_wait_s=settings.watchdog_hangup_wait_s,
        late_event_window_s=settings.late_event_window_s,
    )
    recording = RecordingTimers(
        deadline_s=settings.recording_deadline_s,
        retry_initial_s=settings.recording_retry_initial_s,
        retry_max_s=settings.recording_retry_max_s,
    )
    poll = PollTimers(
        interval_s=settings.poll_interval_s,
        max_interval_s=settings.poll_max_interval_s,
        unreachable_after_s=settings.poll_unreachable_after_s,
        after_close_s=settings.poll_after_close_s,
    )
    try:
        await temporal.start_workflow(
            CallWorkflow.run,
            CallInput(
                record=record,
                line=lease,
                max_duration_s=row.max_duration,
                routing=routing,
                poll=poll,
                recording=recording,
                record_audio=row.record_audio,
                timers=timers,
            ),  # fmt: skip
            id=workflow_id(row.cc_call_id),
            task_queue=settings.task_queue,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(SA_CALL_STATE, CallState.INIT.value),
                    SearchAttributePair(SA_CHANNEL, row.channel),
                    SearchAttributePair(SA_TENANT, row.tenant),
                ]
            ),
        )
    except Exception as exc:
        # Not accepted: undo the row and the lease so nothing is left half-made.
        log.error("workflow start failed call=%s: %s", row.cc_call_id, exc.__class__.__name__)

        def undo(session: Session) -> None:
            tenants.release_line(session, lease.channel, lease.agent, row.cc_call_id, lease.token)
            stored = calls.get_call_any_tenant(session, row.cc_call_id)
            if stored is not None:
                calls.drop_call(session, stored)

        await state.in_store(undo)
        raise Problem(503, "temporal_unavailable", "the call could not be started; retry") from exc
