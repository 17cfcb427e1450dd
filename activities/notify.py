"""The notification sender: POSTs the outbox's due deliveries to each tenant's URL, signed per
Standard Webhooks, and writes every attempt's outcome down.

One long-lived activity (NotificationWorkflow keeps exactly one running). It looks for due
deliveries every ``poll_s``, and at once when a send ends (that call's next event may be due
now); it sends up to ``concurrency`` at a time, heartbeats, and returns after ``run_s``. A
worker that dies stops heartbeating: Temporal runs the activity again on another, and what
was in flight is sent again (at least once; the ``webhook-id`` lets receivers drop the copy).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine
from standardwebhooks import Webhook
from temporalio import activity

from contracts.notify import NotifyConfig
from core.config import CoreSettings
from core.secrets import unseal
from store import notification_sending
from store.db import now_ms, session_scope
from store.models import CallRecordRow
from store.notification_sending import Attempt, Backoff, Outgoing

log = logging.getLogger("cc.activities.notify")

# The call view apps read (GET /v1/calls/{id}), masked or not: given by the worker, since
# nothing below the API imports it.
CallView = Callable[[CallRecordRow, bool], dict[str, Any]]
PRUNE_EVERY_S = 600.0


def describe_failure(exc: BaseException, timeout_s: float) -> str:
    """A clear ``last_error``: a TLS certificate problem, a refused connection, a timeout."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout: no answer within {timeout_s:g} s ({exc.__class__.__name__})"
    causes: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(causes) < 10:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate error: {cause.verify_message or cause}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause}"
    if isinstance(exc, httpx.ConnectError):
        # The deepest OS error says why (refused, unreachable, no such host).
        reason = next((c for c in reversed(causes) if isinstance(c, OSError) and c.errno), exc)
        if isinstance(reason, ConnectionRefusedError):
            return "connection failed: connection refused"
        return f"connection failed: {getattr(reason, 'strerror', None) or reason}"
    return f"{exc.__class__.__name__}: {exc}"


class NotificationSender:
    def __init__(
        self,
        engine: Engine,
        settings: CoreSettings,
        view: CallView,
        config: NotifyConfig,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._engine, self._settings, self._view = engine, settings, view
        self._config, self._transport = config, transport
        self._backoff = Backoff(config.retry_initial_s, config.retry_max_s, config.give_up_s)
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._delivered = 0
        self._pruned_at = 0.0

    async def run(self, seconds: float, heartbeat: Callable[[], None] = lambda: None) -> int:
        """Send for ``seconds``; returns how many deliveries were delivered."""
        deadline = time.monotonic() + seconds
        timeout = httpx.Timeout(self._config.timeout_s)
        async with httpx.AsyncClient(timeout=timeout, transport=self._transport) as http:
            try:
                while time.monotonic() < deadline:
                    heartbeat()
                    self._wake.clear()
                    await self._start_due(http)
                    await self._prune()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._config.poll_s)
                await asyncio.gather(*self._in_flight.values())
            finally:
                for task in self._in_flight.values():  # cancelled: sent again later
                    task.cancel()
                await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
        return self._delivered

    async def _start_due(self, http: httpx.AsyncClient) -> None:
        free = self._config.concurrency - len(self._in_flight)
        if free <= 0:
            return
        busy = set(self._in_flight)
        try:
            due = await asyncio.to_thread(self._due, free, busy)
        except Exception as exc:  # noqa: BLE001 - the store is down: look again next round
            log.warning("notification outbox unreadable: %s", exc.__class__.__name__)
            return
        for out in due:
            assert out.delivery.id is not None
            self._in_flight[out.delivery.id] = asyncio.create_task(self._send(http, out))

    def _due(self, limit: int, busy: set[int]) -> list[Outgoing]:
        with session_scope(self._engine) as session:
            return notification_sending.due_heads(session, now_ms(), limit, busy)

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
        delivery = out.delivery
        try:
            payload = {
                "type": delivery.event_type,
                "call": self._view(out.call_row(), out.masked),
                "at": delivery.at,
            }
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
            headers = self._signed(out, body)
        except Exception as exc:  # noqa: BLE001 - e.g. CC_SECRET_KEY missing on this worker
            return Attempt(None, f"cannot sign: {exc.__class__.__name__}: {exc}")
        try:
            response = await http.post(out.url, content=body.encode(), headers=headers)
        except httpx.HTTPError as exc:
            return Attempt(None, describe_failure(exc, self._config.timeout_s))
        if 200 <= response.status_code < 300:
            return Attempt(response.status_code, None)
        return Attempt(response.status_code, f"HTTP {response.status_code}")

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


class NotifyActivities:
    def __init__(self, engine: Engine, settings: CoreSettings, view: CallView) -> None:
        self._engine, self._settings, self._view = engine, settings, view

    @activity.defn
    async def send_notifications(self, config: NotifyConfig) -> int:
        sender = NotificationSender(self._engine, self._settings, self._view, config)
        return await sender.run(config.run_s, activity.heartbeat)
