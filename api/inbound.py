"""Inbound 400-number calls: a customer dials a tenant's main number and keys an extension;
the vendor asks CC where the call goes (VENDORS.md "Inbound calls to a 400 number").

CC answers in one transaction: the raw request is stored in the inbox first, then the
extension is looked up and its line leased. A bound, idle line gets ``dial`` (the agent is
shown ``main_num``, never the customer) and the call becomes an ordinary record, followed by
its own CallWorkflow from the vendor's first event to the recording copy; a missing extension
gets ``ivr``; an unknown or busy one ``reject``, recorded closed with close_type 2. The same
request sent again (a vendor retry) gets the same answer: the call's id is derived from the
vendor's call id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import Session
from temporalio.client import Client

from api.deps import AppState
from api.errors import Problem
from api.starting import start_call_workflow
from callflow.inbound import e164, inbound_call_id
from callflow.record import apply_event
from channels.events import CallEvent, InboundAnswer, InboundCall
from contracts.call import Routing
from core.config import CoreSettings
from core.phones import mask
from core.types import CallState, CloseType, Direction, DisplayPolicy, EventKind, InboundAction
from store import calls, extensions, inbox, lines
from store.db import now_ms
from store.models import CallRecordRow
from store.placement import RecordedCall, record_born

log = logging.getLogger("cc.api.inbound")


@dataclass(frozen=True)
class Decision:
    answer: InboundAnswer
    start: RecordedCall | None = None  # a new call to follow: start its workflow


async def answer_inbound(
    state: AppState,
    temporal: Client,
    channel: str,
    call: InboundCall,
    body: bytes,
    content_type: str,
) -> InboundAnswer:
    settings = state.settings
    try:
        decision = await state.in_store(
            lambda s: decide(s, settings, channel, call, body, content_type)
        )
    except calls.IdempotencyClash:  # the same request, sent again, won a moment ago: its answer
        decision = await state.in_store(
            lambda s: decide(s, settings, channel, call, body, content_type)
        )
    if decision.start is None:
        return decision.answer
    try:
        await start_call_workflow(state, temporal, decision.start, Routing(may_fail_over=False))
    except Problem:
        # Temporal surely did not take the call: the row and lease are undone; the customer
        # hears "call again later" rather than an agent CC could not follow.
        log.error("inbound call not started call=%s", decision.start.row.cc_call_id)
        return _reject(settings.inbound_prompt_unavailable)
    log.info(
        "inbound call tenant=%s call=%s channel=%s from=%s",
        decision.start.row.tenant,
        decision.start.row.cc_call_id,
        channel,
        mask(decision.start.row.caller),
    )
    return decision.answer


def _reject(prompt: str) -> InboundAnswer:
    return InboundAnswer(action=InboundAction.REJECT, prompt=prompt)


def _dial(row: CallRecordRow) -> InboundAnswer:
    return InboundAnswer(
        action=InboundAction.DIAL,
        cc_call_id=row.cc_call_id,
        to=row.called,
        display=row.main_num,
        record=row.record_audio,
    )


def decide(
    session: Session,
    settings: CoreSettings,
    channel: str,
    call: InboundCall,
    body: bytes,
    content_type: str,
) -> Decision:
    """Store the request, then answer it (in the caller's one transaction)."""
    inbox_id, _ = inbox.store_inbound(session, channel, call, body, content_type)
    cc_call_id = inbound_call_id(channel, call.vendor_call_id)
    earlier = calls.get_call_any_tenant(session, cc_call_id)
    if earlier is not None:  # the vendor asked again: the same answer
        open_call = (
            earlier.state != CallState.CLOSE.value and earlier.direction == Direction.IN.value
        )
        return Decision(_dial(earlier) if open_call else _reject(settings.inbound_prompt_busy))
    main_num = e164(call.main_num, settings.default_region)
    tenant = main_num and extensions.main_num_known(session, main_num)
    if not main_num or not tenant:
        inbox.settle_inbound(session, inbox_id, None, "unknown_main_num")
        log.warning("inbound call to an unknown number on %s", channel)
        return Decision(_reject(settings.inbound_prompt_unknown))
    if not call.ext_num:
        inbox.settle_inbound(session, inbox_id, None, "ivr")
        return Decision(
            InboundAnswer(
                action=InboundAction.IVR,
                prompt=settings.inbound_prompt_ext,
                collect=settings.inbound_ext_digits,
            )
        )
    row = CallRecordRow(
        cc_call_id=cc_call_id,
        tenant=tenant,
        main_num=main_num,
        ext_num=call.ext_num[:8],
        caller=e164(call.caller, settings.default_region) or call.caller[:16],
        called="",
        channel=channel,
        agent="",
        vendor_call_id=call.vendor_call_id,
        display=DisplayPolicy.PLATFORM.value,
        direction=Direction.IN.value,
        max_duration=settings.default_max_duration_s,
        created=call.at,
        updated=now_ms(),
    )
    bound = extensions.find_extension(session, main_num, call.ext_num)
    line = bound and lines.lease_agent_line(session, tenant, bound.channel, bound.agent, cc_call_id)
    if not bound or not line:  # unbound, or its line busy (or out of service)
        why = "unbound" if not bound else "busy"
        prompt = settings.inbound_prompt_unknown if not bound else settings.inbound_prompt_busy
        # Closed through the record's own state machine, like any close: leg B (the agent)
        # could not be reached.
        refused = CallEvent(
            cc_call_id=cc_call_id,
            kind=EventKind.HANGUP,
            at=call.at,
            close_type=CloseType.B_UNREACHABLE,
            ch_state=f"cc:inbound_{why}",
            dedupe_key=f"cc:inbound_{why}",
        )
        row.agent = bound.agent if bound else ""
        row.sqlmodel_update(calls.stored_values(apply_event(calls.record_of(row), refused)))
        record_born(session, row)  # a call.state "close" for the app
        inbox.settle_inbound(session, inbox_id, cc_call_id, f"reject:{why}")
        return Decision(_reject(prompt))
    row.sqlmodel_update(
        {"agent": line.agent, "called": bound.phone, "lease_token": line.lease_token}
    )
    record_born(session, row)
    inbox.settle_inbound(session, inbox_id, cc_call_id, "dial")
    return Decision(_dial(row), RecordedCall(row, lines.lease_of(line), may_fail_over=False))
