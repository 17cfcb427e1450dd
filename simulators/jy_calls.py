"""The jy simulator's calls, as Twilio's call resources show them (VENDORS.md, jy).

Leg A is the call (``JyCall``, the form it was placed with); leg B is, as in Twilio, a child
call of leg A (``ChildCall``: its own ``sid``, ``parent_call_sid`` = A's), created by the dial
when A answers. Times are on the callbacks' clock (RFC 2822, whole seconds): a resource's
times are the very moments its callbacks carry. ``NUMBER`` is a number jy takes for a leg.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from simulators.common import SimulatedCall

NUMBER = re.compile(r"^\+?\d{7,15}$")


def whole_s(at_ms: int) -> int:
    """The callbacks' clock: RFC 2822 times have whole seconds."""
    return at_ms // 1000


@dataclass
class ChildCall:
    """Leg B: a child call of leg A, as Twilio's ``<Dial>`` creates."""

    sid: str
    parent: JyCall
    created: int  # when A answered and the dial began
    status: str = "queued"
    started_at: int | None = None  # B dialled
    answered_at: int | None = None
    ended_at: int | None = None

    def view(self) -> dict[str, Any]:
        duration = None
        if self.ended_at is not None:
            answered = self.answered_at
            duration = str(whole_s(self.ended_at) - whole_s(answered)) if answered else "0"
        return {
            "sid": self.sid,
            "parent_call_sid": self.parent.sid,
            "status": self.status,
            "to": self.parent.form.get("BridgeTo"),
            "from": self.parent.form.get("BridgeCallerId"),
            "date_created": rfc2822(self.created),
            "start_time": rfc2822(self.started_at),
            "end_time": rfc2822(self.ended_at),
            "duration": duration,
        }


@dataclass(kw_only=True)
class JyCall(SimulatedCall):
    form: dict[str, str]
    status: str = "queued"
    started_at: int | None = None
    seq: int = 0
    recording_url: str | None = None
    child: ChildCall | None = None
    status_events: frozenset[str] | None = None  # the statuses called back (None: all)

    @property
    def duration(self) -> str:
        """Whole talk seconds (rounded down); "0" for a call never bridged."""
        talk_ms = self.ended_at - self.bridged_at if self.ended_at and self.bridged_at else 0
        return str(talk_ms // 1000)

    def view(self) -> dict[str, Any]:
        """The call resource (Twilio's fields; ``tag`` and ``recording_url`` are jy's)."""
        return {
            "sid": self.sid,
            "status": self.status,
            "to": self.form.get("To"),
            "from": self.form.get("From"),
            "parent_call_sid": None,
            "tag": self.form.get("Tag"),
            "date_created": rfc2822(self.created),
            "start_time": rfc2822(self.started_at),
            "end_time": rfc2822(self.ended_at),
            "duration": self.duration if self.ended_at else None,  # empty while live
            "recording_url": self.recording_url,
        }


def rfc2822(at_ms: int | None) -> str | None:
    return format_datetime(datetime.fromtimestamp(at_ms / 1000, UTC)) if at_ms else None
