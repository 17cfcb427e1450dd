"""Per-tenant quotas: lines, calls live at once, calls started per minute. The operator sets a
tenant's own (``Tenant.max_*``); otherwise the platform's defaults apply. Counted in the
transaction that records the call or line, one request of a tenant after another: on SQLite
the transaction's first write holds the database's write lock; on PostgreSQL and MariaDB the
transaction first holds the tenant's row (``hold``), so two requests racing at the limit
cannot both pass, and other tenants' requests never wait for it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.config import CoreSettings
from core.types import CallState
from store.models import AgentLine, CallRecordRow, Tenant

WINDOW_MS = 60_000
LIVE_RETRY_AFTER_S = 5


@dataclass(frozen=True)
class Quotas:
    max_lines: int
    max_live_calls: int
    calls_per_minute: int

    @classmethod
    def defaults(cls, settings: CoreSettings) -> Quotas:
        return cls(
            settings.tenant_max_lines,
            settings.tenant_max_live_calls,
            settings.tenant_calls_per_minute,
        )

    @classmethod
    def of(cls, tenant: Tenant, defaults: Quotas) -> Quotas:
        return cls(
            max_lines=_or(tenant.max_lines, defaults.max_lines),
            max_live_calls=_or(tenant.max_live_calls, defaults.max_live_calls),
            calls_per_minute=_or(tenant.calls_per_minute, defaults.calls_per_minute),
        )


def _or(own: int | None, default: int) -> int:
    return default if own is None else own


class QuotaExceeded(Exception):
    def __init__(self, what: str, limit: int, retry_after_s: int) -> None:
        super().__init__(f"{what}: the tenant's quota is {limit}")
        self.what, self.limit, self.retry_after_s = what, limit, retry_after_s


def hold(session: Session, tenant: str) -> None:
    """Lock the tenant's row for the rest of the transaction (PostgreSQL ``FOR NO KEY
    UPDATE``, MariaDB ``FOR UPDATE``), so its quota counts happen one after another. Taken
    before any write that refers to the tenant: a foreign key's shared lock on the row, taken
    first by two requests, would otherwise deadlock them. Not on SQLite, whose first write
    serialises the transactions already (and a read first would make that write fail
    "locked" under contention)."""
    if session.get_bind().dialect.name == "sqlite":
        return
    session.exec(select(Tenant.id).where(Tenant.id == tenant).with_for_update(key_share=True))


def check_lines(session: Session, tenant: str, quotas: Quotas) -> None:
    """Before a new line: QuotaExceeded if the tenant has ``max_lines`` already."""
    count = session.exec(
        select(func.count()).select_from(AgentLine).where(AgentLine.tenant == tenant)
    ).one()
    if int(count) >= quotas.max_lines:
        raise QuotaExceeded("lines", quotas.max_lines, LIVE_RETRY_AFTER_S)


def check_calls(session: Session, tenant: str, quotas: Quotas, now: int) -> None:
    """After a new call's row is written (it counts itself): QuotaExceeded if the tenant has
    more than ``max_live_calls`` live, or started more than ``calls_per_minute`` in 60 s."""
    check_live(session, tenant, quotas, counted=1)
    since = now - WINDOW_MS
    recent, oldest = session.exec(
        select(func.count(), func.min(CallRecordRow.created)).where(
            CallRecordRow.tenant == tenant, CallRecordRow.created >= since
        )
    ).one()
    if int(recent) > quotas.calls_per_minute:
        wait_ms = (oldest or now) + WINDOW_MS - now
        retry = max(1, math.ceil(wait_ms / 1000))
        raise QuotaExceeded("calls per minute", quotas.calls_per_minute, retry)


def check_live(session: Session, tenant: str, quotas: Quotas, counted: int = 0) -> None:
    """QuotaExceeded if the tenant has more than ``max_live_calls`` live (in ``init`` or
    ``conn``), ``counted`` of them being the call that asks (written already). A call waiting
    to be placed (``scheduled``) holds no line and is not live."""
    live = session.exec(
        select(func.count())
        .select_from(CallRecordRow)
        .where(
            CallRecordRow.tenant == tenant,
            col(CallRecordRow.state).in_([CallState.INIT.value, CallState.CONN.value]),
        )
    ).one()
    if int(live) + 1 - counted > quotas.max_live_calls:
        raise QuotaExceeded("calls live at once", quotas.max_live_calls, LIVE_RETRY_AFTER_S)
