"""Vendor resources provisioned to tenants by the platform operator: line ids (an hw seat, an
e9/jy number) and 400 main numbers. A resource is held by one tenant at most; a tenant creates
lines and binds extensions only on what it holds, and is never told who holds the rest."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.types import ResourceKind
from store.db import now_ms
from store.models import AgentLine, Extension, Provision


class HeldElsewhere(Exception):
    """Another tenant holds the resource (said to the operator only)."""


class ResourceInUse(Exception):
    """The tenant still has a line or extensions on the resource."""


def _channel_of(kind: ResourceKind, channel: str) -> str:
    return channel if kind is ResourceKind.LINE else ""


def find(session: Session, kind: ResourceKind, channel: str, resource: str) -> Provision | None:
    """The resource's provision, whichever tenant holds it."""
    return session.exec(
        select(Provision).where(
            Provision.kind == kind.value,
            Provision.channel == _channel_of(kind, channel),
            Provision.resource == resource,
        )
    ).first()


def holds(session: Session, tenant: str, kind: ResourceKind, channel: str, resource: str) -> bool:
    found = find(session, kind, channel, resource)
    return found is not None and found.tenant == tenant


def provision(
    session: Session,
    tenant: str,
    kind: ResourceKind,
    channel: str,
    resource: str,
    stay_signed_in: bool = False,
) -> Provision:
    """Give ``tenant`` the resource (or update its flags if it holds it already);
    HeldElsewhere if another tenant holds it."""
    found = find(session, kind, channel, resource)
    if found is None:
        found = Provision(
            tenant=tenant,
            kind=kind.value,
            channel=_channel_of(kind, channel),
            resource=resource,
            created=now_ms(),
        )
        try:
            with session.begin_nested():  # another operator request took it meanwhile
                session.add(found)
        except IntegrityError:
            raise HeldElsewhere(resource) from None
    if found.tenant != tenant:
        raise HeldElsewhere(resource)
    found.stay_signed_in = stay_signed_in
    session.add(found)
    session.flush()
    return found


def withdraw(session: Session, held: Provision) -> None:
    """Take the resource back; ResourceInUse while the tenant has a line or extensions on it."""
    if held.kind == ResourceKind.LINE.value:
        in_use = session.exec(
            select(AgentLine.id).where(
                AgentLine.channel == held.channel, AgentLine.agent == held.resource
            )
        ).first()
    else:
        in_use = session.exec(
            select(Extension.id).where(Extension.main_num == held.resource)
        ).first()
    if in_use is not None:
        raise ResourceInUse(held.resource)
    session.delete(held)


def list_held(
    session: Session,
    tenant: str | None,
    kind: ResourceKind | None,
    after_id: int,
    limit: int,
) -> list[Provision]:
    """A page of provisions (of one tenant, of one kind, when given), by id."""
    query = select(Provision).where(col(Provision.id) > after_id)
    if tenant is not None:
        query = query.where(Provision.tenant == tenant)
    if kind is not None:
        query = query.where(Provision.kind == kind.value)
    return list(session.exec(query.order_by(col(Provision.id)).limit(limit)).all())


def seats_to_keep_signed_in(session: Session, channel: str) -> list[Provision]:
    """The seats of ``channel`` the operator marked to stay signed in all day."""
    return list(
        session.exec(
            select(Provision).where(
                Provision.kind == ResourceKind.LINE.value,
                Provision.channel == channel,
                col(Provision.stay_signed_in).is_(True),
            )
        ).all()
    )
