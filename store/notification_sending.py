"""The sending side of the notification outbox (``store/notifications.py``), for its one
sender (activities/notify.py, under NotificationWorkflow).

The sender POSTs the head of each (subscription, call) queue only: a call's later event waits
until its earlier one is delivered or given up. Each attempt's outcome is written back
(delivered, due again after its back-off, or failed once its retry period is over), and
deliveries done with are pruned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import delete, func
from sqlalchemy import update as sql_update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from store.db import now_ms
from store.models import CallRecordRow
from store.notifications import (
    _DELIVERY,
    DeliveryStatus,
    NotificationDelivery,
    NotificationSubscription,
)


@dataclass(frozen=True)
class Outgoing:
    """A delivery due now, with where and how to send it."""

    delivery: NotificationDelivery
    url: str
    sealed_secret: str
    masked: bool  # the delivery's snapshot, or the subscription's now: masked if either is

    def call_row(self) -> CallRecordRow:
        return CallRecordRow.model_validate(json.loads(self.delivery.call_json))


def due_heads(session: Session, now: int, limit: int, busy: set[int]) -> list[Outgoing]:
    """The due deliveries that head their (subscription, call) queue, oldest due first; not
    those in ``busy`` (being sent). Orphans (subscription removed meanwhile) are given up."""
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
    joined = col(NotificationSubscription.id) == col(d.subscription_id)
    query = (
        select(d, NotificationSubscription)
        .join(NotificationSubscription, joined, isouter=True)
        .where(d.status == DeliveryStatus.PENDING.value, d.next_attempt_at <= now, d.id == head)
        .order_by(col(d.next_attempt_at), col(d.id))
        .limit(limit)
    )
    if busy:
        query = query.where(col(d.id).not_in(busy))
    due: list[Outgoing] = []
    orphans: list[int] = []
    for delivery, sub in session.exec(query).all():
        if sub is None:
            orphans.append(int(delivery.id))
        else:
            due.append(Outgoing(delivery, sub.url, sub.secret, delivery.masked or sub.masked))
    if orphans:
        session.connection().execute(
            sql_update(_DELIVERY)
            .where(_DELIVERY.c.id.in_(orphans))
            .values(status=DeliveryStatus.FAILED.value, last_error="the subscription was removed")
        )
    return due


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
