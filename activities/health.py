"""Activities of ChannelHealthWorkflow: probe the vendors, write routing, reconcile leases."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from channels.errors import ChannelError, VendorRateLimited
from channels.protocols import Channel, WebhookChannel
from contracts.health import (
    Observation,
    ProbeInput,
    ReconcileLeasesInput,
    ReconcileLeasesResult,
    Verdict,
)
from contracts.ids import workflow_id
from core.logs import redact
from store import channel_state, lines, reconciler
from store.db import now_ms, session_scope

log = logging.getLogger("cc.activities.health")
PROBE_TIMEOUT_S = 10.0
# Leases the reconciler looks at at once (Temporal describes, vendor hang-ups, store writes).
RECONCILE_CONCURRENCY = 20


class HealthActivities:
    def __init__(
        self,
        channels: dict[str, Channel],
        engine: Engine,
        reconcile_concurrency: int = RECONCILE_CONCURRENCY,
    ) -> None:
        self._channels = channels
        self._engine = engine
        self._concurrency = reconcile_concurrency

    @activity.defn
    async def probe_channels(self, inp: ProbeInput) -> list[Observation]:
        """One round: each vendor's probe, and for webhook channels, whether events arrive."""
        names = [name for name in inp.channels if name in self._channels]
        probes = await asyncio.gather(*(self._probe(name) for name in names))
        silence_ms = int(inp.webhook_silence_s * 1000)

        def silent() -> dict[str, int]:
            with Session(self._engine) as session:
                now = now_ms()
                return {
                    name: channel_state.silent_setups(session, name, silence_ms, now)
                    for name in names
                    if isinstance(self._channels[name], WebhookChannel)
                }

        waiting = await asyncio.to_thread(silent)
        observations = []
        for name, failure in zip(names, probes, strict=True):
            if failure is None and waiting.get(name):
                silence = f"webhooks silent: {waiting[name]} calls waiting for events"
                observations.append(
                    Observation(channel=name, ok=False, reason=silence, silent=True)
                )
                continue
            observations.append(Observation(channel=name, ok=failure is None, reason=failure))
        return observations

    async def _probe(self, name: str) -> str | None:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                await self._channels[name].probe()
        except VendorRateLimited:
            return None  # a 429 is back-pressure: the vendor answered, it is not failing
        except (ChannelError, TimeoutError) as exc:
            return f"probe failed: {exc.__class__.__name__}: {exc}"[:200]
        except Exception as exc:  # noqa: BLE001 - an adapter bug must not lose the round
            log.exception("probe of %s raised", name)
            return f"probe failed: {exc.__class__.__name__}"
        return None

    @activity.defn
    def write_routing(self, verdicts: list[Verdict]) -> None:
        with session_scope(self._engine) as session:
            for verdict in verdicts:
                channel_state.write_verdict(
                    session, verdict.channel, verdict.healthy, verdict.reason
                )
        for verdict in verdicts:
            log.warning(
                "channel %s routing: %s (%s)",
                verdict.channel,
                "on" if verdict.healthy else "OFF",
                verdict.reason or "ok",
            )

    @activity.defn
    async def reconcile_leases(self, inp: ReconcileLeasesInput) -> ReconcileLeasesResult:
        """Free leases whose CallWorkflow is no longer running (terminated, lost, failed).

        A running workflow frees its own lease at close; this catches what it never will,
        e.g. a workflow an operator terminated from the Temporal UI (freed at the next round).
        A workflow that does not exist at all is only given up once the lease is older than
        ``min_age_s``: the API leases the line first and starts the workflow after.

        Leases are looked at concurrently (at most ``concurrency`` at a time), and one that
        cannot be looked at (Temporal or the store failing on it) is skipped until the next
        round: it never keeps the others held.
        """
        young_after = now_ms() - int(inp.min_age_s * 1000)

        def held() -> list[lines.HeldLease]:
            with Session(self._engine) as session:
                return lines.held_leases(session)

        leases = await asyncio.to_thread(held)
        gate = asyncio.Semaphore(self._concurrency)

        async def one(lease: lines.HeldLease) -> str | None:
            async with gate:
                try:
                    return await self._reconcile(lease, young_after)
                except Exception:  # noqa: BLE001 - one lease must not cost the others theirs
                    log.exception(
                        "lease line=%s/%s call=%s not reconciled this round",
                        lease.channel,
                        redact(lease.agent),
                        lease.cc_call_id,
                    )
                    return None

        outcomes = await asyncio.gather(*(one(lease) for lease in leases))
        closed = await self._close_orphaned_waiting(young_after, gate)
        return ReconcileLeasesResult(
            freed=[cc_call_id for cc_call_id in outcomes if cc_call_id], closed_waiting=closed
        )

    async def _close_orphaned_waiting(self, young_after: int, gate: asyncio.Semaphore) -> list[str]:
        """Scheduled calls (no line yet) whose workflow is gone (terminated from the UI, or
        never started: the API killed between recording and starting) are closed 255: a
        running workflow would place them, nothing else ever will."""

        def waiting() -> list[str]:
            with Session(self._engine) as session:
                return reconciler.waiting_calls(session, young_after)

        def close(cc_call_id: str) -> bool:
            with session_scope(self._engine) as session:
                return reconciler.close_orphaned_waiting(session, cc_call_id)

        async def one(cc_call_id: str) -> str | None:
            async with gate:
                try:
                    if await self._status(cc_call_id) is WorkflowExecutionStatus.RUNNING:
                        return None
                    if not await asyncio.to_thread(close, cc_call_id):
                        return None
                except Exception:  # noqa: BLE001 - one call must not cost the others
                    log.exception("scheduled call=%s not reconciled this round", cc_call_id)
                    return None
                log.warning("closed scheduled call=%s: its workflow is gone", cc_call_id)
                return cc_call_id

        ids = await asyncio.to_thread(waiting)
        return [c for c in await asyncio.gather(*(one(i) for i in ids)) if c]

    async def _reconcile(self, lease: lines.HeldLease, young_after: int) -> str | None:
        """Free one lease if its workflow is gone; returns its call id when freed."""
        status = await self._status(lease.cc_call_id)
        if status is WorkflowExecutionStatus.RUNNING:
            return None
        if status is None and lease.leased_at > young_after:
            return None  # not started yet, perhaps: give the API its time
        await self._hang_up(lease)
        if not await asyncio.to_thread(self._free, lease):
            return None
        log.warning(
            "freed orphaned lease line=%s/%s call=%s",
            lease.channel,
            redact(lease.agent),
            lease.cc_call_id,
        )
        return lease.cc_call_id

    async def _hang_up(self, lease: lines.HeldLease) -> None:
        """Nobody watches this call any more: make sure the vendor ends it before the line
        is given to the next call (best effort; an ended call's hang-up just fails)."""
        channel = self._channels.get(lease.channel)
        if channel is None or lease.vendor_call_id is None or not lease.live:
            return
        try:
            await channel.hangup(lease.vendor_call_id)
        except ChannelError as exc:
            log.info("orphaned call=%s not hung up at %s: %s", lease.cc_call_id, lease.channel, exc)

    async def _status(self, cc_call_id: str) -> WorkflowExecutionStatus | None:
        """The call's workflow status, or None when there is no such workflow."""
        handle = activity.client().get_workflow_handle(workflow_id(cc_call_id))
        try:
            return (await handle.describe()).status
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return None
            raise

    def _free(self, lease: lines.HeldLease) -> bool:
        with session_scope(self._engine) as session:
            return reconciler.free_orphaned_lease(session, lease)
