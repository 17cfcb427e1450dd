"""The notification sender: POSTs the outbox's due deliveries to each tenant's URL, signed per
Standard Webhooks, and writes every attempt's outcome down.

One long-lived activity (NotificationWorkflow keeps one running). It looks for due deliveries
every ``poll_s``, and at once when a send ends (that call's next event may be due now). It
sends up to ``concurrency`` at a time, at most ``per_subscription`` of one subscription (a
slow receiver never holds the others' slots), each through the egress policy
(``core/egress.py``) with one deadline for the whole POST and the answer read up to
``ANSWER_MAX_BYTES``. It heartbeats all along, while it waits for the lease, sends and
drains, and returns after ``run_s`` once its sends have ended.

One sender at a time: Temporal starts another sender once a heartbeat is late (a worker that
died, or one cut off from Temporal that still runs), so the sender sends only while it holds
the sender lease in the store (``store/notification_sending.py``). It starts a POST only when
that POST's deadline, plus ``CLOCK_SLACK_S`` for the clocks of two workers, ends before its
lease does; the next sender takes the lease once it lapsed or was given back, so the first
one's POSTs have all ended by then. What was in flight when a sender died is sent again (at
least once; the ``webhook-id`` lets receivers drop the copy).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine
from standardwebhooks import Webhook
from temporalio import activity

from contracts.notify import NotifyConfig
from core.aio import wait_set
from core.config import CoreSettings
from core.egress import EgressPolicy, EgressRefused, describe_failure, egress_client, read_capped
from core.secrets import unseal
from store import notification_sending
from store.db import now_ms, session_scope
from store.models import CallRecordRow
from store.notification_sending import Attempt, Backoff, InFlight, Outgoing

log = logging.getLogger("cc.activities.notify")

# The call view apps read (GET /v1/calls/{id}), masked or not: given by the worker, since
# nothing below the API imports it.
CallView = Callable[[CallRecordRow, bool], dict[str, Any]]
PRUNE_EVERY_S = 600.0
ANSWER_MAX_BYTES = 64 * 1024  # of a receiver's answer read (its status is what counts)
CLOCK_SLACK_S = 5.0  # how far two workers' clocks may disagree (see the module's docstring)
FAILED = (EgressRefused, TimeoutError, httpx.HTTPError, httpx.InvalidURL)


class SenderLease:
    """The store's sender lease, as this sender holds it: until when, on its own clock."""

    def __init__(self, engine: Engine, holder: str, lease_s: float) -> None:
        self._engine, self.holder, self._lease_s = engine, holder, lease_s
        self._until = 0.0  # time.monotonic()
        self.refused = 0  # how often another sender held it

    async def hold(self) -> bool:
        """Renew the lease when half of it is gone (take it when free); whether it is held."""
        started = time.monotonic()
        if self._until - started > self._lease_s / 2:
            return True
        try:
            held = await asyncio.to_thread(self._take)
        except Exception as exc:  # noqa: BLE001 - the store is down: send nothing more
            log.warning("notification sender lease not renewed: %s", exc.__class__.__name__)
            return self.covers(0)
        if held:
            self._until = started + self._lease_s
        else:
            self.refused += 1
        return held

    def covers(self, seconds: float) -> bool:
        """Whether something started now and lasting ``seconds`` ends while the lease holds."""
        return time.monotonic() + seconds + CLOCK_SLACK_S < self._until

    async def give_back(self) -> None:
        self._until = 0.0
        with contextlib.suppress(Exception):  # not given back: it lapses
            await asyncio.to_thread(self._give_back)

    def _take(self) -> bool:
        with session_scope(self._engine) as session:
            lease_ms = int(self._lease_s * 1000)
            return notification_sending.take_sender_lease(session, self.holder, now_ms(), lease_ms)

    def _give_back(self) -> None:
        with session_scope(self._engine) as session:
            notification_sending.give_back_sender_lease(session, self.holder)


class NotificationSender:
    def __init__(
        self,
        engine: Engine,
        settings: CoreSettings,
        view: CallView,
        config: NotifyConfig,
        transport: httpx.AsyncBaseTransport | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        """``transport`` replaces the network below the egress policy, ``egress`` the policy
        the settings give (tests)."""
        self._engine, self._settings, self._view = engine, settings, view
        self._config, self._transport = config, transport
        self._egress = egress or EgressPolicy.from_settings(settings)
        self._backoff = Backoff(config.retry_initial_s, config.retry_max_s, config.give_up_s)
        self.lease = SenderLease(engine, uuid.uuid4().hex, config.sender_lease_s)
        self._in_flight: dict[int, tuple[int, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()
        self._delivered = 0
        self._pruned_at = 0.0
        self.draining = False

    async def run(self, seconds: float, heartbeat: Callable[[], None] = lambda: None) -> int:
        """Send for ``seconds``, then let the sends in flight end; returns how many
        deliveries were delivered."""
        deadline = time.monotonic() + seconds
        client = egress_client(
            self._egress,
            require_https=True,
            timeout_s=self._config.timeout_s,
            transport=self._transport,
        )
        async with client as http, _heartbeating(heartbeat, min(self._config.poll_s, 1.0)):
            try:
                while time.monotonic() < deadline:
                    await self._round(http)
                self.draining = True
                await asyncio.gather(*self._tasks())  # each ends by its deadline
            finally:
                for task in self._tasks():  # cancelled: sent again later
                    task.cancel()
                await asyncio.gather(*self._tasks(), return_exceptions=True)
                await self.lease.give_back()  # every POST of this sender has ended
        return self._delivered

    async def _round(self, http: httpx.AsyncClient) -> None:
        self._wake.clear()
        if await self.lease.hold():
            await self._start_due(http)
        await self._prune()
        await wait_set(self._wake, self._config.poll_s)

    def _tasks(self) -> list[asyncio.Task[None]]:
        return [task for _, task in self._in_flight.values()]

    async def _start_due(self, http: httpx.AsyncClient) -> None:
        free = self._config.concurrency - len(self._in_flight)
        if free <= 0:
            return
        in_flight = InFlight({d: sub for d, (sub, _) in self._in_flight.items()})
        try:
            due = await asyncio.to_thread(self._due, free, in_flight)
        except Exception as exc:  # noqa: BLE001 - the store is down: look again next round
            log.warning("notification outbox unreadable: %s", exc.__class__.__name__)
            return
        if not self.lease.covers(self._config.timeout_s):
            return  # these POSTs might outlast the lease: another sender may send by then
        for out in due:
            assert out.delivery.id is not None
            task = asyncio.create_task(self._send(http, out))
            self._in_flight[out.delivery.id] = (out.delivery.subscription_id, task)

    def _due(self, limit: int, in_flight: InFlight) -> list[Outgoing]:
        with session_scope(self._engine) as session:
            return notification_sending.due_heads(
                session, now_ms(), limit, in_flight, self._config.per_subscription
            )

    async def _send(self, http: httpx.AsyncClient, out: Outgoing) -> None:
        delivery = out.delivery
        assert delivery.id is not None
        try:
            attempt = await self._post(http, out)
            await asyncio.to_thread(self._record, delivery.id, attempt)
            if attempt.error is None:
                self._delivered += 1
            else:
                log.info(
                    "notification not delivered tenant=%s call=%s type=%s delivery=%s "
                    "attempt=%d: %s",
                    delivery.tenant,
                    delivery.cc_call_id,
                    delivery.event_type,
                    delivery.id,
                    delivery.attempts + 1,
                    attempt.error,
                )
        except Exception as exc:  # noqa: BLE001 - not written down: sent again later
            log.warning(
                "notification outcome not recorded delivery=%s: %s",
                delivery.id,
                exc.__class__.__name__,
            )
        finally:
            self._in_flight.pop(delivery.id, None)
            self._wake.set()

    async def _post(self, http: httpx.AsyncClient, out: Outgoing) -> Attempt:
        try:
            body = self._payload(out)
            headers = self._signed(out, body)
        except Exception as exc:  # noqa: BLE001 - e.g. CC_SECRET_KEY missing on this worker
            return Attempt(None, f"cannot sign: {exc.__class__.__name__}: {exc}")
        try:
            async with asyncio.timeout(self._config.timeout_s):
                request = http.stream("POST", out.url, content=body.encode(), headers=headers)
                async with request as response:
                    await read_capped(response, ANSWER_MAX_BYTES)  # the rest is dropped
        except FAILED as exc:
            return Attempt(None, describe_failure(exc, self._config.timeout_s))
        if 200 <= response.status_code < 300:
            return Attempt(response.status_code, None)
        return Attempt(response.status_code, f"HTTP {response.status_code}")

    def _payload(self, out: Outgoing) -> str:
        delivery = out.delivery
        payload = {
            "type": delivery.event_type,
            "call": self._view(out.call_row(), out.masked),
            "at": delivery.at,
        }
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)

    def _signed(self, out: Outgoing, body: str) -> dict[str, str]:
        webhook_id, sent = out.delivery.webhook_id, datetime.now(UTC)
        signature = Webhook(unseal(out.sealed_secret, self._settings.secret_key)).sign(
            webhook_id, sent, body
        )
        return {
            "content-type": "application/json",
            "user-agent": "CC-Notifications/1",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(sent.timestamp())),
            "webhook-signature": signature,
        }

    def _record(self, delivery_id: int, attempt: Attempt) -> None:
        with session_scope(self._engine) as session:
            notification_sending.record_attempt(session, delivery_id, attempt, self._backoff)

    async def _prune(self) -> None:
        if time.monotonic() - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = time.monotonic()
        before = now_ms() - int(self._config.keep_s * 1000)

        def prune() -> int:
            with session_scope(self._engine) as session:
                return notification_sending.prune(session, before)

        with contextlib.suppress(Exception):
            if count := await asyncio.to_thread(prune):
                log.info("notification deliveries pruned: %d", count)


@contextlib.asynccontextmanager
async def _heartbeating(heartbeat: Callable[[], None], every_s: float) -> AsyncIterator[None]:
    """Heartbeat every ``every_s`` whatever the sender is doing (waiting for the lease or
    the store, sending, draining): a late heartbeat makes Temporal start another sender."""

    async def beat() -> None:
        while True:
            heartbeat()
            await asyncio.sleep(every_s)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class NotifyActivities:
    def __init__(self, engine: Engine, settings: CoreSettings, view: CallView) -> None:
        self._engine, self._settings, self._view = engine, settings, view

    @activity.defn
    async def send_notifications(self, config: NotifyConfig) -> int:
        sender = NotificationSender(self._engine, self._settings, self._view, config)
        return await sender.run(config.run_s, activity.heartbeat)
