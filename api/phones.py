"""Phone numbers: parsed and validated with ``phonenumbers``, stored as E.164."""

from __future__ import annotations

import phonenumbers

from api.errors import invalid_field


def to_e164(value: str, field: str, region: str) -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        detail = f"{field} is not a valid phone number"
        raise invalid_field(field, "not a valid phone number", detail, code="invalid_number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask(number: str | None) -> str:
    """``+8613800000002`` → ``+86138****0002``: for logs, never the full number."""
    if not number or len(number) < 8:
        return "****"
    return f"{number[:-8]}****{number[-4:]}"
