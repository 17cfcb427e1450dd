"""Customer numbers masked: the country code and first three national digits stay, the next
four become ``****``, the last four stay (``+8613900000002`` → ``+86139****0002``). Pure
functions, for the API's views, the notifications' and the logs'.
"""

from __future__ import annotations

import phonenumbers

from core.logs import mask_digits


def mask(number: str | None) -> str:
    """``+8613800000002`` → ``+86138****0002``: never the full number."""
    return mask_digits(number or "")


def mask_in_text(text: str, number: str) -> str:
    """``text`` with every spelling of ``number`` masked (E.164, ``%2B``-encoded, national).

    The national significant number is the part every spelling shares, so masking it masks
    them all: ``+86``/``%2B86``/``0086`` prefixes stay and the digits after match ``mask``.
    """
    national = _national_digits(number)
    if len(national) < 8:
        return text.replace(national, "****") if len(national) >= 5 else text
    return text.replace(national, mask(national))


def _national_digits(number: str) -> str:
    try:
        return str(phonenumbers.national_significant_number(phonenumbers.parse(number)))
    except phonenumbers.NumberParseException:
        return "".join(ch for ch in number if ch.isdigit())
