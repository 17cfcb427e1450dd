"""Channel jy: form-encoded REST and callbacks, modelled on Twilio's conventions; see VENDORS.md.

Quirks kept here: HTTP Basic auth; ``X-Jy-Signature`` is exactly Twilio's request validation
(full callback URL + every POST param name and value sorted by name, HMAC-SHA1, base64);
per-leg ``CallStatus`` callbacks, where ``Leg=B in-progress`` is the bridge; RFC 2822 times;
429 answers carry ``Retry-After``, which we honour before giving up. The call resource
(``GET .../Calls/{CallSid}.json``, leg A) and its child call (leg B, listed by Twilio's filter
``GET .../Calls.json?ParentCallSid=<CallSid>``) answer what became of a call whose callbacks
went missing.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from channels import base
from channels.http import RateLimit, json_object, send, stream_recording
from core.config import CoreSettings
from core.types import ChannelMode, CloseType, EventKind

# A 429's Retry-After is honoured three times (none longer than 10 s) before giving up.
RATE_LIMIT = RateLimit(retries=3, max_wait_s=10.0)
_LIVE = {"queued", "initiated", "ringing"}

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
# A call that cannot exist: the probe asks for it and expects the vendor's 404.
PROBE_SID = "CA" + "0" * 32
NOT_FOUND = "20404"


class JySettings(CoreSettings):
    """Channel jy's account, read as ``CC_JY_*`` (defaults point at the local simulator)."""

    jy_base_url: str = "http://127.0.0.1:9103"
    jy_account_sid: str = "ACjydemo0001"
    jy_auth_token: str = "jy-demo-auth-token"


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's request-validation signature of a form POST."""
    payload = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), "sha1").digest()
    return base64.b64encode(digest).decode()


class JyChannel:
    name = "jy"
    mode = ChannelMode.WEBHOOK

    def __init__(self, base_url: str, account_sid: str, auth_token: str, status_url: str,
                 timeout_s: float = 5.0) -> None:  # fmt: skip
        self._base = base_url.rstrip("/")
        self._credentials = (account_sid, auth_token)
        self._token = auth_token
        self._status_url = status_url
        self._root = f"/2010-04-01/Accounts/{account_sid}"
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout_s, auth=(account_sid, auth_token)
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def place_call(self, request: base.PlaceCallRequest) -> base.PlacedCall:
        form = {
            "To": request.caller,
            "BridgeTo": request.called,
            "From": request.display_to_a,
            "BridgeCallerId": request.display_to_b,
            "StatusCallback": self._status_url,
            "Record": "true" if request.record else "false",
            "TimeLimit": str(request.max_duration_s),
            "Timeout": "60",
            "Tag": request.cc_call_id,
            **request.prompt("Play", "Say"),
        }
        answer = await self._call("POST", "/Calls.json", form=form, placing=True)
        if not answer.get("sid"):
            # (a 201 without one is unknown: see _call)
            raise base.VendorServerError("jy answer without sid")
        return base.PlacedCall(vendor_call_id=base.fit(str(answer["sid"]), base.VENDOR_ID_MAX))

    async def call_result(self, vendor_call_id: str, cc_call_id: str) -> list[base.CallEvent]:
        """The call resource (leg A) and its child call (leg B), as unified events (see
        ``resource_events``)."""
        answer = await self._call("GET", f"/Calls/{vendor_call_id}.json")
        listing = await self._call("GET", "/Calls.json", params={"ParentCallSid": vendor_call_id})
        calls = listing.get("calls")
        children = [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
        mine = [c for c in children if c.get("parent_call_sid") in (None, vendor_call_id)]
        # The dial's leg: the first created (one dial per call; a retried dial comes later).
        mine.sort(key=lambda c: _rfc2822_or_none(c.get("date_created")) or 0)
        return resource_events(vendor_call_id, cc_call_id, answer, mine[0] if mine else None)

    async def probe(self) -> None:
        """Ask for a call that cannot exist: the vendor's 404 proves it is up and our
        credentials good (bad credentials answer 401 first)."""
        try:
            await self._call("GET", f"/Calls/{PROBE_SID}.json")
        except base.VendorRejected as exc:
            if exc.code != NOT_FOUND:
                raise

    async def hangup(self, vendor_call_id: str) -> None:
        path = f"/Calls/{vendor_call_id}.json"
        status = str((await self._call("GET", path)).get("status", ""))
        await self._call(
            "POST", path, form={"Status": "canceled" if status in _LIVE else "completed"}
        )

    async def _call(self, method: str, path: str, form: dict[str, str] | None = None,
                    params: dict[str, str] | None = None,
                    placing: bool = False) -> dict[str, Any]:  # fmt: skip
        response = await send(
            self._http, method, self._root + path, what=f"jy {path}", placing=placing,
            rate_limit=RATE_LIMIT, data=form, params=params,
        )  # fmt: skip
        answer = json_object(response)
        if placing and response.status_code == 201 and not (answer and answer.get("sid")):
            # 201 Created: the call exists even though we cannot read which one it is.
            raise base.VendorOutcomeUnknown(f"jy {path}: 201 without a readable sid")
        if answer is None:
            raise base.VendorServerError(f"jy {path}: unreadable answer")
        if response.status_code >= 400:
            raise base.VendorRejected(
                str(answer.get("code", response.status_code)), str(answer.get("message", ""))
            )
        return answer

    def open_recording(self, url: str) -> contextlib.AbstractAsyncContextManager[base.Recording]:
        """``RecordingUrl`` + ``.wav`` (added when the event was parsed), with HTTP Basic.

        The account's credentials go only to the vendor's own host, never to another
        address a callback might name.
        """
        own_host = urlsplit(url).netloc == urlsplit(self._base).netloc
        return stream_recording(self._http, url, "jy", auth=self._credentials if own_host else None)

    def verify_webhook(self, url: str, headers: Mapping[str, str], body: bytes) -> None:
        params = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        expected = twilio_signature(self._token, url, params)
        given = headers.get("x-jy-signature", "")
        # Bytes, not str: compare_digest refuses non-ASCII str with a TypeError.
        if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
            raise base.InvalidSignature("jy webhook signature does not verify")

    def parse_webhook(self, body: bytes, content_type: str) -> list[base.CallEvent]:
        form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
        try:
            sid, leg, status = form["CallSid"], form["Leg"], form["CallStatus"]
            at = int(parsedate_to_datetime(form["Timestamp"]).timestamp() * 1000)
            seq = int(form["SequenceNumber"])
        except (KeyError, ValueError, TypeError, OverflowError) as exc:
            raise base.MalformedEvent(f"not a jy callback: {exc.__class__.__name__}") from exc
        recording = form.get("RecordingUrl") or None

        def event(kind: EventKind, close_type: CloseType | None = None) -> base.CallEvent:
            return base.vendor_event(
                cc_call_id=base.cc_call_id_of(form.get("Tag")),
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
        raise base.MalformedEvent(f"unknown jy status {leg}:{status}")

    def webhook_ack(self) -> dict[str, str]:
        return {}


def build(settings: JySettings) -> JyChannel:
    return JyChannel(settings.jy_base_url, settings.jy_account_sid, settings.jy_auth_token,
                     base.status_url(settings, "jy"), settings.vendor_timeout_s)  # fmt: skip


def resource_events(
    vendor_call_id: str,
    cc_call_id: str,
    resource: Mapping[str, Any],
    child: Mapping[str, Any] | None = None,
) -> list[base.CallEvent]:
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
    ) -> base.CallEvent:
        key = f"result:{vendor_call_id}:{kind.value}"
        return base.vendor_event(cc_call_id=cc_call_id, vendor_call_id=vendor_call_id, kind=kind,
                                 at=at, ch_state=ch_state or f"call:{status}", dedupe_key=key,
                                 **extra)  # fmt: skip

    events = []
    if (started := _rfc2822_or_none(resource.get("start_time"))) is not None:
        events.append(event(EventKind.A_DIALING, started))
    child_status = str(child.get("status") or "unknown") if child is not None else None
    if child is not None:
        leg_b = f"child:{child_status}"
        if (created := _rfc2822_or_none(child.get("date_created"))) is not None:
            events.append(event(EventKind.A_ANSWERED, created, leg_b))
        if (dialled := _rfc2822_or_none(child.get("start_time"))) is not None:
            events.append(event(EventKind.B_DIALING, dialled, leg_b))
        child_end = _rfc2822_or_none(child.get("end_time"))
        talk = _seconds(child.get("duration"))
        if child_status == "completed" and child_end is not None and talk is not None:
            answered = child_end - talk * 1000
            events.append(event(EventKind.B_ANSWERED, answered, leg_b))
            events.append(event(EventKind.BRIDGED, answered, leg_b))
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
        events.append(event(EventKind.HANGUP, ended, close_type=close_type,
                            duration_s=duration, recording_url=url))  # fmt: skip
    return events


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
