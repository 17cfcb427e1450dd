"""Tenants and their API keys (stored hashed: the raw key is shown once, at creation)."""

from __future__ import annotations

import hashlib
import secrets

from sqlmodel import Session, select

from callflow.policy import CallingWindow, RetryPolicy
from store.db import now_ms
from store.models import ApiKey, Tenant


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def new_api_key() -> str:
    return "cc_" + secrets.token_urlsafe(24)


def get_tenant(session: Session, tenant: str) -> Tenant | None:
    return session.get(Tenant, tenant)


def ensure_tenant(session: Session, tenant: str, name: str | None = None) -> Tenant:
    row = get_tenant(session, tenant)
    if row is None:
        row = Tenant(id=tenant, name=name or tenant, created=now_ms())
        session.add(row)
        session.flush()
    return row


def add_api_key(session: Session, tenant: str, raw_key: str, scope: str = "full") -> ApiKey:
    key = key_for(session, raw_key)
    if key is None:
        key = ApiKey(tenant=tenant, key_hash=hash_key(raw_key), scope=scope, created=now_ms())
        session.add(key)
        session.flush()
    return key


def key_for(session: Session, raw_key: str) -> ApiKey | None:
    return key_by_hash(session, hash_key(raw_key))


def key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.exec(select(ApiKey).where(ApiKey.key_hash == key_hash)).first()


def default_retry(tenant: Tenant) -> RetryPolicy | None:
    """The tenant's default retry policy (``PUT /v1/settings``), if it set one."""
    return RetryPolicy.model_validate_json(tenant.default_retry) if tenant.default_retry else None


def default_window(tenant: Tenant) -> CallingWindow | None:
    """The tenant's default calling hours (``PUT /v1/settings``), if it set them."""
    if not tenant.default_window:
        return None
    return CallingWindow.model_validate_json(tenant.default_window)
