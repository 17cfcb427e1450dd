"""/v1/extensions: which line an inbound call to a 400 number (``main_num``) and one of its
extensions (``ext_num``) is bridged to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.deps import Caller, CallerDep, StateDep
from api.errors import Problem, invalid_field
from api.openapi import errors
from api.paging import Cursor, Limit, decode_cursor, encode_cursor
from api.phones import EXT_NUM, to_e164
from api.resources import known_channel, not_provisioned
from core.types import ResourceKind
from store import extensions, lines, provisions
from store.models import Extension

router = APIRouter(prefix="/v1/extensions", tags=["extensions"])

MainNum = Annotated[str, Path(min_length=3, max_length=32, description="the 400 number")]
ExtNum = Annotated[str, Path(pattern=EXT_NUM, description="1-8 digits")]


class ExtensionBody(BaseModel):
    agent: str = Field(min_length=1, max_length=64)
    channel: str = Field(max_length=8)
    # The agent's phone an inbound call rings; default: the line's id, when that is a number.
    phone: str | None = Field(default=None, max_length=32)


# How the binding is used, said on every answer: hw's own inbound calls never ask CC.
ROUTING_NOTE = (
    "e9 and jy ask CC where a call to this 400 number goes: this binding answers them (the "
    "agent's phone rings, shown the 400 number). hw (Huawei CEC) routes the inbound calls it "
    "hosts itself, in its own IVR: there the keyed digits must be a signed-in seat's work "
    "number; CC records what the seat sees, and no binding is asked."
)


class ExtensionPublic(ExtensionBody):
    main_num: str
    ext_num: str
    phone: str
    updated: int
    routing: str = Field(default=ROUTING_NOTE, description="how vendors use the binding")

    @classmethod
    def from_row(cls, extension: Extension) -> ExtensionPublic:
        return cls(
            main_num=extension.main_num,
            ext_num=extension.ext_num,
            agent=extension.agent,
            channel=extension.channel,
            phone=extension.phone,
            updated=extension.updated,
        )


class ExtensionPage(BaseModel):
    items: list[ExtensionPublic]
    next_cursor: str | None


def _main_num(value: str, caller: Caller) -> str:
    return to_e164(value, "main_num", caller.tenant.default_region)


def _agent_phone(body: ExtensionBody, caller: Caller) -> str:
    """The phone an inbound call to the extension rings: ``phone``, else the line's id when it
    is a phone number (an e9 line); a seat id (hw) needs ``phone``."""
    if body.phone is not None:
        return to_e164(body.phone, "phone", caller.tenant.default_region)
    try:
        return to_e164(body.agent, "phone", caller.tenant.default_region)
    except Problem:
        raise invalid_field(
            "phone",
            "the agent's phone (E.164)",
            "the line's id is not a phone number: give the agent's phone",
        ) from None


def _not_found() -> Problem:
    return Problem(404, "not_found", "no such extension")


@router.get("", response_model=ExtensionPage)
async def list_extensions(
    state: StateDep,
    caller: CallerDep,
    main_num: Annotated[str | None, Query(min_length=3, max_length=32)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ExtensionPage:
    """The tenant's extensions (of one 400 number, when given), oldest first."""
    after = decode_cursor(cursor)
    number = None if main_num is None else _main_num(main_num, caller)
    rows = await state.in_store(
        lambda s: extensions.list_extensions(s, caller.tenant.id, number, after, limit)
    )
    next_cursor = encode_cursor(rows[-1].id) if len(rows) == limit and rows[-1].id else None
    return ExtensionPage(items=[ExtensionPublic.from_row(r) for r in rows], next_cursor=next_cursor)


@router.get("/{main_num}/{ext_num}", response_model=ExtensionPublic)
async def get_extension(
    main_num: MainNum, ext_num: ExtNum, state: StateDep, caller: CallerDep
) -> ExtensionPublic:
    """One extension of the tenant's 400 number: the line an inbound call to it is bridged to."""
    number = _main_num(main_num, caller)
    found = await state.in_store(
        lambda s: extensions.get_extension(s, caller.tenant.id, number, ext_num)
    )
    if found is None:
        raise _not_found()
    return ExtensionPublic.from_row(found)


@router.put(
    "/{main_num}/{ext_num}",
    response_model=ExtensionPublic,
    responses=errors(403, 409, 429, s409="`extension_taken`: the extension is bound elsewhere"),
)
async def put_extension(
    main_num: MainNum, ext_num: ExtNum, body: ExtensionBody, state: StateDep, caller: CallerDep
) -> ExtensionPublic:
    """Bind an extension of one of the tenant's 400 numbers to one of its lines. On hw the keyed
    digits must be the seat's work number (hw routes inbound calls to signed-in seats by work
    number). Scope: `full` or `admin`."""
    caller.needs("full", "extensions are bound")
    number = _main_num(main_num, caller)
    known_channel(state, body.channel)
    phone = _agent_phone(body, caller)
    tenant = caller.tenant.id

    def put(session: Session) -> Extension:
        if not provisions.holds(session, tenant, ResourceKind.MAIN_NUM, "", number):
            raise not_provisioned(f"the 400 number {main_num}")
        if lines.get_line(session, caller.tenant.id, body.channel, body.agent) is None:
            detail = f"no {body.channel} line {body.agent}"
            raise invalid_field("agent", "no such line on that channel", detail)
        try:
            return extensions.put_extension(
                session, caller.tenant.id, number, ext_num, body.channel, body.agent, phone
            )
        except extensions.ExtensionTaken as exc:
            # Which tenant, or whether the extension itself exists, is not this key's business.
            raise Problem(409, "extension_taken", "this extension is taken") from exc

    return ExtensionPublic.from_row(await state.in_store(put))


@router.delete("/{main_num}/{ext_num}", status_code=204, responses=errors(403))
async def delete_extension(
    main_num: MainNum, ext_num: ExtNum, state: StateDep, caller: CallerDep
) -> Response:
    """Unbind an extension: inbound calls to it get the tenant's prompt. Scope: `full` or
    `admin`."""
    caller.needs("full", "extensions are unbound")
    number = _main_num(main_num, caller)

    def delete(session: Session) -> None:
        found = extensions.get_extension(session, caller.tenant.id, number, ext_num)
        if found is None:
            raise _not_found()
        extensions.delete_extension(session, found)

    await state.in_store(delete)
    return Response(status_code=204)
