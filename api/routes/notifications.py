"""/v1/notifications: the tenant's subscription to its calls' events (``call.state``,
``call.closed``, ``call.recording``), and the deliveries CC made of them.

Changing the subscription or sending a delivery again needs an ``admin`` key; any key of
the tenant may read them, but only an admin key sees the URL's credentials and query. The
signing secret is shown once, in the PUT's answer. The URL must pass the egress policy
(``core/egress.py``) when it is set, and again at each send (its DNS may change meanwhile).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import Session

from api.deps import Caller, CallerDep, StateDep
from api.errors import Problem, invalid_field
from api.openapi import errors
from api.paging import Cursor, Limit, decode_cursor, encode_cursor
from core.egress import EgressPolicy, EgressRefused
from core.secrets import SecretKeyMissing, seal
from store import notifications
from store.models import DeliveryStatus, EventType, NotificationDelivery, NotificationSubscription

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])
# How long a subscription's host name may take to resolve: unresolved, it is judged at send.
RESOLVE_S = 3.0


def receiver_policy(state: StateDep) -> EgressPolicy:
    """The egress policy receivers pass (a dependency: tests give their own resolver)."""
    return EgressPolicy.from_settings(state.settings)


ReceiverPolicy = Annotated[EgressPolicy, Depends(receiver_policy)]


class SubscriptionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, description="where CC POSTs each event (http or https)")
    events: list[EventType] = Field(min_length=1)
    masked: bool = Field(default=False, description="customer numbers masked in every view")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError as exc:
            raise ValueError("not a URL") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if any(ch.isspace() or not ch.isprintable() for ch in url):
            raise ValueError("must not contain spaces or control characters")
        return url


class SubscriptionPublic(BaseModel):
    url: str
    events: list[EventType]
    masked: bool
    created: int
    updated: int

    @classmethod
    def from_row(cls, sub: NotificationSubscription, whole_url: bool = True) -> SubscriptionPublic:
        return cls(
            url=sub.url if whole_url else _without_secrets(sub.url),
            events=sorted(sub.event_types),
            masked=sub.masked,
            created=sub.created,
            updated=sub.updated,
        )


def _without_secrets(url: str) -> str:
    """The URL without what may carry a credential: user info, query and fragment."""
    try:
        return str(httpx.URL(url).copy_with(userinfo=b"", query=None, fragment=None))
    except (httpx.InvalidURL, TypeError):
        return ""


class SubscriptionCreated(SubscriptionPublic):
    secret: str = Field(description="the Standard Webhooks signing secret: shown only now")


class DeliveryPublic(BaseModel):
    id: int
    type: EventType
    call_id: str
    status: DeliveryStatus
    webhook_id: str  # the webhook-id header of every attempt
    at: int  # when the event happened
    attempts: int
    last_status: int | None  # the receiver's HTTP status at the last attempt
    last_error: str | None
    last_attempt_at: int | None
    next_attempt_at: int | None  # while pending
    delivered_at: int | None

    @classmethod
    def from_row(cls, row: NotificationDelivery) -> DeliveryPublic:
        assert row.id is not None
        pending = row.status == DeliveryStatus.PENDING.value
        return cls(
            id=row.id,
            type=EventType(row.event_type),
            call_id=row.cc_call_id,
            status=DeliveryStatus(row.status),
            webhook_id=row.webhook_id,
            at=row.at,
            attempts=row.attempts,
            last_status=row.last_status,
            last_error=row.last_error,
            last_attempt_at=row.last_attempt_at,
            next_attempt_at=row.next_attempt_at if pending else None,
            delivered_at=row.delivered_at,
        )


class DeliveryPage(BaseModel):
    items: list[DeliveryPublic]
    next_cursor: str | None


def _admin(caller: Caller) -> None:
    caller.needs("admin", "notifications are changed")


def _no_subscription() -> Problem:
    return Problem(404, "not_found", "no notification subscription")


async def _admit_receiver(url: str, policy: EgressPolicy) -> None:
    """422 for a receiver the egress policy refuses (a host that does not resolve yet is
    judged again at each send)."""
    try:
        await policy.admit(url, require_https=True, must_resolve=False, resolve_s=RESOLVE_S)
    except EgressRefused as exc:
        raise invalid_field("url", str(exc), f"invalid fields: url ({exc})") from exc


@router.put(
    "",
    response_model=SubscriptionCreated,
    responses=errors(
        403,
        s403="`forbidden`: an `admin` key only",
        s422="`validation_error`, or a receiver URL the egress policy refuses",
    ),
)
async def put_subscription(
    body: SubscriptionBody, state: StateDep, caller: CallerDep, policy: ReceiverPolicy
) -> SubscriptionCreated:
    """Set where CC POSTs the tenant's call events (`call.state`, `call.closed`, `call.recording`),
    signed per Standard Webhooks; answers the signing secret once. Scope: `admin`."""
    _admin(caller)
    await _admit_receiver(body.url, policy)
    secret = notifications.new_secret()
    try:
        sealed = seal(secret, state.settings.secret_key)
    except SecretKeyMissing as exc:
        # Not a passing outage (no 503): the server is not set up to keep secrets.
        raise Problem(
            409, "secret_key_missing", "set CC_SECRET_KEY on the server to sign notifications"
        ) from exc
    sub = await state.in_store(
        lambda s: notifications.put_subscription(
            s, caller.tenant.id, body.url, body.events, body.masked, sealed
        )
    )
    notifications.forget_subscriptions()  # committed: this process's saves see it at once
    return SubscriptionCreated(**SubscriptionPublic.from_row(sub).model_dump(), secret=secret)


@router.get("", response_model=SubscriptionPublic)
async def get_subscription(state: StateDep, caller: CallerDep) -> SubscriptionPublic:
    """The tenant's subscription (an `admin` key sees the URL whole; others without user info and
    query)."""
    sub = await state.in_store(lambda s: notifications.get_subscription(s, caller.tenant.id))
    if sub is None:
        raise _no_subscription()
    return SubscriptionPublic.from_row(sub, whole_url=caller.scope == "admin")


@router.delete("", status_code=204, responses=errors(403, s403="`forbidden`: an `admin` key only"))
async def delete_subscription(state: StateDep, caller: CallerDep) -> Response:
    """Stop notifications. Scope: `admin`."""
    _admin(caller)
    if not await state.in_store(lambda s: notifications.delete_subscription(s, caller.tenant.id)):
        raise _no_subscription()
    notifications.forget_subscriptions()
    return Response(status_code=204)


@router.get("/deliveries", response_model=DeliveryPage)
async def list_deliveries(
    state: StateDep,
    caller: CallerDep,
    status: DeliveryStatus | None = None,
    call_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> DeliveryPage:
    """Deliveries and how each went (`status=failed` for the given-up ones), newest first."""
    after = decode_cursor(cursor)
    rows = await state.in_store(
        lambda s: notifications.list_deliveries(s, caller.tenant.id, status, call_id, after, limit)
    )
    next_cursor = encode_cursor(rows[-1].id) if len(rows) == limit and rows[-1].id else None
    return DeliveryPage(items=[DeliveryPublic.from_row(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=DeliveryPublic,
    responses=errors(403, s403="`forbidden`: an `admin` key only"),
)
async def retry_delivery(
    delivery_id: Annotated[int, Path(ge=1, lt=2**63)], state: StateDep, caller: CallerDep
) -> DeliveryPublic:
    """Send one delivery again now. Scope: `admin`."""
    _admin(caller)

    def retry(session: Session) -> DeliveryPublic | None:
        row = notifications.retry_delivery(session, caller.tenant.id, delivery_id)
        return None if row is None else DeliveryPublic.from_row(row)

    found = await state.in_store(retry)
    if found is None:
        raise Problem(404, "not_found", "no such delivery")
    return found
