"""Activities that write the store: the live record and the line lease."""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from temporalio import activity

from core.logs import redact
from store import calls, inbox, tenants
from store.db import session_scope
from store.routing import LineBusy, NoChannel, RouteRequest, choose_line
from workflows.types import (
    FailoverInput,
    LineLease,
    ReleaseLineInput,
    SaveRecordInput,
    lease_of,
)

log = logging.getLogger("cc.activities.records")


class RecordActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn
    def save_record(self, inp: SaveRecordInput) -> None:
        """Idempotent: writes the whole live record and marks the folded events applied."""
        with session_scope(self._engine) as session:
            attempts = [a.model_dump() for a in inp.attempts]
            if not calls.save_record(session, inp.record, attempts):
                log.error("no row for call=%s", inp.record.cc_call_id)
            inbox.mark_applied(session, inp.applied_inbox_ids)
            if (line := inp.release_line) is not None:
                tenants.release_line(session, line.channel, line.agent, inp.record.cc_call_id,
                                     line.token)  # fmt: skip

    @activity.defn
    def release_line(self, inp: ReleaseLineInput) -> bool:
        with session_scope(self._engine) as session:
            freed = tenants.release_line(
                session, inp.line.channel, inp.line.agent, inp.cc_call_id, inp.line.token
            )
        if not freed:
            # An e9 line id is a phone number: never logged in full.
            log.warning("line %s/%s not held by call=%s (token %s)", inp.line.channel,
                        redact(inp.line.agent), inp.cc_call_id, inp.line.token)  # fmt: skip
        return freed

    @activity.defn
    def take_failover_line(self, inp: FailoverInput) -> LineLease | None:
        """Lease a line on a channel not yet tried for this call; None when none can take it."""
        routing = inp.routing
        request = RouteRequest(tenant=inp.tenant, cc_call_id=inp.cc_call_id, user=routing.user,
                               allow_fallback=True, priority=routing.priority,
                               exclude=frozenset(inp.tried))  # fmt: skip
        try:
            with session_scope(self._engine) as session:
                return lease_of(choose_line(session, request).line)
        except (NoChannel, LineBusy) as exc:
            log.warning("no failover for call=%s after %s: %s", inp.cc_call_id, inp.tried, exc)
            return None
