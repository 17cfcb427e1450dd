"""The retention sweep (issue 21): deletes what is personal beyond a call's record once its
retention has run out, in small batches (``store/retention.py``).

One activity per part; each batch is one short transaction run in a thread, followed by a
heartbeat, so a worker killed mid-sweep loses at most one batch's work (the retry starts over,
and every delete is idempotent). Recording objects are deleted from storage before the record
forgets them: a storage failure fails the batch, to be tried again, and never leaves an object
no row points to.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity

from contracts.retention import PurgeOutcome, PurgePart
from core.config import CoreSettings
from storage import RecordingStore
from store import retention
from store.db import in_session, now_ms

log = logging.getLogger("cc.activities.retention")

T = TypeVar("T")


class RetentionActivities:
    def __init__(
        self,
        engine: Engine,
        store: RecordingStore,
        settings: CoreSettings,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._engine, self._store, self._settings, self._clock = engine, store, settings, clock

    @activity.defn
    async def purge_expired(self, part: PurgePart) -> PurgeOutcome:
        sweep = {
            PurgePart.CALLS: self._purge_calls,
            PurgePart.ORPHAN_EVENTS: self._purge_orphan_events,
            PurgePart.SEAT_SESSIONS: self._purge_sessions,
        }[part]
        outcome = PurgeOutcome(part=part)
        await sweep(outcome)
        log.info(
            "retention %s: %d calls, %d events, %d recordings, %d sessions in %d batches",
            part.value,
            outcome.calls,
            outcome.events,
            outcome.recordings,
            outcome.sessions,
            outcome.batches,
        )
        return outcome

    async def _in_store(self, fn: Callable[[Session], T]) -> T:
        return await in_session(self._engine, fn)

    async def _beat(self, outcome: PurgeOutcome) -> None:
        """After each batch: tell Temporal how far it got, and leave the database to others
        for a moment."""
        outcome.batches += 1
        activity.heartbeat(outcome.model_dump(mode="json"))
        await asyncio.sleep(self._settings.retention_pause_s)

    async def _purge_calls(self, outcome: PurgeOutcome) -> None:
        now, limit = self._clock(), self._settings.retention_batch
        tenants = await self._in_store(
            lambda s: retention.tenant_cutoffs(s, now, self._settings.retention_days)
        )
        for tenant in tenants:
            reason = f"deleted after {tenant.days} days (retention)"
            while True:
                expired = await self._in_store(
                    functools.partial(
                        retention.expired_calls,
                        tenant=tenant.tenant,
                        before=tenant.cutoff,
                        limit=limit,
                    )
                )
                for call in expired:
                    key = self._store.key_of(call.audio_url) if call.audio_url else None
                    if key is not None:
                        await self._store.delete(key)
                        outcome.recordings += 1
                ids = [call.cc_call_id for call in expired]
                outcome.events += await self._in_store(
                    functools.partial(
                        retention.purge_calls, cc_call_ids=ids, now=now, reason=reason
                    )
                )
                outcome.calls += len(ids)
                await self._beat(outcome)
                if len(expired) < limit:
                    break

    async def _purge_orphan_events(self, outcome: PurgeOutcome) -> None:
        before = retention.cutoff(self._clock(), self._settings.retention_days)
        limit = self._settings.retention_batch * 10  # rows, not calls: about as many per batch

        def batch(session: Session) -> int:
            return retention.delete_events(session, retention.orphan_events(session, before, limit))

        while True:
            deleted = await self._in_store(batch)
            outcome.events += deleted
            await self._beat(outcome)
            if deleted < limit:
                break

    async def _purge_sessions(self, outcome: PurgeOutcome) -> None:
        before = retention.cutoff(self._clock(), self._settings.retention_days)
        limit = self._settings.retention_batch * 10

        def batch(session: Session) -> tuple[int, int]:
            keys = retention.expired_sessions(session, before, limit)
            return len(keys), retention.delete_sessions(session, keys, before)

        while True:
            found, deleted = await self._in_store(batch)
            outcome.sessions += deleted
            await self._beat(outcome)
            if found < limit:
                break
