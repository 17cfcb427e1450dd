"""Issue 20 row 5: one tenant's slow receiver, tried as an attacker would. Each test failed
before the change: every send slot went to the oldest due deliveries whatever their
subscription (a receiver taking 30 s held back every other tenant), the sender stopped
heartbeating while it drained, and a second sender sent beside the first.

The slow receiver holds each request until the test lets it go (an event, the "30 s"): no
assertion depends on how long anything takes."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from activities.notify import NotificationSender
from contracts.notify import NotifyConfig
from core.egress import EgressPolicy
from store.db import now_ms
from store.models import EventType, NotificationSenderLease
from store.notification_sending import take_sender_lease
from store.notifications import SENDER_LEASE
from tests.notify.support import (
    deliveries,
    new_call,
    resolver,
    settings,
    sqlite_store,
    subscribe,
    view,
)
from tests.support import wait_for

SLOW, QUICK = "slow.example", "quick.example"
DNS = EgressPolicy(resolver=resolver({SLOW: "93.184.216.34", QUICK: "93.184.216.35"}))
# A POST may take a minute: the slow receiver's 30 s are within its deadline.
CONFIG = NotifyConfig(
    poll_s=0.05,
    timeout_s=60,
    retry_initial_s=0.1,
    retry_max_s=0.3,
    give_up_s=120,
    concurrency=3,
    per_subscription=2,
    run_s=120,
)


@dataclass
class Receivers:
    """Both tenants' receivers: the slow one answers when ``release`` is set, the quick one
    at once. ``log`` is every request's start and end, by sender, in order."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: Counter[str] = field(default_factory=Counter)
    most: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, str]] = field(default_factory=list)

    def network(self, sender: str) -> httpx.AsyncBaseTransport:
        async def answer(request: httpx.Request) -> httpx.Response:
            host = request.headers["host"]
            self.in_flight[host] += 1
            self.most[host] = max(self.most[host], self.in_flight[host])
            self.log.append((sender, "start"))
            try:
                if host == SLOW:
                    await asyncio.wait_for(self.release.wait(), 30)
                return httpx.Response(204)
            finally:
                self.in_flight[host] -= 1
                self.log.append((sender, "end"))

        return httpx.MockTransport(answer)

    def quick_arrived(self) -> bool:
        return self.most[QUICK] > 0


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = sqlite_store(tmp_path)
    subscribe(engine, f"https://{SLOW}/hooks", [EventType.STATE], tenant="slow")
    subscribe(engine, f"https://{QUICK}/hooks", [EventType.STATE], tenant="quick")
    return engine


@asynccontextmanager
async def sending(sender: NotificationSender, seconds: float = 120) -> AsyncIterator[None]:
    task = asyncio.create_task(sender.run(seconds))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def sender(
    engine: Engine, receivers: Receivers, name: str = "A", **config: object
) -> NotificationSender:
    network = receivers.network(name)
    return NotificationSender(
        engine, settings(), view, CONFIG.model_copy(update=config), network, DNS
    )


def calls(engine: Engine, tenant: str, count: int) -> None:
    for i in range(count):
        new_call(engine, f"{tenant}-{i}", tenant=tenant)


async def until(probe: Callable[[], object], what: str) -> None:
    async def check() -> bool:
        return bool(probe())

    await wait_for(check, 30, what)


async def test_a_slow_receiver_does_not_hold_back_another_tenant(engine: Engine) -> None:
    calls(engine, "slow", 5)  # older: the oldest-first sender gave them every slot
    calls(engine, "quick", 1)
    receivers = Receivers()
    async with sending(sender(engine, receivers)):
        await until(receivers.quick_arrived, "the other tenant's notification sent")
        assert receivers.in_flight[SLOW] == 2  # while the slow ones are still in flight
        receivers.release.set()
        await until(lambda: all(d.status == "delivered" for d in deliveries(engine)), "all sent")
    assert receivers.most[SLOW] == 2


async def test_one_subscription_never_has_more_than_its_share_in_flight(engine: Engine) -> None:
    calls(engine, "slow", 6)
    receivers = Receivers()
    async with sending(sender(engine, receivers, concurrency=8)):
        await until(lambda: receivers.in_flight[SLOW] == 2, "the slow receiver's two requests")
        calls(engine, "quick", 1)  # sent by a later look at the outbox, with 6 slots free
        await until(receivers.quick_arrived, "the other tenant's notification sent")
        assert receivers.most[SLOW] == 2
        receivers.release.set()
        await until(lambda: all(d.status == "delivered" for d in deliveries(engine)), "all sent")
    assert receivers.most[SLOW] == 2


async def test_the_sender_heartbeats_while_it_drains(engine: Engine) -> None:
    calls(engine, "slow", 2)
    receivers = Receivers()
    draining = sender(engine, receivers)
    beats: list[bool] = []
    run = asyncio.create_task(draining.run(2.0, lambda: beats.append(draining.draining)))
    try:
        await until(lambda: draining.draining and receivers.in_flight[SLOW] == 2, "a drain")
        await until(lambda: beats.count(True) >= 3, "heartbeats while draining")
        receivers.release.set()
        assert await run == 2
    finally:
        run.cancel()
    assert _lease(engine).expires_at == 0  # given back: the next sender need not wait


async def test_a_second_sender_does_not_send_beside_the_first(engine: Engine) -> None:
    calls(engine, "slow", 4)
    receivers = Receivers()
    first, second = sender(engine, receivers, "A"), sender(engine, receivers, "B")
    a = asyncio.create_task(first.run(120))
    try:
        await until(lambda: receivers.in_flight[SLOW] == 2, "the first sender sending")
        async with sending(second):  # as Temporal starts one when a heartbeat is late
            await until(lambda: second.lease.refused >= 3, "the second sender kept waiting")
            calls(engine, "quick", 1)
            await until(receivers.quick_arrived, "the quick notification sent")
            assert ("B", "start") not in receivers.log  # the first one sent it
            a.cancel()  # the first sender is stopped mid-drain (a cancel, a worker shutdown)
            await asyncio.gather(a, return_exceptions=True)
            receivers.release.set()
            await until(lambda: ("B", "start") in receivers.log, "the second sender sending")
            await until(lambda: all(d.status == "delivered" for d in deliveries(engine)), "sent")
    finally:
        a.cancel()
    last_a_end = max(i for i, event in enumerate(receivers.log) if event == ("A", "end"))
    assert receivers.log.index(("B", "start")) > last_a_end  # never both at once


async def test_a_dead_senders_lease_keeps_the_next_one_waiting_until_it_lapses(
    engine: Engine,
) -> None:
    with Session(engine) as session:  # a sender whose worker died mid-send holds the lease
        assert take_sender_lease(session, "dead-worker", now_ms(), 3_600_000)
        session.commit()
    calls(engine, "quick", 1)
    receivers = Receivers()
    second = sender(engine, receivers)
    async with sending(second):
        await until(lambda: second.lease.refused >= 3, "the next sender kept waiting")
        assert receivers.log == []
        with Session(engine) as session:  # the dead sender's lease lapses
            lease = session.get(NotificationSenderLease, SENDER_LEASE)
            assert lease is not None
            lease.expires_at = now_ms() - 1
            session.add(lease)
            session.commit()
        await until(receivers.quick_arrived, "sent once the lease lapsed")


def _lease(engine: Engine) -> NotificationSenderLease:
    with Session(engine) as session:
        lease = session.get(NotificationSenderLease, SENDER_LEASE)
        assert lease is not None
        return lease
