"""Channel jy: form-encoded REST and callbacks, modelled on Twilio's conventions; see VENDORS.md.

Quirks kept here: HTTP Basic auth; ``X-Jy-Signature`` is exactly Twilio's request validation
(full callback URL + every POST param name and value sorted by name, HMAC-SHA1, base64);
429 answers carry ``Retry-After``: honoured here before giving up, but for a place request,
whose wait is CallWorkflow's (a durable timer, on the same vendor: ``VendorRateLimited``).
The call resource (``GET .../Calls/{CallSid}.json``, leg A) and its child call (leg B, listed
by Twilio's filter ``GET .../Calls.json?ParentCallSid=<CallSid>``) answer what became of a
call whose callbacks went missing.

Elsewhere: the per-leg ``CallStatus`` callbacks and the call resources are translated to
unified events in ``channels/jy_events.py``; a customer calling a 400 number arrives as
Twilio's voice webhook, signed as the callbacks, and is answered TwiML, both read and written
in ``channels/jy_inbound.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from pydantic import Field, model_validator
from twilio.request_validator import RequestValidator

from channels import errors, events, helpers, jy_events, jy_inbound, protocols
from channels.http import RateLimit, RecordingSource, json_object, send, stream_recording
from core.config import CoreSettings
from core.secrets import DemoDefault
from core.types import ChannelMode

# A 429's Retry-After is honoured three times (none longer than 10 s) before giving up; a
# place request's is not (it would outlast the place activity's timeout, and so become an
# unknown outcome): the workflow waits it out instead.
RATE_LIMIT = RateLimit(retries=3, max_wait_s=10.0)
_LIVE = {"queued", "initiated", "ringing"}

# A call that cannot exist: the probe asks for it and expects the vendor's 404.
PROBE_SID = "CA" + "0" * 32
NOT_FOUND = "20404"


class JySettings(CoreSettings):
    """Channel jy's account, read as ``CC_JY_*`` (defaults point at the local simulator)."""

    jy_base_url: str = "http://127.0.0.1:9103"
    # Calls per second the vendor allows (0: no limit). Place requests wait their turn on the
    # vendor's own task queue, which Temporal holds to this rate across every worker.
    jy_cps: float = Field(default=0.0, ge=0)
    jy_account_sid: str = "ACjydemo0001"
    jy_auth_token: Annotated[str, DemoDefault("jy_base_url")] = "jy-demo-auth-token"
    # Where jy sends the voice webhook of a customer calling a 400 number: set on the number
    # in the vendor's console, read here by its simulator. Unset, CC's own
    # ``{public_base_url}/webhooks/jy/inbound``.
    jy_inbound_url: str = ""
    # Origins (``https://host[:port]``) besides jy_base_url that jy's ``RecordingUrl`` may
    # name (without the account's credentials); a recording anywhere else is refused.
    jy_recording_origins: list[str] = []

    @model_validator(mode="after")
    def _default_jy_inbound_url(self) -> JySettings:
        if not self.jy_inbound_url:
            self.jy_inbound_url = helpers.status_url(self, "jy") + "/inbound"
        return self


class FormParams(dict[str, list[str]]):
    """A form POST's params as Twilio's validator reads a multi-dict: every value of a name
    (a repeated name is signed with all its values)."""

    @classmethod
    def of(cls, body: bytes) -> FormParams:
        return cls.of_pairs(
            parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        )

    @classmethod
    def of_pairs(cls, pairs: Iterable[tuple[str, str]]) -> FormParams:
        params = cls()
        for name, value in pairs:
            params.setdefault(name, []).append(value)
        return params

    def getall(self, name: str) -> list[str]:
        return self[name]


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's request-validation signature of a form POST, by Twilio's own library."""
    form = FormParams.of_pairs(params)
    return str(RequestValidator(auth_token).compute_signature(url, form))


class JyChannel:
    name = "jy"
    mode = ChannelMode.WEBHOOK
    line_id_pattern = protocols.E164_PATTERN  # a number the vendor rents the company

    def __init__(
        self,
        base_url: str,
        account_sid: str,
        auth_token: str,
        status_url: str,
        timeout_s: float = 5.0,
        recordings: RecordingSource | None = None,
    ) -> None:
        self._recordings = recordings or RecordingSource.strict("jy", base_url)
        self._base = base_url.rstrip("/")
        self._credentials = (account_sid, auth_token)
        self._validator = RequestValidator(auth_token)
        self._status_url = status_url
        self._root = f"/2010-04-01/Accounts/{account_sid}"
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout_s, auth=(account_sid, auth_token)
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def place_call(self, request: events.PlaceCallRequest) -> events.PlacedCall:
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
            raise errors.VendorServerError("jy answer without sid")
        return events.PlacedCall(
            vendor_call_id=helpers.fit(str(answer["sid"]), helpers.VENDOR_ID_MAX)
        )

    async def call_result(self, vendor_call_id: str, cc_call_id: str) -> list[events.CallEvent]:
        """The call resource (leg A) and its child call (leg B), as unified events (see
        ``jy_events.resource_events``)."""
        answer = await self._call("GET", f"/Calls/{helpers.path_segment(vendor_call_id)}.json")
        listing = await self._call("GET", "/Calls.json", params={"ParentCallSid": vendor_call_id})
        child = jy_events.dial_leg(vendor_call_id, listing)
        return jy_events.resource_events(vendor_call_id, cc_call_id, answer, child)

    async def probe(self) -> None:
        """Ask for a call that cannot exist: the vendor's 404 proves it is up and our
        credentials good (bad credentials answer 401 first)."""
        try:
            await self._call("GET", f"/Calls/{PROBE_SID}.json")
        except errors.VendorRejected as exc:
            if exc.code != NOT_FOUND:
                raise

    async def hangup(self, vendor_call_id: str) -> None:
        path = f"/Calls/{helpers.path_segment(vendor_call_id)}.json"
        status = str((await self._call("GET", path)).get("status", ""))
        await self._call(
            "POST", path, form={"Status": "canceled" if status in _LIVE else "completed"}
        )

    async def _call(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        placing: bool = False,
    ) -> dict[str, Any]:
        response = await send(
            self._http,
            method,
            self._root + path,
            what=f"jy {path}",
            placing=placing,
            rate_limit=None if placing else RATE_LIMIT,
            data=form,
            params=params,
        )
        answer = json_object(response)
        if placing and response.status_code == 201 and not (answer and answer.get("sid")):
            # 201 Created: the call exists even though we cannot read which one it is.
            raise errors.VendorOutcomeUnknown(f"jy {path}: 201 without a readable sid")
        if answer is None:
            raise errors.VendorServerError(f"jy {path}: unreadable answer")
        if response.status_code >= 400:
            raise errors.VendorRejected(
                str(answer.get("code", response.status_code)), str(answer.get("message", ""))
            )
        return answer

    def open_recording(
        self, url: str
    ) -> contextlib.AbstractAsyncContextManager[protocols.Recording]:
        """``RecordingUrl`` + ``.wav`` (added when the event was parsed), with HTTP Basic.

        The account's credentials go only to the vendor's own host, never to another
        address a callback might name.
        """
        own_host = urlsplit(url).netloc == urlsplit(self._base).netloc
        auth = self._credentials if own_host else None
        return stream_recording(self._recordings, url, auth=auth)

    def verify_webhook(self, url: str, headers: Mapping[str, str], body: bytes) -> None:
        """Twilio's request validation (its library): the full URL and every POST param."""
        given = headers.get("x-jy-signature", "")
        try:
            valid = self._validator.validate(url, FormParams.of(body), given)
        except ValueError:  # a URL the library cannot take apart (a port that is no number)
            valid = False
        if not valid:
            raise errors.InvalidSignature("jy webhook signature does not verify")

    def parse_webhook(self, body: bytes, content_type: str) -> list[events.CallEvent]:
        return jy_events.callback_events(body)

    def webhook_ack(self) -> dict[str, str]:
        return {}

    def parse_inbound(self, body: bytes, content_type: str) -> events.InboundCall:
        """Twilio's voice webhook (see ``jy_inbound.parse_voice_webhook``)."""
        return jy_inbound.parse_voice_webhook(body)

    def inbound_reply(self, answer: events.InboundAnswer, inbound_url: str) -> tuple[bytes, str]:
        """TwiML whose dial calls back to this channel's status URL (``jy_inbound.twiml_reply``)."""
        return jy_inbound.twiml_reply(answer, inbound_url, self._status_url)


def build(settings: JySettings) -> JyChannel:
    return JyChannel(
        settings.jy_base_url,
        settings.jy_account_sid,
        settings.jy_auth_token,
        helpers.status_url(settings, "jy"),
        settings.vendor_timeout_s,
        RecordingSource.of(settings, "jy", settings.jy_base_url, settings.jy_recording_origins),
    )
