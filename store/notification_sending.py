"""The sending side of the notification outbox (``store/notifications.py``), for its one
sender (activities/notify.py, under NotificationWorkflow).

The sender POSTs the head of each (subscription, call) queue only: a call's later event waits
until its earlier one is delivered or given up. Heads are handed out fairly: every
subscription's first due head before any subscription's second, and never more than
``per_subscription`` of one subscription in flight. Each attempt's outcome is written back
(delivered, due again after its back-off, or failed once its retry period is over), and
deliveries done with are pruned.

One sender at a time: a sender POSTs only while it holds the sender lease
(``take_sender_lease``), and starts a POST only if that POST's deadline ends before the lease
does. Another sender takes the lease once it has lapsed (or was given back), so by then every
POST of the first has ended. This holds as long as the senders' clocks agree to within the
lease's slack (see ``activities/notify.py``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_
from sqlalchemy import update as sql_update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from store.db import now_ms
from store.models import (
    CallRecordRow,
    DeliveryStatus,
    NotificationDelivery,
    NotificationSubscription,
)
from store.notifications import _DELIVERY, _LEASE, SENDER_LEASE


@dataclass(frozen=True)
class Outgoing:
    """A delivery due now, with where and how to send it."""

    delivery: NotificationDelivery
    url: str
    sealed_secret: str
    masked: bool  # the delivery's snapshot, or the subscription's now: masked if either is

    def call_row(self) -> CallRecordRow:
        return CallRecordRow.model_validate(json.loads(self.delivery.call_json))


@dataclass(frozen=True)
class InFlight:
    """What the sender is sending now: delivery id → its subscription."""

    deliveries: Mapping[int, int]

    def per_subscription(self) -> Counter[int]:
        return Counter(self.deliveries.values())


def due_heads(
    session: Session, now: int, limit: int, in_flight: InFlight, per_subscription: int
) -> list[Outgoing]:
    """Up to ``limit`` due deliveries that head their (subscription, call) queue, not being
    sent, taken in turns (each subscription's oldest first, then each one's next) and never
    more than ``per_subscription`` of one subscription in flight. Orphans (subscription
    removed meanwhile) are given up."""
    load = in_flight.per_subscription()
    full = [sub for sub, count in load.items() if count >= per_subscription]
    rows = session.exec(_due_query(now, limit, set(in_flight.deliveries), full, per_subscription))
    due: list[Outgoing] = []
    orphans: list[int] = []
    for delivery, sub in rows.all():
        if sub is None:
            orphans.append(int(delivery.id))
        elif load[delivery.subscription_id] < per_subscription:
            load[delivery.subscription_id] += 1
            due.append(Outgoing(delivery, sub.url, sub.secret, delivery.masked or sub.masked))
    _give_up_orphans(session, orphans)
    return due


def _due_query(
    now: int, limit: int, busy: set[int], full: Sequence[int], per_subscription: int
) -> Select[NotificationDelivery, NotificationSubscription]:
    d, first = NotificationDelivery, aliased(NotificationDelivery)
    head = (
        select(func.min(first.id))
        .where(
            first.subscription_id == d.subscription_id,
            first.cc_call_id == d.cc_call_id,
            first.status == DeliveryStatus.PENDING.value,
        )
        .scalar_subquery()
    )
    # A subscription's due heads numbered 1, 2, ... oldest first: its turn in the round.
    turn = func.row_number().over(
        partition_by=col(d.subscription_id), order_by=(col(d.next_attempt_at), col(d.id))
    )
    due: list[Any] = [
        d.status == DeliveryStatus.PENDING.value,
        d.next_attempt_at <= now,
        d.id == head,
    ]
    if busy:
        due.append(col(d.id).not_in(busy))
    if full:
        due.append(col(d.subscription_id).not_in(full))
    ranked = select(col(d.id).label("id"), turn.label("turn")).where(*due).subquery()
    joined = col(NotificationSubscription.id) == col(d.subscription_id)
    return (
        select(d, NotificationSubscription)
        .join(ranked, ranked.c.id == col(d.id))
        .join(NotificationSubscription, joined, isouter=True)
        .where(ranked.c.turn <= per_subscription)
        .order_by(ranked.c.turn, col(d.next_attempt_at), col(d.id))
        .limit(limit)
    )


def _give_up_orphans(session: Session, orphans: list[int]) -> None:
    if orphans:
        session.connection().execute(
            sql_update(_DELIVERY)
            .where(_DELIVERY.c.id.in_(orphans))
            .values(status=DeliveryStatus.FAILED.value, last_error="the subscription was removed")
        )


# -- the sender lease ------------------------------------------------------------------------
def take_sender_lease(session: Session, holder: str, now: int, lease_ms: int) -> bool:
    """Take or renew the sender lease for ``lease_ms`` from ``now``: True when ``holder``
    has it (it held it already, or the last holder's lapsed or was given back)."""
    free = or_(_LEASE.c.holder == holder, _LEASE.c.expires_at <= now)
    taken = session.connection().execute(
        sql_update(_LEASE)
        .where(_LEASE.c.name == SENDER_LEASE, free)
        .values(holder=holder, expires_at=now + lease_ms)
    )
    return bool(taken.rowcount)


def give_back_sender_lease(session: Session, holder: str) -> None:
    """The sender has stopped (every POST of it ended): the next may take the lease now."""
    session.connection().execute(
        sql_update(_LEASE)
        .where(_LEASE.c.name == SENDER_LEASE, _LEASE.c.holder == holder)
        .values(expires_at=0)
    )


@dataclass(frozen=True)
class Attempt:
    status_code: int | None  # the receiver's answer; None when there was none
    error: str | None  # None: delivered (a 2xx)


@dataclass(frozen=True)
class Backoff:
    initial_s: float
    max_s: float
    give_up_s: float

    def delay_ms(self, attempts: int) -> int:
        return int(min(self.initial_s * 2 ** max(attempts - 1, 0), self.max_s) * 1000)


def record_attempt(session: Session, delivery_id: int, attempt: Attempt, backoff: Backoff) -> None:
    """Write one attempt's outcome: delivered, due again after its back-off, or failed once
    its retry period is over. A delivery no longer pending (removed) is left alone."""
    row = session.get(NotificationDelivery, delivery_id)
    if row is None or row.status != DeliveryStatus.PENDING.value:
        return
    now = now_ms()
    row.attempts += 1
    row.last_attempt_at, row.last_status = now, attempt.status_code
    row.last_error = None if attempt.error is None else attempt.error[:255]
    if attempt.error is None:
        row.status, row.delivered_at = DeliveryStatus.DELIVERED.value, now
    elif now - row.since >= backoff.give_up_s * 1000:
        row.status = DeliveryStatus.FAILED.value
    else:
        row.next_attempt_at = now + backoff.delay_ms(row.attempts)
    session.add(row)


def prune(session: Session, before: int) -> int:
    """Forget delivered and failed deliveries last tried before ``before``."""
    done = _DELIVERY.c.status.in_([DeliveryStatus.DELIVERED.value, DeliveryStatus.FAILED.value])
    last = func.coalesce(_DELIVERY.c.last_attempt_at, _DELIVERY.c.at)
    result = session.connection().execute(delete(_DELIVERY).where(done, last < before))
    return int(result.rowcount or 0)
