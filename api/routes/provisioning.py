"""The platform operator's part (/v1/operator, the operator credential only): tenants and
their quotas and keys, and the vendor resources provisioned to each (line ids: hw seats,
e9/jy numbers; 400 main numbers). ``GET /v1/provisions`` shows a tenant what it holds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.deps import CallerDep, OperatorDep, StateDep
from api.errors import Problem
from api.openapi import errors
from api.paging import Cursor, Limit, decode_cursor, encode_cursor
from api.phones import to_e164
from api.resources import valid_line_id
from core.types import ResourceKind
from store import provisions, retention, tenants
from store.models import Provision, Tenant
from store.quotas import Quotas

router = APIRouter(tags=["platform operator"])

TenantId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="the tenant's id")]
MainNum = Annotated[str, Path(min_length=3, max_length=32, description="the 400 number")]


class TenantBody(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=128)
    # The tenant's own quotas; null: the platform's default (CC_TENANT_*).
    max_lines: int | None = Field(default=None, ge=0)
    max_live_calls: int | None = Field(default=None, ge=0)
    calls_per_minute: int | None = Field(default=None, ge=0)
    # Days the tenant's raw vendor events and recordings are kept; null: the platform's
    # (CC_RETENTION_DAYS). Left as it is when absent (the tenant may have set its own).
    retention_days: int | None = Field(default=None, ge=1, le=3650)


class TenantPublic(BaseModel):
    id: str
    name: str
    max_lines: int | None
    max_live_calls: int | None
    calls_per_minute: int | None
    quotas: dict[str, int]  # as they apply: the tenant's own, else the defaults
    retention_days: int  # as it applies: the tenant's own, else CC_RETENTION_DAYS


class KeyBody(BaseModel):
    scope: str = Field(default="full", pattern="^(full|masked|admin)$")


class KeyCreated(BaseModel):
    tenant: str
    scope: str
    key: str  # shown once: CC keeps only its hash


class LineGrant(BaseModel):
    tenant: str = Field(min_length=1, max_length=32)
    # An hw seat kept signed in all day, so inbound calls can ring it.
    stay_signed_in: bool = False


class NumberGrant(BaseModel):
    tenant: str = Field(min_length=1, max_length=32)


class ProvisionPublic(BaseModel):
    tenant: str
    kind: ResourceKind
    channel: str | None
    resource: str
    stay_signed_in: bool
    created: int

    @classmethod
    def from_row(cls, row: Provision) -> ProvisionPublic:
        return cls(
            tenant=row.tenant,
            kind=ResourceKind(row.kind),
            channel=row.channel or None,
            resource=row.resource,
            stay_signed_in=row.stay_signed_in,
            created=row.created,
        )


class ProvisionPage(BaseModel):
    items: list[ProvisionPublic]
    next_cursor: str | None


def _tenant_view(state: StateDep, tenant: Tenant) -> TenantPublic:
    applied = Quotas.of(tenant, Quotas.defaults(state.settings))
    return TenantPublic(
        id=tenant.id,
        name=tenant.name,
        max_lines=tenant.max_lines,
        max_live_calls=tenant.max_live_calls,
        calls_per_minute=tenant.calls_per_minute,
        quotas=vars(applied),
        retention_days=retention.tenant_days(tenant, state.settings.retention_days),
    )


def _existing_tenant(session: Session, tenant_id: str) -> Tenant:
    tenant = tenants.get_tenant(session, tenant_id)
    if tenant is None:
        raise Problem(404, "not_found", f"no tenant {tenant_id}")
    return tenant


@router.put(
    "/v1/operator/tenants/{tenant_id}",
    response_model=TenantPublic,
    responses=errors(403, s403="`forbidden`: the platform operator's credential only"),
)
async def put_tenant(
    tenant_id: TenantId, body: TenantBody, state: StateDep, operator: OperatorDep
) -> TenantPublic:
    """Create the tenant, or set its name, quotas and (when given) retention."""

    def put(session: Session) -> Tenant:
        tenant = tenants.ensure_tenant(session, tenant_id, body.name)
        tenant.name = body.name or tenant.name
        tenant.max_lines, tenant.max_live_calls = body.max_lines, body.max_live_calls
        tenant.calls_per_minute = body.calls_per_minute
        if "retention_days" in body.model_fields_set:
            tenant.retention_days = body.retention_days
        session.add(tenant)
        return tenant

    tenant = await state.in_store(put)
    state.callers.clear()  # keys cached with the tenant's old quotas
    return _tenant_view(state, tenant)


@router.get(
    "/v1/operator/tenants/{tenant_id}",
    response_model=TenantPublic,
    responses=errors(403, s403="`forbidden`: the platform operator's credential only"),
)
async def get_tenant(tenant_id: TenantId, state: StateDep, operator: OperatorDep) -> TenantPublic:
    """A tenant, its quotas and retention as they apply. Operator only."""
    return _tenant_view(state, await state.in_store(lambda s: _existing_tenant(s, tenant_id)))


@router.post(
    "/v1/operator/tenants/{tenant_id}/keys",
    status_code=201,
    response_model=KeyCreated,
    responses=errors(403, s403="`forbidden`: the platform operator's credential only"),
)
async def create_key(
    tenant_id: TenantId, body: KeyBody, state: StateDep, operator: OperatorDep
) -> KeyCreated:
    """Make an API key for a tenant (shown once; CC keeps its hash). Operator only."""
    raw_key = tenants.new_api_key()

    def add(session: Session) -> None:
        _existing_tenant(session, tenant_id)
        tenants.add_api_key(session, tenant_id, raw_key, scope=body.scope)

    await state.in_store(add)
    return KeyCreated(tenant=tenant_id, scope=body.scope, key=raw_key)


async def _grant(
    state: StateDep, tenant_id: str, kind: ResourceKind, channel: str, resource: str, stay: bool
) -> ProvisionPublic:
    def grant(session: Session) -> Provision:
        _existing_tenant(session, tenant_id)
        try:
            return provisions.provision(session, tenant_id, kind, channel, resource, stay)
        except provisions.HeldElsewhere as exc:
            detail = f"{resource} is provisioned to another tenant: withdraw it first"
            raise Problem(409, "provisioned_elsewhere", detail) from exc

    return ProvisionPublic.from_row(await state.in_store(grant))


async def _withdraw(state: StateDep, kind: ResourceKind, channel: str, resource: str) -> None:
    def withdraw(session: Session) -> None:
        held = provisions.find(session, kind, channel, resource)
        if held is None:
            raise Problem(404, "not_found", f"{resource} is not provisioned")
        try:
            provisions.withdraw(session, held)
        except provisions.ResourceInUse as exc:
            detail = f"tenant {held.tenant} still has a line or extensions on {resource}"
            raise Problem(409, "resource_in_use", detail) from exc

    await state.in_store(withdraw)


@router.put(
    "/v1/operator/lines/{channel}/{agent}",
    response_model=ProvisionPublic,
    responses=errors(403, 409, s409="`provisioned_elsewhere`: another tenant holds it"),
)
async def provision_line(
    channel: str, agent: str, body: LineGrant, state: StateDep, operator: OperatorDep
) -> ProvisionPublic:
    """Give a tenant a line id (an hw seat, an e9/jy number): it may then create that line."""
    valid_line_id(state, channel, agent)
    return await _grant(state, body.tenant, ResourceKind.LINE, channel, agent, body.stay_signed_in)


@router.delete(
    "/v1/operator/lines/{channel}/{agent}",
    status_code=204,
    responses=errors(403, 409, s409="`resource_in_use`: the tenant still has a line on it"),
)
async def withdraw_line(
    channel: str, agent: str, state: StateDep, operator: OperatorDep
) -> Response:
    """Take a line id back from its tenant, once the tenant's line on it is gone. Operator only."""
    await _withdraw(state, ResourceKind.LINE, channel, agent)
    return Response(status_code=204)


@router.put(
    "/v1/operator/main-numbers/{main_num}",
    response_model=ProvisionPublic,
    responses=errors(403, 409, s409="`provisioned_elsewhere`: another tenant holds it"),
)
async def provision_main_number(
    main_num: MainNum, body: NumberGrant, state: StateDep, operator: OperatorDep
) -> ProvisionPublic:
    """Give a tenant a 400 main number: it may then bind extensions on it."""
    number = to_e164(main_num, "main_num", state.settings.default_region)
    return await _grant(state, body.tenant, ResourceKind.MAIN_NUM, "", number, False)


@router.delete(
    "/v1/operator/main-numbers/{main_num}",
    status_code=204,
    responses=errors(403, 409, s409="`resource_in_use`: the tenant still binds extensions on it"),
)
async def withdraw_main_number(
    main_num: MainNum, state: StateDep, operator: OperatorDep
) -> Response:
    """Take a 400 number back from its tenant, once its extensions are gone. Operator only."""
    number = to_e164(main_num, "main_num", state.settings.default_region)
    await _withdraw(state, ResourceKind.MAIN_NUM, "", number)
    return Response(status_code=204)


async def _page(
    state: StateDep, tenant: str | None, kind: ResourceKind | None, limit: int, cursor: str | None
) -> ProvisionPage:
    after = decode_cursor(cursor)
    rows = await state.in_store(lambda s: provisions.list_held(s, tenant, kind, after, limit))
    next_cursor = encode_cursor(rows[-1].id) if len(rows) == limit and rows[-1].id else None
    return ProvisionPage(items=[ProvisionPublic.from_row(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/v1/operator/provisions",
    response_model=ProvisionPage,
    responses=errors(403, s403="`forbidden`: the platform operator's credential only"),
)
async def list_provisions(
    state: StateDep,
    operator: OperatorDep,
    tenant: Annotated[str | None, Query(max_length=32)] = None,
    kind: ResourceKind | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ProvisionPage:
    """Every provisioned resource (of one tenant, when given). Operator only."""
    return await _page(state, tenant, kind, limit, cursor)


@router.get("/v1/provisions", response_model=ProvisionPage)
async def my_provisions(
    state: StateDep,
    caller: CallerDep,
    kind: ResourceKind | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ProvisionPage:
    """What the operator provisioned to this tenant: the line ids and 400 numbers it may use."""
    return await _page(state, caller.tenant.id, kind, limit, cursor)
