"""Phone numbers: parsed and validated with ``phonenumbers``, stored as E.164, and masked.

Masked form: the country code and first three national digits stay, the next four become
``****``, the last four stay: ``+8613900000002`` → ``+86139****0002``. Keys of scope
``masked`` see customer numbers only in that form; logs never see any number in full.
"""

from __future__ import annotations

import phonenumbers

from api.errors import invalid_field

# Scopes that may read customer numbers in full; any other scope (``masked``, or one this
# version does not know) sees them masked: unknown means no.
FULL_NUMBER_SCOPES = frozenset({"full", "admin"})

# An extension under a 400 number (``ext_num``): the 1-8 digits a caller keys.
EXT_NUM = r"^[0-9]{1,8}$"


def to_e164(value: str, field: str, region: str) -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        detail = f"{field} is not a valid phone number"
        raise invalid_field(field, "not a valid phone number", detail, code="invalid_number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def sees_full_numbers(scope: str) -> bool:
    return scope in FULL_NUMBER_SCOPES
