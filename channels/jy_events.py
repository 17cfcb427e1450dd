"""Channel jy's callbacks and call resources, translated to unified events (VENDORS.md, jy).

A ``CallStatus`` callback is per leg: ``Leg=B in-progress`` is the bridge, a terminal status
closes the call, times are RFC 2822. The call resource (``GET .../Calls/{CallSid}.json``, leg
A) and its child call (leg B, listed by Twilio's filter ``GET .../Calls.json?ParentCallSid=``)
answer what became of a call whose callbacks went missing, as the events the callbacks would
have carried.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

from channels import errors, events, helpers
from core.types import CloseType, EventKind

# (Leg, CallStatus) → what happened; a terminal status closes the call.
_KINDS = {
    ("A", "initiated"): [EventKind.A_DIALING],
    ("A", "ringing"): [EventKind.A_RINGING],
    ("A", "in-progress"): [EventKind.A_ANSWERED],
    ("B", "initiated"): [EventKind.B_DIALING],
    ("B", "ringing"): [EventKind.B_RINGING],
    ("B", "in-progress"): [EventKind.B_ANSWERED, EventKind.BRIDGED],
}
_CLOSES = {
    ("A", "busy"): CloseType.A_BUSY,
    ("A", "no-answer"): CloseType.A_UNREACHABLE,
    ("A", "failed"): CloseType.A_UNREACHABLE,
    ("B", "busy"): CloseType.B_BUSY,
    ("B", "no-answer"): CloseType.B_UNREACHABLE,
    ("B", "failed"): CloseType.B_UNREACHABLE,
}
_NORMAL_ENDS = {"completed", "canceled"}
# The call resource's status once the call is over. The resource speaks for leg A only: a call
# whose B leg failed ends ``completed``; why is told by its child call (leg B), if any.
_RESOURCE_ENDS = {
    "busy": CloseType.A_BUSY,
    "no-answer": CloseType.A_UNREACHABLE,
    "failed": CloseType.A_UNREACHABLE,
    "canceled": CloseType.NORMAL,
    "completed": CloseType.NORMAL,
}
# The child call's (leg B's) final status → the close, when leg A ended normally.
_CHILD_ENDS = {
    "busy": CloseType.B_BUSY,
    "no-answer": CloseType.B_UNREACHABLE,
    "failed": CloseType.B_UNREACHABLE,
    "canceled": CloseType.NORMAL,
    "completed": CloseType.NORMAL,
}


def callback_events(body: bytes) -> list[events.CallEvent]:
    """A ``CallStatus`` callback's events: a terminal status closes the call; ``Leg=B
    in-progress`` is B's answer and the bridge."""
    form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    try:
        sid, leg, status = form["CallSid"], form["Leg"], form["CallStatus"]
        at = int(parsedate_to_datetime(form["Timestamp"]).timestamp() * 1000)
        seq = int(form["SequenceNumber"])
    except (KeyError, ValueError, TypeError, OverflowError) as exc:
        raise errors.MalformedEvent(f"not a jy callback: {exc.__class__.__name__}") from exc
    recording = form.get("RecordingUrl") or None

    def event(kind: EventKind, close_type: CloseType | None = None) -> events.CallEvent:
        return helpers.vendor_event(
            cc_call_id=helpers.cc_call_id_of(form.get("Tag")),
            vendor_call_id=sid,
            kind=kind,
            at=at,
            ch_state=f"{leg}:{status}",
            close_type=close_type,
            recording_url=f"{recording}.wav" if recording else None,
            dedupe_key=f"{sid}:{seq}:{kind.value}",
            duration_s=_seconds(form.get("CallDuration")) if close_type is not None else None,
        )

    if (leg, status) in _CLOSES:
        return [event(EventKind.HANGUP, _CLOSES[(leg, status)])]
    if status in _NORMAL_ENDS:
        return [event(EventKind.HANGUP, CloseType.NORMAL)]
    if (leg, status) in _KINDS:
        return [event(kind) for kind in _KINDS[(leg, status)]]
    raise errors.MalformedEvent(f"unknown jy status {leg}:{status}")


def dial_leg(vendor_call_id: str, listing: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Leg B among the child calls ``GET .../Calls.json?ParentCallSid=`` listed: the first
    created (one dial per call; a retried dial comes later); None when there is none."""
    calls = listing.get("calls")
    children = [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
    mine = [c for c in children if c.get("parent_call_sid") in (None, vendor_call_id)]
    mine.sort(key=lambda c: _rfc2822_or_none(c.get("date_created")) or 0)
    return mine[0] if mine else None


def resource_events(
    vendor_call_id: str,
    cc_call_id: str,
    resource: Mapping[str, Any],
    child: Mapping[str, Any] | None = None,
) -> list[events.CallEvent]:
    """Translate the call resource (leg A) and its child call (leg B) into the events they
    prove, with stable dedupe keys (``result:<CallSid>:<kind>``, whichever leg told it).

    Leg A: ``start_time`` is when A was dialled (``a_dialing``). Leg B is the child call the
    dial created when A answered: its ``date_created`` is A's answer (``a_answered``), its
    ``start_time`` when B was dialled (``b_dialing``); a child ``completed`` was answered and
    bridged ``duration`` whole seconds before its ``end_time`` (``b_answered`` and
    ``bridged``, as the ``Leg=B in-progress`` callback). These are the moments the callbacks
    carry, so a record rebuilt from them equals one built from the callbacks.

    A call that is over adds its hang-up at A's ``end_time`` with ``duration`` and
    ``recording_url``; its close is A's status (busy, no-answer, failed), else B's (busy →
    B busy, no-answer/failed → B unreachable, completed/canceled → normal); a ``completed``
    call with no talk and no child says nothing of why (OTHER). A live status gives only the
    times it has; no time is invented. Asking twice yields the same keys.
    """
    status = str(resource.get("status") or "unknown")

    def event(
        kind: EventKind, at: int, ch_state: str | None = None, **extra: Any
    ) -> events.CallEvent:
        key = f"result:{vendor_call_id}:{kind.value}"
        return helpers.vendor_event(
            cc_call_id=cc_call_id,
            vendor_call_id=vendor_call_id,
            kind=kind,
            at=at,
            ch_state=ch_state or f"call:{status}",
            dedupe_key=key,
            **extra,
        )

    proved: list[events.CallEvent] = []
    if (started := _rfc2822_or_none(resource.get("start_time"))) is not None:
        proved.append(event(EventKind.A_DIALING, started))
    child_status = str(child.get("status") or "unknown") if child is not None else None
    if child is not None:
        leg_b = f"child:{child_status}"
        if (created := _rfc2822_or_none(child.get("date_created"))) is not None:
            proved.append(event(EventKind.A_ANSWERED, created, leg_b))
        if (dialled := _rfc2822_or_none(child.get("start_time"))) is not None:
            proved.append(event(EventKind.B_DIALING, dialled, leg_b))
        child_end = _rfc2822_or_none(child.get("end_time"))
        talk = _seconds(child.get("duration"))
        if child_status == "completed" and child_end is not None and talk is not None:
            answered = child_end - talk * 1000
            proved.append(event(EventKind.B_ANSWERED, answered, leg_b))
            proved.append(event(EventKind.BRIDGED, answered, leg_b))
    ended = _rfc2822_or_none(resource.get("end_time"))
    if status in _RESOURCE_ENDS and ended is not None:
        duration = _seconds(resource.get("duration"))
        close_type = _RESOURCE_ENDS[status]
        if status in _NORMAL_ENDS and child_status in _CHILD_ENDS:
            close_type = _CHILD_ENDS[child_status]
        elif status == "completed" and not duration:
            close_type = CloseType.OTHER  # A answered, never bridged: B's fate is not told
        recording = resource.get("recording_url")
        url = f"{recording}.wav" if isinstance(recording, str) and recording else None
        proved.append(
            event(
                EventKind.HANGUP,
                ended,
                close_type=close_type,
                duration_s=duration,
                recording_url=url,
            )
        )
    return proved


def _rfc2822_or_none(value: object) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp() * 1000)
    except (ValueError, TypeError, OverflowError):
        return None


def _seconds(value: object) -> int | None:
    try:
        seconds = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if 0 <= seconds < 2**31 else None
