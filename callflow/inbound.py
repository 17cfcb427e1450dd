"""Inbound 400-number calls, whichever way the vendor tells CC of them (VENDORS.md "Inbound
calls to a 400 number"): the record's id and numbers, pure functions with no I/O.

A webhook vendor asks CC where a customer's call goes (``api/inbound.py``); a polled vendor
(hw: CEC's own IVR routes the call) only shows it ringing one of CC's seats, as a
``channels.events.SeatRing`` that its seat poll carries. Either way the record's id
comes from the vendor's call id, so every retry, duplicate or repeat of the same call finds
the same record.
"""

from __future__ import annotations

import hashlib

import phonenumbers


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
