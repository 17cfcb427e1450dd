"""Notifications to apps: each tenant's subscription and the outbox of its deliveries.

A delivery is written in the same transaction as the record change it tells of (the
transactional outbox): a rolled-back save tells nothing, a committed one is told at least once.
It keeps a snapshot of the call's row as it was then, so a late ``call.state`` still says the
state it was sent for. A tenant without a subscription costs one indexed lookup per state
change, and a cached answer most of the time.

Here: subscriptions, enqueueing and the API's view of deliveries; the tables are in
``store/models.py``, the one sender's queries (due deliveries, attempts, pruning) in
``store/notification_sending.py``.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from cachetools import TTLCache
from sqlalchemy import delete
from sqlalchemy.engine import URL
from sqlmodel import Session, col, select

from contracts.call import SaveRecordInput
from core.types import CallState
from store.db import now_ms
from store.models import (
    CallRecordRow,
    DeliveryStatus,
    EventType,
    NotificationDelivery,
    NotificationSenderLease,
    NotificationSubscription,
)

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


def enqueue_retry_scheduled(session: Session, row: CallRecordRow) -> None:
    """``call.retry_scheduled`` for a series' next try, just recorded (``row``, scheduled): the
    app can tell its customer when CC will call again."""
    sub = _subscribed(session, row.tenant)
    if sub is not None and EventType.RETRY_SCHEDULED in sub.events:
        _enqueue(session, sub, row, [EventType.RETRY_SCHEDULED])


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
    # by_alias: the record's words as stored before (the vendor's id is ``call_id``), so a
    # sender of an earlier release reads a snapshot this one writes.
    snapshot = json.dumps(row.model_dump(mode="json", by_alias=True), separators=(",", ":"))
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
