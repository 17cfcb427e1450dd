"""Inbound 400-number calls, whichever way the vendor tells CC of them (VENDORS.md "Inbound
calls to a 400 number"): the record's id and numbers, pure functions with no I/O.

A webhook vendor asks CC where a customer's call goes (``api/inbound.py``); a polled vendor
(hw: CEC's own IVR routes the call) only shows it ringing one of CC's seats, as a
``SeatRing`` that its seat poll carries (``RingingSeatPoll``). Either way the record's id
comes from the vendor's call id, so every retry, duplicate or repeat of the same call finds
the same record.
"""

from __future__ import annotations

import hashlib

import phonenumbers
from pydantic import BaseModel

from channels.base import SeatPoll


def inbound_call_id(channel: str, vendor_call_id: str) -> str:
    """The record's id for a vendor's inbound call: the same for every retry of its request
    or every repeat of its ring."""
    return "in" + hashlib.sha256(f"{channel}:{vendor_call_id}".encode()).hexdigest()[:18]


def e164(value: str, region: str) -> str | None:
    """The number in E.164, or None when it is not a number (a withheld caller)."""
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class SeatRing(BaseModel):
    """A call the vendor's own routing offered one of CC's seats (hw ``AgentEvent_Ringing`` or
    ``AgentEvent_Auto_Answer``): an inbound call unless CC placed it."""

    vendor_call_id: str
    caller: str  # the customer, as the vendor gave it (national digits, not yet E.164)
    called: str  # the number the customer dialled (the 400 main number), as the vendor gave it
    at: int  # epoch ms, UTC


class RingingSeatPoll(SeatPoll):
    """A seat poll that also says which calls the vendor offered the seat (its events are
    the same as ever)."""

    rings: list[SeatRing] = []
