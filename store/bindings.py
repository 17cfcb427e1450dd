"""User–agent–channel bindings: a user of a tenant pinned to one line of one channel."""

from __future__ import annotations

from sqlmodel import Session, select

from store.db import now_ms
from store.models import Binding


def get_binding(session: Session, tenant: str, user: str) -> Binding | None:
    return session.exec(
        select(Binding).where(Binding.tenant == tenant, Binding.user == user)
    ).first()


def put_binding(session: Session, tenant: str, user: str, channel: str, agent: str) -> Binding:
    binding = get_binding(session, tenant, user) or Binding(
        tenant=tenant, user=user, channel=channel, agent=agent, updated=now_ms()
    )
    binding.channel, binding.agent, binding.updated = channel, agent, now_ms()
    session.add(binding)
    session.flush()
    return binding


def delete_binding(session: Session, binding: Binding) -> None:
    session.delete(binding)


def line_is_bound(session: Session, tenant: str, channel: str, agent: str) -> bool:
    """Whether some user of ``tenant`` is bound to this line."""
    bound = session.exec(
        select(Binding.id).where(
            Binding.tenant == tenant, Binding.channel == channel, Binding.agent == agent
        )
    ).first()
    return bound is not None
