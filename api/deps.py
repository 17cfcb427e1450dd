"""Request dependencies as Annotated aliases, so routes stay short and tests can override."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from cachetools import TTLCache
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client

from api.errors import Problem, invalid_field, unavailable
from api.phones import sees_full_numbers
from channels.protocols import Channel
from channels.registry import Settings
from core.config import CoreSettings
from intake.delivery import Dispatcher
from storage import RecordingStore
from store import tenants
from store.db import in_session
from store.models import Tenant

T = TypeVar("T")


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    channels: dict[str, Channel]
    recordings: RecordingStore
    dispatcher: Dispatcher
    temporal: Client | None = None
    # Known API keys (by hash) for a few seconds: most requests then skip the key lookup,
    # and a removed key or tenant stops working within ``api_key_cache_s``.
    callers: TTLCache[str, Caller] = field(init=False)

    def __post_init__(self) -> None:
        self.callers = TTLCache(10_000, self.settings.api_key_cache_s)

    async def in_store(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in a committed session, off the event loop."""
        return await in_session(self.engine, fn)


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.cc
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_temporal(state: StateDep) -> Client:
    if state.temporal is None:
        raise unavailable("temporal_unavailable", "the workflow service is not reachable")
    return state.temporal


TemporalDep = Annotated[Client, Depends(get_temporal)]


@dataclass
class Caller:
    tenant: Tenant
    scope: str
    key_id: int | None = None  # the API key's id: who did it, in the logs of what it changes

    @property
    def masked(self) -> bool:
        """Whether customer numbers are shown to this key only masked."""
        return not sees_full_numbers(self.scope)

    def needs(self, scope: str, what: str) -> None:
        """403 unless this key's scope reaches ``scope`` (masked < full < admin): ``what``
        says what the caller tried, e.g. "lines are changed"."""
        if SCOPE_RANK.get(self.scope, -1) < SCOPE_RANK[scope]:
            keys = "an admin key" if scope == "admin" else "a full or admin key"
            raise Problem(403, "forbidden", f"{what} with {keys} (this key is {self.scope})")


# What each scope may do (README, the API's description): ``masked`` reads (numbers masked),
# places and hangs up calls; ``full`` reads numbers whole and sets up lines, bindings and
# extensions; ``admin`` also changes notifications and settings and deletes recordings.
SCOPE_RANK = {"masked": 0, "full": 1, "admin": 2}


# Declares the scheme in the OpenAPI document (the docs' Authorize button); the key itself is
# read by ``_bearer``, which words each way of getting it wrong.
BEARER = HTTPBearer(
    auto_error=False,
    description="a tenant API key (scope masked, full or admin), or the platform operator's "
    "credential (CC_OPERATOR_KEY) where an operation says so",
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "").strip()
    scheme, _, raw_key = header.partition(" ")
    if not header:
        detail = "missing API key: send the header `Authorization: Bearer <key>`"
    elif scheme.lower() != "bearer":
        detail = (
            "the Authorization header must be `Bearer <key>` (the word Bearer, a space, the key)"
        )
    elif not raw_key.strip():
        detail = "missing API key after `Bearer `"
    else:
        return raw_key.strip()
    raise Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def is_operator_key(settings: CoreSettings, raw_key: str) -> bool:
    """Whether ``raw_key`` is the platform operator's credential (CC_OPERATOR_KEY), compared
    in constant time; never true while no operator key is set (the API's routes and the
    codec endpoint, api/codec.py, ask it)."""
    expected = settings.operator_key
    if not expected:
        return False
    return hmac.compare_digest(tenants.hash_key(raw_key), tenants.hash_key(expected))


@dataclass(frozen=True)
class Operator:
    """The platform operator: acts on what every tenant shares, never on a tenant's data."""


async def current_operator(request: Request, state: StateDep, _: BearerDep) -> Operator:
    """The operator, or 401 (no credential) / 403 (a credential that is not the operator's,
    a tenant key whatever its scope)."""
    if not is_operator_key(state.settings, _bearer(request)):
        raise Problem(403, "forbidden", "this needs the platform operator's credential")
    return Operator()


OperatorDep = Annotated[Operator, Depends(current_operator)]


async def caller_or_operator(request: Request, state: StateDep, _: BearerDep) -> Caller | Operator:
    """Either a tenant key's caller or the operator, for views both may read."""
    if is_operator_key(state.settings, _bearer(request)):
        return Operator()
    return await current_caller(request, state, None)


CallerOrOperatorDep = Annotated[Caller | Operator, Depends(caller_or_operator)]


async def current_caller(request: Request, state: StateDep, _: BearerDep) -> Caller:
    key_hash = tenants.hash_key(_bearer(request))
    if (found := state.callers.get(key_hash)) is not None:
        return found

    def lookup(session: Session) -> Caller | None:
        key = tenants.key_by_hash(session, key_hash)
        tenant = tenants.get_tenant(session, key.tenant) if key else None
        return Caller(tenant, key.scope, key.id) if key and tenant else None

    found = await state.in_store(lookup)
    if found is None:
        raise Problem(
            401, "unauthorized", "invalid API key", headers={"WWW-Authenticate": "Bearer"}
        )
    state.callers[key_hash] = found
    return found


CallerDep = Annotated[Caller, Depends(current_caller)]


IDEMPOTENCY_KEY_MAX = 64


def idempotency_key(
    key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="1-64 characters, not blank"),
    ] = None,
) -> str | None:
    """The ``Idempotency-Key`` header, or None when absent. A blank or overlong key is a 422:
    stored, an empty key would make every later empty-key request return the first call."""
    if key is not None and (not key.strip() or len(key) > IDEMPOTENCY_KEY_MAX):
        raise invalid_field(
            "Idempotency-Key",
            f"1 to {IDEMPOTENCY_KEY_MAX} characters, not blank",
            "invalid Idempotency-Key header",
        )
    return key


IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]
