"""Tenants, their hashed API keys, and their agent lines (with atomic leases)."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import update
from sqlmodel import Session, col, select

from store.db import now_ms
from store.models import AgentLine, ApiKey, Tenant


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def new_api_key() -> str:
    return "cc_" + secrets.token_urlsafe(24)


def ensure_tenant(session: Session, tenant_id: str, name: str | None = None) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        tenant = Tenant(id=tenant_id, name=name or tenant_id, created=now_ms())
        session.add(tenant)
        session.flush()
    return tenant


def add_api_key(session: Session, tenant_id: str, raw_key: str, scope: str = "full") -> ApiKey:
    digest = hash_key(raw_key)
    key = session.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    if key is None:
        key = ApiKey(tenant=tenant_id, key_hash=digest, scope=scope, created=now_ms())
        session.add(key)
        session.flush()
    return key


def key_for(session: Session, raw_key: str) -> ApiKey | None:
    return session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(raw_key))).first()


def ensure_line(
    session: Session, tenant_id: str, channel: str, agent: str, number: str
) -> AgentLine:
    line = session.exec(
        select(AgentLine).where(AgentLine.channel == channel, AgentLine.agent == agent)
    ).first()
    if line is None:
        line = AgentLine(tenant=tenant_id, channel=channel, agent=agent, number=number)
        session.add(line)
        session.flush()
    return line


def lease_line(session: Session, tenant_id: str, channel: str, cc_call_id: str) -> AgentLine | None:
    """Give ``cc_call_id`` an idle line of the tenant on ``channel``, or None if all are busy.

    The grant is a conditional UPDATE (``lease_call_id IS NULL``), so two processes racing for
    the same line cannot both win, on any of the supported databases.
    """
    candidates = session.exec(
        select(AgentLine.id)
        .where(
            AgentLine.tenant == tenant_id,
            AgentLine.channel == channel,
            col(AgentLine.lease_call_id).is_(None),
        )
        .order_by(col(AgentLine.leased_at).asc(), col(AgentLine.id).asc())
    ).all()
    for line_id in candidates:
        granted = session.execute(
            update(AgentLine)
            .where(col(AgentLine.id) == line_id, col(AgentLine.lease_call_id).is_(None))
            .values(
                lease_call_id=cc_call_id,
                lease_token=AgentLine.lease_token + 1,
                leased_at=now_ms(),
            )
        )
        if granted.rowcount == 1:  # type: ignore[attr-defined]
            line = session.get(AgentLine, line_id)
            assert line is not None
            session.refresh(line)
            return line
    return None


def release_line(session: Session, channel: str, agent: str, cc_call_id: str, token: int) -> bool:
    """Free the line if ``cc_call_id`` still holds it under ``token`` (the fencing token)."""
    released = session.execute(
        update(AgentLine)
        .where(
            col(AgentLine.channel) == channel,
            col(AgentLine.agent) == agent,
            col(AgentLine.lease_call_id) == cc_call_id,
            col(AgentLine.lease_token) == token,
        )
        .values(lease_call_id=None)
    )
    return bool(released.rowcount == 1)  # type: ignore[attr-defined]
