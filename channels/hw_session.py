"""Channel hw's CC-Gateway envelope and a seat's session (VENDORS.md, hw).

Every answer is HTTP 200 JSON with a string ``retcode``: ``"0"`` or ``NNN-NNN``, mapped here
to the typed channel errors. A seat's calls carry its newest guid (``Guid``) and replay its
sign-in's cookies; any answer may bring a new guid (``Set-GUID: JSESSIONID=<guid>``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx
import phonenumbers
from pydantic import BaseModel

from channels.errors import (
    PollInFlight,
    SeatRefused,
    SeatSignedOut,
    SeatTaken,
    VendorRejected,
    VendorServerError,
)

OK, STALE_GUID, ALREADY_SIGNED_IN = "0", "000-003", "100-002"
NO_CALL, NO_RECORDING = "200-017", "104-005"  # release: no call; recordfile: not (yet) there
SIGNED_OUT = frozenset({"100-006", "105-005", "105-006", "105-007"})
WRONG_PASSWORD, SEAT_TAKEN = "100-004", "100-015"  # the seat cannot sign in
# The gateway refusing the seat itself (CC-Gateway's result codes), for what only the seat's
# tenant can mend: its line goes out of service, and the channel is not failing.
SEAT_FAULTS = {
    WRONG_PASSWORD: "wrong seat password",
    "100-009": "the seat has no right to set its state",
    "100-012": "wrong agent type for the seat",
    SEAT_TAKEN: "the seat is signed in elsewhere and cannot be forced out",
    "100-020": "the seat's password has expired",
    "110-016": "the seat's account is locked",
}
# Worth another try later: system busy, gateway busy, seat not idle, a poll in flight.
POLL_IN_FLIGHT = "000-007"
TRANSIENT = frozenset({"000-004", "100-003", "100-007", POLL_IN_FLIGHT})
DIALABLE = re.compile(r"^[0-9*#]*$")


class StaleGuid(VendorServerError):
    """``000-003`` even with the newest guid: the seat's session is not ours any more."""


class SeatSession(BaseModel):
    """What a seat's calls must carry: its newest guid and the sign-in's cookies."""

    guid: str = ""
    cookies: dict[str, str] = {}

    def headers(self) -> dict[str, str]:
        headers = {"Guid": self.guid} if self.guid else {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        return headers

    def taking(self, response: httpx.Response) -> SeatSession:
        """This session updated by an answer's ``Set-GUID`` and ``Set-Cookie``."""
        guid = response.headers.get("set-guid", "").strip()
        guid = guid.split("=", 1)[1].strip() if "=" in guid else guid
        cookies = dict(self.cookies)
        for header in response.headers.get_list("set-cookie"):
            name, _, value = header.split(";", 1)[0].partition("=")
            if name.strip():
                cookies[name.strip()] = value.strip()
        return SeatSession(guid=guid or self.guid, cookies=cookies)


def dial(number: str, region: str) -> str:
    """A number as the gateway dials it (digits, no ``+``): the national form for numbers of
    the gateway's country, with the trunk prefix a national call needs (CN landlines ``010…``,
    mobiles as they are), the international prefix (``00…``) for others. A number without
    ``+`` is taken as already dialable (an extension)."""
    if not number.startswith("+"):
        if DIALABLE.match(number):
            return number
        raise VendorRejected("invalid-number", "not a dialable number")
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException as exc:
        raise VendorRejected("invalid-number", "not an E.164 number") from exc
    formatted = phonenumbers.format_out_of_country_calling_number(parsed, region)
    return "".join(ch for ch in formatted if ch in "0123456789")


def raise_for(answer: Mapping[str, Any], what: str) -> None:
    """The envelope's ``retcode`` as a typed error; nothing for ``"0"``."""
    code, message = str(answer.get("retcode", "")), str(answer.get("message", ""))
    if code == OK:
        return
    if code in SIGNED_OUT:
        raise SeatSignedOut(f"{what}: {code} {message}")
    if code == SEAT_TAKEN:
        raise SeatTaken(code, SEAT_FAULTS[code])
    if code in SEAT_FAULTS:
        raise SeatRefused(code, SEAT_FAULTS[code])
    if code == STALE_GUID:
        raise StaleGuid(f"{what}: {code} {message}")
    if code == POLL_IN_FLIGHT:
        raise PollInFlight(f"{what}: {code} {message}")
    if code in TRANSIENT or not code:
        raise VendorServerError(f"{what}: {code or 'no retcode'} {message}")
    raise VendorRejected(code, message)
