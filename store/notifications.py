"""Notifications to apps: each tenant's subscription and the outbox of its deliveries.

A delivery is written in the same transaction as the record change it tells of (the
transactional outbox): a rolled-back save tells nothing, a committed one is told at least once.
It keeps a snapshot of the call's row as it was then, so a late ``call.state`` still says the
state it was sent for. A tenant without a subscription costs one indexed lookup per state
change, and a cached answer most of the time.

Here: the tables, subscriptions, enqueueing and the API's view of deliveries. The one sender's
queries (due deliveries, attempts, pruning) are in ``store/notification_sending.py``.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from cachetools import TTLCache
from sqlalchemy import BigInteger, Column, Index, Integer, Text, UniqueConstraint, delete
from sqlalchemy.engine import URL
from sqlmodel import Field, Session, SQLModel, col, select

from contracts.call import SaveRecordInput
from core.types import CallState
from store.db import now_ms
from store.models import BigPK, CallRecordRow, _ms


class EventType(StrEnum):
    STATE = "call.state"  # the record's state changed (init, conn, close)
    CLOSED = "call.closed"  # the call ended (with the close's call.state)
    RECORDING = "call.recording"  # CC's copy of the recording landed (audio_url set)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up after the retry period (CC_NOTIFY_GIVE_UP_S)


class NotificationSubscription(SQLModel, table=True):
    """A tenant's one subscription: where to POST which events, signed with its secret."""

    __tablename__ = "notification_subscription"
    __table_args__ = (UniqueConstraint("tenant", name="uq_notification_subscription_tenant"),)

    id: int | None = Field(default=None, sa_column=Column(BigPK, primary_key=True))
    tenant: str = Field(foreign_key="tenant.id", max_length=32)
    url: str = Field(sa_column=Column(Text(), nullable=False))
    events: str = Field(max_length=64)  # EventType values, comma-separated
    masked: bool = Field(default=False)
    # The Standard Webhooks secret (whsec_...), sealed with CC_SECRET_KEY; shown once.
    secret: str = Field(sa_column=Column(Text(), nullable=False))
    created: int = Field(sa_column=_ms(nullable=False))
    updated: int = Field(sa_column=_ms(nullable=False))

    @property
    def event_types(self) -> frozenset[EventType]:
        return frozenset(EventType(e) for e in self.events.split(",") if e)


class NotificationDelivery(SQLModel, table=True):
    """One event for one subscription, and how sending it went."""

    __tablename__ = "notification_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "dedupe_key", name="uq_notification_delivery_dedupe"),
        Index("ix_notification_delivery_due", "status", "next_attempt_at"),
        Index("ix_notification_delivery_queue", "subscription_id", "cc_call_id", "status", "id"),
        Index("ix_notification_delivery_tenant", "tenant", "id"),
        Index("ix_notification_delivery_tenant_status", "tenant", "status", "id"),
        Index("ix_notification_delivery_tenant_call", "tenant", "cc_call_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigPK, primary_key=True))
    # No foreign key: a subscription removed meanwhile must never fail a record's save.
    subscription_id: int = Field(sa_column=Column(BigInteger(), nullable=False))
    tenant: str = Field(max_length=32)
    cc_call_id: str = Field(max_length=64)
    event_type: str = Field(max_length=16)
    # <call>:<type>[:<state>]: a save run twice (a retried local activity) enqueues once.
    dedupe_key: str = Field(max_length=96)
    webhook_id: str = Field(max_length=40)  # the webhook-id header: the same on every attempt
    call_json: str = Field(sa_column=Column(Text(), nullable=False))  # the row, then
    masked: bool = Field(default=False)
    at: int = Field(sa_column=_ms(nullable=False))  # when it happened (the payload's "at")
    status: str = Field(default=DeliveryStatus.PENDING.value, max_length=16)
    attempts: int = Field(default=0, sa_column=Column(Integer(), nullable=False))
    last_status: int | None = Field(default=None)  # the receiver's HTTP status
    last_error: str | None = Field(default=None, max_length=255)
    last_attempt_at: int | None = Field(default=None, sa_column=_ms())
    next_attempt_at: int = Field(sa_column=_ms(nullable=False))
    since: int = Field(sa_column=_ms(nullable=False))  # the retry period starts (enqueue, retry)
    delivered_at: int | None = Field(default=None, sa_column=_ms())


class NotificationSenderLease(SQLModel, table=True):
    """Which sender may POST now (one row, ``SENDER_LEASE``): whoever holds it unexpired
    (``store/notification_sending.py``). Temporal alone cannot promise one sender: it starts
    another once a heartbeat is late, whether or not the first one has stopped."""

    __tablename__ = "notification_sender_lease"

    name: str = Field(primary_key=True, max_length=16)
    holder: str = Field(default="", max_length=64)
    expires_at: int = Field(default=0, sa_column=_ms(nullable=False))


SENDER_LEASE = "sender"
_DELIVERY = NotificationDelivery.__table__  # type: ignore[attr-defined]
_LEASE = NotificationSenderLease.__table__  # type: ignore[attr-defined]


# -- subscriptions ---------------------------------------------------------------------------
def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes, base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def get_subscription(session: Session, tenant: str) -> NotificationSubscription | None:
    query = select(NotificationSubscription).where(NotificationSubscription.tenant == tenant)
    return session.exec(query).first()


def put_subscription(
    session: Session,
    tenant: str,
    url: str,
    events: Iterable[EventType],
    masked: bool,
    sealed_secret: str,
) -> NotificationSubscription:
    """Create or replace the tenant's subscription (same id: queued deliveries go on, to the
    new URL, signed with the new secret)."""
    now = now_ms()
    sub = get_subscription(session, tenant) or NotificationSubscription(
        tenant=tenant, url=url, events="", secret="", created=now, updated=now
    )
    sub.sqlmodel_update(
        {
            "url": url,
            "events": ",".join(sorted(set(events))),
            "masked": masked,
            "secret": sealed_secret,
            "updated": now,
        }
    )
    session.add(sub)
    session.flush()
    forget_subscriptions()
    return sub


def delete_subscription(session: Session, tenant: str) -> bool:
    """Remove the subscription and its deliveries; False when there was none."""
    sub = get_subscription(session, tenant)
    if sub is None:
        return False
    session.connection().execute(delete(_DELIVERY).where(_DELIVERY.c.subscription_id == sub.id))
    session.delete(sub)
    forget_subscriptions()
    return True


@dataclass(frozen=True)
class _Subscribed:
    id: int
    events: frozenset[EventType]
    masked: bool


# Per process, a tenant's subscription (or none) for a second: the record's save asks for it
# at every state change. A subscription made in another process is seen within SUBSCRIPTION_
# CACHE_S (this process's own changes at once).
SUBSCRIPTION_CACHE_S = 1.0
_cache: TTLCache[tuple[URL, str], _Subscribed | None] = TTLCache(10_000, SUBSCRIPTION_CACHE_S)
_cache_lock = threading.Lock()


def forget_subscriptions() -> None:
    """Drop this process's cached subscriptions (after a change is committed)."""
    with _cache_lock:
        _cache.clear()


def _subscribed(session: Session, tenant: str) -> _Subscribed | None:
    key = (session.get_bind().engine.url, tenant)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    sub = get_subscription(session, tenant)
    found = (
        None if sub is None or sub.id is None else _Subscribed(sub.id, sub.event_types, sub.masked)
    )
    with _cache_lock:
        _cache[key] = found
    return found


# -- enqueueing (in the record write's transaction) ------------------------------------------
def enqueue_created(session: Session, row: CallRecordRow) -> None:
    """A new call's ``call.state`` (init, or whatever state it was created in), in the
    transaction that inserts ``row``."""
    sub = _subscribed(session, row.tenant)
    if sub is None:
        return
    wanted = [EventType.STATE]
    if row.state == CallState.CLOSE.value:  # refused at once (an inbound call to a busy agent)
        wanted.append(EventType.CLOSED)
    types = [t for t in wanted if t in sub.events]
    if types:
        _enqueue(session, sub, row, types)


def enqueue_saved(session: Session, inp: SaveRecordInput) -> None:
    """What a CallWorkflow save tells the app, in the save's transaction (after the row's
    write). Nothing to look up unless the state moved or the recording landed."""
    if not (inp.state_changed or inp.recording_copied):
        return
    record = inp.record
    sub = _subscribed(session, record.tenant)
    if sub is None:
        return
    wanted = []
    if inp.state_changed:
        wanted.append(EventType.STATE)
        if record.state is CallState.CLOSE:
            wanted.append(EventType.CLOSED)
    if inp.recording_copied:
        wanted.append(EventType.RECORDING)
    types = [t for t in wanted if t in sub.events]
    if types and (row := _row(session, record.cc_call_id)) is not None:
        _enqueue(session, sub, row, types)


def enqueue_recording(session: Session, cc_call_id: str) -> None:
    """``call.recording`` for a copy that landed after the call's workflow ended (late)."""
    row = _row(session, cc_call_id)
    if row is None or row.audio_url is None:
        return
    sub = _subscribed(session, row.tenant)
    if sub is not None and EventType.RECORDING in sub.events:
        _enqueue(session, sub, row, [EventType.RECORDING])


def forget_call(session: Session, cc_call_id: str) -> None:
    """Drop a call's deliveries not sent yet: the call was undone (its workflow surely never
    started, placement.undo_call), so there is nothing to tell."""
    session.connection().execute(
        delete(_DELIVERY).where(
            _DELIVERY.c.cc_call_id == cc_call_id, _DELIVERY.c.status == DeliveryStatus.PENDING.value
        )
    )


def _row(session: Session, cc_call_id: str) -> CallRecordRow | None:
    session.flush()  # the save's own write, if it went through the unit of work
    # Reloaded even if this session holds the row already: save_record's UPDATE bypasses the
    # unit of work, so a row loaded before it (the reconciler's) would still say its old state.
    query = select(CallRecordRow).where(CallRecordRow.cc_call_id == cc_call_id)
    return session.exec(query.execution_options(populate_existing=True)).first()


def _dedupe_key(row: CallRecordRow, event: EventType) -> str:
    return (
        f"{row.cc_call_id}:{event}:{row.state}"
        if event is EventType.STATE
        else (f"{row.cc_call_id}:{event}")
    )


def _enqueue(
    session: Session, sub: _Subscribed, row: CallRecordRow, types: list[EventType]
) -> None:
    keys = {t: _dedupe_key(row, t) for t in types}
    known = set(
        session.exec(
            select(NotificationDelivery.dedupe_key).where(
                NotificationDelivery.subscription_id == sub.id,
                col(NotificationDelivery.dedupe_key).in_(list(keys.values())),
            )
        ).all()
    )
    snapshot = json.dumps(row.model_dump(mode="json"), separators=(",", ":"))
    now = now_ms()
    for event, key in keys.items():
        if key in known:
            continue
        session.add(
            NotificationDelivery(
                subscription_id=sub.id,
                tenant=row.tenant,
                cc_call_id=row.cc_call_id,
                event_type=event.value,
                dedupe_key=key,
                webhook_id=f"msg_{secrets.token_hex(16)}",
                call_json=snapshot,
                masked=sub.masked,
                at=now,
                next_attempt_at=now,
                since=now,
            )
        )


# -- the API's view of deliveries ------------------------------------------------------------
def list_deliveries(
    session: Session,
    tenant: str,
    status: DeliveryStatus | None,
    cc_call_id: str | None,
    after_id: int,
    limit: int,
) -> list[NotificationDelivery]:
    d = NotificationDelivery
    query = select(d).where(d.tenant == tenant, col(d.id) > after_id)
    if status is not None:
        query = query.where(d.status == status.value)
    if cc_call_id is not None:
        query = query.where(d.cc_call_id == cc_call_id)
    return list(session.exec(query.order_by(col(d.id)).limit(limit)).all())


def retry_delivery(session: Session, tenant: str, delivery_id: int) -> NotificationDelivery | None:
    """Put a delivery back to be sent now, with a new retry period; None if not the tenant's."""
    row = session.get(NotificationDelivery, delivery_id)
    if row is None or row.tenant != tenant:
        return None
    now = now_ms()
    row.sqlmodel_update(
        {
            "status": DeliveryStatus.PENDING.value,
            "next_attempt_at": now,
            "since": now,
            "delivered_at": None,
        }
    )
    session.add(row)
    return row
