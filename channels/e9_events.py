"""Channel e9's times, webhook events and ``CallResult``, translated to unified events.

Vendor times are ``yyyyMMddHHmmss`` in Beijing time (UTC+8, no daylight saving). A webhook
carries one event of one call; ``CallResult`` answers what became of one call (by callSid)
when its webhooks went missing, as the events the webhooks would have carried.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from channels import errors, events, helpers
from core.types import CloseType, EventKind

BEIJING = timezone(timedelta(hours=8))

EVENT_KINDS = {
    "callA": EventKind.A_DIALING,
    "ringA": EventKind.A_RINGING,
    "answerA": EventKind.A_ANSWERED,
    "callB": EventKind.B_DIALING,
    "ringB": EventKind.B_RINGING,
    "answerB": EventKind.B_ANSWERED,
    "bridge": EventKind.BRIDGED,
    "hangup": EventKind.HANGUP,
}

BYETYPE_CLOSE = {
    0: CloseType.NORMAL,  # A hung up
    1: CloseType.NORMAL,  # B hung up
    -1: CloseType.A_UNREACHABLE,  # A no answer
    -2: CloseType.A_BUSY,
    -3: CloseType.A_UNREACHABLE,
    -4: CloseType.B_UNREACHABLE,  # B no answer
    -5: CloseType.B_BUSY,
    -6: CloseType.B_UNREACHABLE,
    -7: CloseType.MAX_DURATION,
    -8: CloseType.CHANNEL_SERVER_ERROR,
    -9: CloseType.NORMAL,  # cancelled at CC's request: an ordinary hang-up for the app
}


# CallResult's per-leg times → the events they prove (in the order the call goes).
RESULT_TIMES = {
    "callTime": EventKind.A_DIALING,
    "answerATime": EventKind.A_ANSWERED,
    "callBTime": EventKind.B_DIALING,
    "answerBTime": EventKind.B_ANSWERED,
    "bridgeTime": EventKind.BRIDGED,
}


def beijing_ts(at: datetime | None = None) -> str:
    return (at or datetime.now(BEIJING)).astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


def parse_beijing_ts(value: str) -> int:
    moment = datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    return int(moment.timestamp() * 1000)


def webhook_events(body: bytes) -> list[events.CallEvent]:
    """An e9 webhook's event: its ``event`` names the step; a ``hangup`` says why
    (``byetype``) and how long the call talked."""
    try:
        payload = json.loads(body)
        kind = EVENT_KINDS[payload["event"]]
        at = parse_beijing_ts(str(payload["timestamp"]))
        event_id = str(payload["eventId"])
        call_sid = str(payload["callSid"])
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise errors.MalformedEvent(f"not an e9 event: {exc.__class__.__name__}") from exc
    ch_state = str(payload["event"])
    close_type = duration_s = None
    if kind is EventKind.HANGUP:
        byetype = helpers.int_or_none(payload.get("byetype"))
        close_type = BYETYPE_CLOSE.get(byetype, CloseType.OTHER) if byetype is not None else None
        ch_state = f"hangup:{byetype}"
        duration_s = _seconds(payload.get("duration"))
    return [
        helpers.vendor_event(
            cc_call_id=helpers.cc_call_id_of(payload.get("userData")),
            vendor_call_id=call_sid,
            kind=kind,
            at=at,
            ch_state=ch_state,
            close_type=close_type,
            recording_url=_text(payload.get("recordurl")),
            dedupe_key=event_id,
            duration_s=duration_s,
        )
    ]


def result_events(
    vendor_call_id: str, cc_call_id: str, result: Mapping[str, Any]
) -> list[events.CallEvent]:
    """Translate a ``CallResult`` into the events it proves, with stable dedupe keys.

    Each leg time the vendor reports gives its event, whatever the state (a ``ringing`` or
    ``talking`` call gives the leg events known so far): ``callTime`` → ``a_dialing``,
    ``answerATime`` → ``a_answered``, ``callBTime`` → ``b_dialing``, ``answerBTime`` →
    ``b_answered``, ``bridgeTime`` → ``bridged``. These are the moments the webhooks carry, so
    a record rebuilt from the result equals one built from the webhooks. An ``ended`` call
    adds its hang-up at ``endTime`` with ``byetype``, ``duration`` (so CC can derive conn_time
    when no bridge time is known) and ``recordurl``. No time is ever invented: a missing
    time gives no event. Asking twice yields the same keys, so nothing new is stored.
    """
    state = _text(result.get("state")) or "unknown"

    def event(kind: EventKind, at: int, ch_state: str, **extra: Any) -> events.CallEvent:
        key = f"result:{vendor_call_id}:{kind.value}"
        return helpers.vendor_event(
            cc_call_id=cc_call_id,
            vendor_call_id=vendor_call_id,
            kind=kind,
            at=at,
            ch_state=ch_state,
            dedupe_key=key,
            **extra,
        )

    proved: list[events.CallEvent] = []
    for field, kind in RESULT_TIMES.items():
        if (at := _beijing_or_none(result.get(field))) is not None:
            proved.append(event(kind, at, f"result:{state}"))
    ended_at = _beijing_or_none(result.get("endTime"))
    if state == "ended" and ended_at is not None:
        byetype = helpers.int_or_none(result.get("byetype"))
        close_type = CloseType.OTHER
        if byetype is not None:
            close_type = BYETYPE_CLOSE.get(byetype, CloseType.OTHER)
        proved.append(
            event(
                EventKind.HANGUP,
                ended_at,
                f"hangup:{byetype}",
                close_type=close_type,
                duration_s=_seconds(result.get("duration")),
                recording_url=_text(result.get("recordurl")),
            )
        )
    return proved


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value and helpers.encodable(value) else None


def _beijing_or_none(value: object) -> int | None:
    try:
        return parse_beijing_ts(value) if isinstance(value, str) and value else None
    except (ValueError, OverflowError):
        return None


def _seconds(value: object) -> int | None:
    seconds = helpers.int_or_none(value)
    return seconds if seconds is not None and 0 <= seconds < 2**31 else None
