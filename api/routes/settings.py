"""A tenant's own settings (``GET``/``PUT /v1/settings``): how long its calls' raw vendor
events and recordings are kept, and its default callback policies (``retry``, ``window``)
for calls that bring none. Reading needs any key of the tenant; changing needs an ``admin``
key, and changes only the fields the body names. The operator sets retention through
``PUT /v1/operator/tenants/{id}``."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.deps import CallerDep, StateDep
from api.errors import invalid_field
from api.openapi import errors
from callflow.policy import CallingWindow, RetryPolicy
from store import retention, tenants
from store.models import Tenant

router = APIRouter(prefix="/v1/settings", tags=["settings"])
log = logging.getLogger("cc.api.settings")


class SettingsBody(BaseModel):
    # Days the tenant's raw vendor events and recordings are kept, up to the platform's
    # CC_RETENTION_MAX_DAYS; null: the platform's default (CC_RETENTION_DAYS).
    retention_days: int | None = Field(default=None, ge=1)
    retry: RetryPolicy | None = Field(
        default=None, description="the default retry policy of calls that bring none; null: none"
    )
    window: CallingWindow | None = Field(
        default=None, description="the default calling hours of calls that bring none; null: any"
    )


class SettingsPublic(BaseModel):
    retention_days: int  # as it applies
    retention_source: str  # "tenant" (its own) or "platform" (CC_RETENTION_DAYS)
    retention_max_days: int  # the most a tenant may set
    retry: RetryPolicy | None = None
    window: CallingWindow | None = None


def _view(state: StateDep, tenant: Tenant) -> SettingsPublic:
    return SettingsPublic(
        retention_days=retention.tenant_days(tenant, state.settings.retention_days),
        retention_source="tenant" if tenant.retention_days else "platform",
        retention_max_days=state.settings.retention_max_days,
        retry=tenants.default_retry(tenant),
        window=tenants.default_window(tenant),
    )


@router.get("", response_model=SettingsPublic)
async def get_settings(state: StateDep, caller: CallerDep) -> SettingsPublic:
    """The tenant's settings as they apply (retention: its own or the platform's). Any key."""
    tenant = await state.in_store(lambda s: tenants.get_tenant(s, caller.tenant.id))
    return _view(state, tenant or caller.tenant)


@router.put(
    "",
    response_model=SettingsPublic,
    responses=errors(403, s403="`forbidden`: an `admin` key only"),
)
async def put_settings(body: SettingsBody, state: StateDep, caller: CallerDep) -> SettingsPublic:
    """Set the tenant's own retention (`null`: the platform's), up to the platform's maximum,
    and its default `retry` and `window` (`null`: none). Only the fields the body names
    change. Scope: `admin`."""
    caller.needs("admin", "settings are changed")
    most = state.settings.retention_max_days
    if body.retention_days is not None and body.retention_days > most:
        raise invalid_field(
            "retention_days",
            f"at most {most}",
            f"retention_days: at most {most} days (the platform's CC_RETENTION_MAX_DAYS)",
        )

    def put(session: Session) -> Tenant:
        tenant = tenants.ensure_tenant(session, caller.tenant.id)
        given = body.model_fields_set
        if "retention_days" in given:
            tenant.retention_days = body.retention_days
        if "retry" in given:
            tenant.default_retry = body.retry.model_dump_json() if body.retry else None
        if "window" in given:
            tenant.default_window = (
                body.window.model_dump_json(by_alias=True) if body.window else None
            )
        session.add(tenant)
        return tenant

    tenant = await state.in_store(put)
    state.callers.clear()  # keys cached with the tenant's old settings
    log.info(
        "settings changed tenant=%s key=%s retention_days=%s",
        tenant.id,
        caller.key_id,
        body.retention_days,
    )
    return _view(state, tenant)
