"""A customer calling a 400 number, as the vendor simulators play it (VENDORS.md "Inbound calls
to a 400 number").

``POST /_sim/inbound`` (``InboundStart``, mounted by ``control.simulator_app`` for an
``InboundSimulator``) has a customer dial a main number. The customer's part is the same for
every vendor (``answer_customer``): ask CC where the call goes, key the extension when asked,
run the call on a dial. Each vendor's simulator asks CC in its own format (an ``Ask``) and
reads the answer into an ``InboundReply``, or refuses it (``BadAnswer``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from core.types import InboundAction

log = logging.getLogger("cc.sim")


class InboundStart(BaseModel):
    """``POST /_sim/inbound``: ``caller`` dials ``main_num`` and, asked for an extension,
    keys ``ext`` (none: keys nothing)."""

    main_num: str = Field(min_length=1, max_length=32)
    caller: str = Field(max_length=32)
    ext: str | None = Field(default=None, pattern=r"^[0-9*#]{1,32}$")


class InboundOutcome(StrEnum):
    DIALLED = "dialled"  # the agent's phone is dialled: the call runs, its events follow
    REJECTED = "rejected"  # CC said why and hung up
    IVR_NO_DIGITS = "ivr_no_digits"  # CC asked for an extension the customer did not key
    FAILED = "failed"  # CC's answer is not one the vendor takes (``detail``): answered 502


class InboundResult(BaseModel):
    call_sid: str  # the vendor's id of the customer's call
    outcome: InboundOutcome
    detail: str | None = None


class BadAnswer(Exception):
    """CC's answer to an inbound request is none the vendor takes: the call ends."""


@dataclass(frozen=True)
class InboundReply:
    """CC's answer to an inbound request, read from the vendor's format."""

    action: InboundAction
    collect: int = 0  # ivr: how many digits the vendor collects
    next_url: str | None = None  # ivr: where the keyed digits go (None: where it asked)
    agent: str = ""  # dial: the agent's phone, leg B
    display: str = ""  # dial: what the agent's phone is shown
    record: bool = False
    tag: str = ""  # dial: CC's call id, carried by the call's events
    status_url: str = ""  # dial: where the call's events go
    status_events: frozenset[str] | None = None  # dial: the statuses reported (None: all)
    time_limit_s: int = 0  # dial: 0 none


# Asks CC at a URL, with the digits keyed (None: none yet); raises ``BadAnswer``.
Ask = Callable[[str, str | None], Awaitable[InboundReply]]
# Runs the call CC's dial answer describes (the customer is leg A, on the line already).
Dial = Callable[[InboundReply], Awaitable[None]]


@runtime_checkable
class InboundSimulator(Protocol):
    """A simulator whose vendor hosts 400 numbers and asks CC where their calls go."""

    async def inbound(self, start: InboundStart) -> InboundResult: ...


def inbound_router(inbound: Callable[[InboundStart], Awaitable[InboundResult]]) -> APIRouter:
    """``POST /_sim/inbound``, played by ``inbound``."""
    router = APIRouter(prefix="/_sim", tags=["simulator control"])

    @router.post("/inbound")
    async def post_inbound(start: InboundStart) -> JSONResponse:
        """A customer calls ``main_num``; answered once CC has answered the vendor."""
        result = await inbound(start)
        failed = result.outcome is InboundOutcome.FAILED
        return JSONResponse(result.model_dump(mode="json"), status_code=502 if failed else 200)

    return router


async def answer_customer(
    sid: str, start: InboundStart, url: str, ask: Ask, dial: Dial
) -> InboundResult:
    """Play the customer of inbound call ``sid``: ``ask`` CC at ``url`` where the call goes
    (nothing keyed yet); asked for an extension, key ``start.ext`` once (no ext: key
    nothing, the call ends); on a dial, ``dial`` runs the call."""
    try:
        reply = await ask(url, None)
        if reply.action is InboundAction.IVR and start.ext:
            reply = await ask(reply.next_url or url, start.ext[: reply.collect])
    except BadAnswer as exc:
        log.warning("inbound call %s: CC's answer is not one the vendor takes: %s", sid, exc)
        return InboundResult(call_sid=sid, outcome=InboundOutcome.FAILED, detail=str(exc))
    if reply.action is InboundAction.IVR:  # nothing (more) to key: the customer hangs up
        return InboundResult(call_sid=sid, outcome=InboundOutcome.IVR_NO_DIGITS)
    if reply.action is InboundAction.REJECT:
        return InboundResult(call_sid=sid, outcome=InboundOutcome.REJECTED)
    await dial(reply)
    return InboundResult(call_sid=sid, outcome=InboundOutcome.DIALLED)
