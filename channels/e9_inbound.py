"""Channel e9's side of a customer calling a 400 number (VENDORS.md, e9; ``E9Channel``'s
``parse_inbound`` and ``inbound_reply``).

The call arrives as a ``callin`` webhook, signed as e9's events (``E9Channel.verify_webhook``):
the customer dialled ``called`` and keyed ``ext`` (empty until keyed). CC answers with a JSON
action: dial the agent, ask for the extension (ivr) or reject.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from channels import errors, events, helpers
from channels.e9_events import parse_beijing_ts
from core.types import InboundAction

# A ``callin``'s fields: numbers and ids are short; ``ext`` is what the customer keyed.
FIELD_MAX = 64
DIGITS_KEYED = re.compile(r"[0-9*#]{0,32}")


def parse_callin(body: bytes) -> events.InboundCall:
    """A ``callin`` webhook: a customer dialled ``called`` (a 400 number) and keyed
    ``ext`` (empty until keyed)."""
    try:
        payload = json.loads(body)
        if payload["event"] != "callin":
            raise ValueError("not a callin")
        call_sid, event_id = _field(payload, "callSid"), _field(payload, "eventId")
        caller, called = _field(payload, "caller", empty=True), _field(payload, "called")
        ext = _field(payload, "ext", empty=True) if "ext" in payload else ""
        if not DIGITS_KEYED.fullmatch(ext):
            raise ValueError("ext is not keyed digits")
        at = parse_beijing_ts(_field(payload, "timestamp"))
    except (ValueError, KeyError, TypeError, RecursionError, OverflowError) as exc:
        raise errors.MalformedEvent(f"not an e9 callin: {exc.__class__.__name__}") from exc
    return events.InboundCall(
        vendor_call_id=helpers.fit(call_sid, helpers.VENDOR_ID_MAX),
        caller=caller,
        main_num=called,
        ext_num=ext or None,
        at=at,
        dedupe_key=helpers.fit(event_id, helpers.DEDUPE_MAX),
    )


def action_reply(answer: events.InboundAnswer) -> tuple[bytes, str]:
    """The JSON action e9 expects; numbers go as placing sends them (E.164)."""
    reply: dict[str, Any]
    if answer.action is InboundAction.DIAL:
        if not (answer.to and answer.display and answer.cc_call_id):
            raise ValueError("a dial answer needs to, display and cc_call_id")
        reply = {
            "action": "dial",
            "to": answer.to,
            "display": answer.display,
            "record": answer.record,
            "userData": answer.cc_call_id,
        }
    elif answer.action is InboundAction.IVR:
        reply = {"action": "ivr", "playText": answer.prompt or "", "collect": answer.collect}
    else:
        reply = {"action": "reject", "playText": answer.prompt or ""}
    return json.dumps(reply).encode(), "application/json"


def _field(payload: Mapping[str, Any], name: str, empty: bool = False) -> str:
    """A string field of a ``callin``, short and storable; ``ValueError`` otherwise."""
    value = payload[name]
    if not isinstance(value, str) or len(value) > FIELD_MAX or not helpers.encodable(value):
        raise ValueError(f"{name} is not a short string")
    if not value and not empty:
        raise ValueError(f"{name} is empty")
    return value
