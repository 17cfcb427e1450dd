"""/v1/lines and /v1/bindings/{user}: the agent lines each channel provides, and which user
is bound to which line (the seed's User-Agent-Channel part)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.deps import CallerDep, StateDep
from api.errors import Problem, invalid_field, quota_exceeded
from api.openapi import errors
from api.paging import Cursor, Limit, decode_cursor, encode_cursor
from api.phones import to_e164
from api.resources import known_channel, not_provisioned, valid_line_id
from core.secrets import SecretKeyMissing, seal
from core.types import ChannelMode, ResourceKind
from store import bindings, lines, provisions
from store.models import AgentLine, Binding
from store.quotas import QuotaExceeded, Quotas, check_lines, hold

router = APIRouter(tags=["lines and bindings"])


class LineCreate(BaseModel):
    channel: str = Field(max_length=8)
    agent: str = Field(min_length=1, max_length=64)
    number: str = Field(min_length=3, max_length=32)
    # A seat's password (a polled channel, hw): stored sealed with CC_SECRET_KEY, never
    # returned. Without one the seat signs in with the channel's CC_HW_SEAT_PASSWORD.
    password: str | None = Field(default=None, min_length=1, max_length=128, repr=False)


class LinePublic(BaseModel):
    channel: str
    agent: str
    number: str
    busy: bool
    call: str | None
    # False: no call is routed to it (e.g. an hw seat signed in elsewhere); delete and add
    # the line again to put it back.
    in_service: bool = True
    out_of_service: str | None = None

    @classmethod
    def from_row(cls, line: AgentLine) -> LinePublic:
        return cls(
            channel=line.channel,
            agent=line.agent,
            number=line.number,
            busy=line.lease_call_id is not None,
            call=line.lease_call_id,
            in_service=line.out_of_service is None,
            out_of_service=line.out_of_service,
        )


class LinePage(BaseModel):
    items: list[LinePublic]
    next_cursor: str | None


class BindingBody(BaseModel):
    agent: str = Field(min_length=1, max_length=64)
    channel: str = Field(max_length=8)


class BindingPublic(BindingBody):
    user: str

    @classmethod
    def from_row(cls, binding: Binding) -> BindingPublic:
        return cls(user=binding.user, agent=binding.agent, channel=binding.channel)


@router.get("/v1/lines", response_model=LinePage)
async def list_lines(
    state: StateDep,
    caller: CallerDep,
    channel: str | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> LinePage:
    """The tenant's agent lines (seats or numbers), each with its channel and whether a call holds
    it."""
    after = decode_cursor(cursor)
    rows = await state.in_store(
        lambda s: lines.list_lines(s, caller.tenant.id, channel, after, limit)
    )
    next_cursor = encode_cursor(rows[-1].id) if len(rows) == limit and rows[-1].id else None
    return LinePage(items=[LinePublic.from_row(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "/v1/lines",
    status_code=201,
    response_model=LinePublic,
    responses=errors(403, 409, 429, s409="`line_exists`: the tenant has this line already"),
)
async def create_line(body: LineCreate, state: StateDep, caller: CallerDep) -> LinePublic:
    """A line on a line id the operator provisioned to the tenant (403 otherwise, whoever
    holds it), within the tenant's quota of lines (429). Scope: `full` or `admin`."""
    caller.needs("full", "lines are created")
    valid_line_id(state, body.channel, body.agent)
    number = to_e164(body.number, "number", caller.tenant.default_region)
    secret = _sealed_password(state, body)
    tenant = caller.tenant
    quotas = Quotas.of(tenant, Quotas.defaults(state.settings))

    def create(session: Session) -> AgentLine:
        hold(session, tenant.id)  # first: a read before it would fix MariaDB's snapshot
        if not provisions.holds(session, tenant.id, ResourceKind.LINE, body.channel, body.agent):
            raise not_provisioned(f"{body.channel} line {body.agent}")
        try:
            check_lines(session, tenant.id, quotas)
            line = lines.create_line(session, tenant.id, body.channel, body.agent, number)
        except lines.LineExists as exc:  # the tenant's own: it holds the line id
            raise Problem(409, "line_exists", str(exc)) from exc
        except QuotaExceeded as exc:
            raise quota_exceeded(exc) from exc
        line.secret = secret
        return line

    return LinePublic.from_row(await state.in_store(create))


def _sealed_password(state: StateDep, body: LineCreate) -> str | None:
    if body.password is None:
        return None
    if state.channels[body.channel].mode is not ChannelMode.POLL:
        raise invalid_field(
            "password",
            "only a polled channel's seat has a password",
            f"{body.channel} lines have no password",
        )
    try:
        return seal(body.password, state.settings.secret_key)
    except SecretKeyMissing as exc:
        raise invalid_field("password", "CC_SECRET_KEY set on the server", str(exc)) from exc


@router.delete(
    "/v1/lines/{channel}/{agent}",
    status_code=204,
    responses=errors(403, 409, s409="`line_in_use`: a call holds the line"),
)
async def delete_line(channel: str, agent: str, state: StateDep, caller: CallerDep) -> Response:
    """Remove a line the tenant no longer uses. Scope: `full` or `admin`."""
    caller.needs("full", "lines are removed")

    def delete(session: Session) -> None:
        line = lines.get_line(session, caller.tenant.id, channel, agent)
        if line is None:
            raise Problem(404, "not_found", "no such line")
        try:
            lines.delete_line(session, line)
        except lines.LineInUse as exc:
            raise Problem(409, "line_in_use", str(exc)) from exc

    await state.in_store(delete)
    return Response(status_code=204)


@router.get("/v1/bindings/{user}", response_model=BindingPublic)
async def get_binding(user: str, state: StateDep, caller: CallerDep) -> BindingPublic:
    """The user's user-agent-channel binding: the line and channel the user's calls use."""
    binding = await state.in_store(lambda s: bindings.get_binding(s, caller.tenant.id, user))
    if binding is None:
        raise Problem(404, "not_found", "no binding for this user")
    return BindingPublic.from_row(binding)


@router.put("/v1/bindings/{user}", response_model=BindingPublic, responses=errors(403))
async def put_binding(
    user: str, body: BindingBody, state: StateDep, caller: CallerDep
) -> BindingPublic:
    """Pin a user of the app to one line of one channel (422 when the tenant has no such line).
    Scope: `full` or `admin`."""
    caller.needs("full", "bindings are changed")
    known_channel(state, body.channel)

    def put(session: Session) -> Binding:
        if lines.get_line(session, caller.tenant.id, body.channel, body.agent) is None:
            detail = f"no {body.channel} line {body.agent}"
            raise invalid_field("agent", "no such line on that channel", detail)
        return bindings.put_binding(session, caller.tenant.id, user, body.channel, body.agent)

    return BindingPublic.from_row(await state.in_store(put))


@router.delete("/v1/bindings/{user}", status_code=204, responses=errors(403))
async def delete_binding(user: str, state: StateDep, caller: CallerDep) -> Response:
    """Unpin the user: CC chooses the channel and line again. Scope: `full` or `admin`."""
    caller.needs("full", "bindings are changed")

    def delete(session: Session) -> None:
        binding = bindings.get_binding(session, caller.tenant.id, user)
        if binding is None:
            raise Problem(404, "not_found", "no binding for this user")
        bindings.delete_binding(session, binding)

    await state.in_store(delete)
    return Response(status_code=204)
