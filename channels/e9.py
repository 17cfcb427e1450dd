"""Channel e9: JSON REST with an MD5 ``sig``, events pushed by HMAC-signed webhooks.

Modelled on Chinese CPaaS callback APIs (e.g. Cloopen); see VENDORS.md. Vendor times are
``yyyyMMddHHmmss`` in Beijing time (UTC+8, no daylight saving). ``CallResult`` answers what
became of one call (by callSid) when its webhooks went missing. A customer calling a 400
number arrives as a signed ``callin`` webhook, answered with a JSON action.

Here: the settings, the signatures and the REST calls. Elsewhere: Beijing times, the webhook
events and ``CallResult`` translated to unified events (``channels/e9_events.py``); the
``callin`` read and the action written (``channels/e9_inbound.py``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Annotated, Any

import httpx
from pydantic import Field, model_validator

from channels import e9_events, e9_inbound, errors, events, helpers, protocols
from channels.http import RecordingSource, read_object, send, stream_recording
from core.config import CoreSettings
from core.secrets import DemoDefault
from core.types import ChannelMode

API_VERSION = "2013-12-26"
OK = "000000"
# A webhook older than this is refused even with a valid signature (replay protection).
WEBHOOK_MAX_AGE_S = 3600


class E9Settings(CoreSettings):
    """Channel e9's account, read as ``CC_E9_*`` (defaults point at the local simulator)."""

    e9_base_url: str = "http://127.0.0.1:9101"
    # Calls per second the vendor allows (0: no limit). Place requests wait their turn on the
    # vendor's own task queue, which Temporal holds to this rate across every worker.
    e9_cps: float = Field(default=0.0, ge=0)
    e9_account_sid: str = "8a216da8e9demo0001"
    e9_auth_token: Annotated[str, DemoDefault("e9_base_url")] = "e9-demo-auth-token"
    # Where e9 sends ``callin`` (a customer calling a 400 number): set in the vendor's console,
    # read here by its simulator. Unset, CC's own ``{public_base_url}/webhooks/e9/inbound``.
    e9_inbound_url: str = ""
    # Origins (``https://host[:port]``) besides e9_base_url that e9's ``recordurl`` may name;
    # a recording anywhere else is refused (the URL comes in a webhook).
    e9_recording_origins: list[str] = []

    @model_validator(mode="after")
    def _default_e9_inbound_url(self) -> E9Settings:
        if not self.e9_inbound_url:
            self.e9_inbound_url = helpers.status_url(self, "e9") + "/inbound"
        return self


def request_sig(account_sid: str, auth_token: str, ts: str) -> str:
    return hashlib.md5((account_sid + auth_token + ts).encode()).hexdigest().upper()


def webhook_signature(auth_token: str, timestamp: str, body: bytes) -> str:
    return hmac.new(auth_token.encode(), timestamp.encode() + b"." + body, "sha256").hexdigest()


class E9Channel:
    name = "e9"
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
        self._recordings = recordings or RecordingSource.strict("e9", base_url)
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._status_url = status_url
        self._root = f"/{API_VERSION}/Accounts/{account_sid}"
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def place_call(self, request: events.PlaceCallRequest) -> events.PlacedCall:
        body: dict[str, Any] = {
            "from": request.caller,
            "to": request.called,
            "fromSerNum": request.display_to_a,
            "customerSerNum": request.display_to_b,
            "maxCallTime": str(request.max_duration_s),
            "needRecord": "1" if request.record else "0",
            "userData": request.cc_call_id,
            "statusUrl": self._status_url,
            **request.prompt("promptTone", "playText"),
        }
        answer = await self._call("POST", "/Calls/Callback", json_body=body, placing=True)
        try:
            return events.PlacedCall(
                vendor_call_id=helpers.fit(
                    str(answer["CallBack"]["callSid"]), helpers.VENDOR_ID_MAX
                )
            )
        except (KeyError, TypeError) as exc:
            raise errors.VendorOutcomeUnknown(
                f"e9 accepted without a callSid: {answer!r:.200}"
            ) from exc

    async def call_result(self, vendor_call_id: str, cc_call_id: str) -> list[events.CallEvent]:
        """``CallResult`` of one call, as unified events (see ``e9_events.result_events``)."""
        answer = await self._call("GET", "/CallResult", params={"callsid": vendor_call_id})
        result = answer.get("CallResult")
        if not isinstance(result, dict):
            raise errors.VendorServerError("e9 /CallResult: answer without CallResult")
        return e9_events.result_events(vendor_call_id, cc_call_id, result)

    async def hangup(self, vendor_call_id: str) -> None:
        await self._call("POST", "/Calls/CallCancel", json_body={"callSid": vendor_call_id})

    async def probe(self) -> None:
        await self._call("GET", "/AccountInfo")

    async def _call(
        self,
        method: str,
        path: str,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        placing: bool = False,
    ) -> dict[str, Any]:
        ts = e9_events.beijing_ts()
        auth = base64.b64encode(f"{self._account_sid}:{ts}".encode()).decode()
        query = {"sig": request_sig(self._account_sid, self._auth_token, ts), **(params or {})}
        headers = {"Authorization": auth, "Accept": "application/json"}
        response = await send(
            self._http,
            method,
            self._root + path,
            what=f"e9 {path}",
            placing=placing,
            params=query,
            json=json_body,
            headers=headers,
        )
        answer = read_object(response, f"e9 {path}")
        code = str(answer.get("statusCode", ""))
        if code != OK:
            raise errors.VendorRejected(code, str(answer.get("statusMsg", "")))
        return answer

    def open_recording(
        self, url: str
    ) -> contextlib.AbstractAsyncContextManager[protocols.Recording]:
        # ``recordurl`` is a plain unauthenticated GET: 404 until ready, 410 once expired.
        return stream_recording(self._recordings, url)

    def verify_webhook(self, url: str, headers: Mapping[str, str], body: bytes) -> None:
        timestamp = headers.get("x-e9-timestamp", "")
        given = headers.get("x-e9-signature", "")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise errors.InvalidSignature("e9 webhook signature does not verify")
        expected = webhook_signature(self._auth_token, timestamp, body)
        # Bytes, not str: compare_digest refuses non-ASCII str with a TypeError.
        if not hmac.compare_digest(given.lower().encode(), expected.encode()):
            raise errors.InvalidSignature("e9 webhook signature does not verify")
        if abs(time.time() - int(timestamp)) > WEBHOOK_MAX_AGE_S:
            raise errors.InvalidSignature("e9 webhook timestamp out of range")

    def parse_webhook(self, body: bytes, content_type: str) -> list[events.CallEvent]:
        return e9_events.webhook_events(body)

    def webhook_ack(self) -> dict[str, str]:
        return {"statusCode": OK}

    def parse_inbound(self, body: bytes, content_type: str) -> events.InboundCall:
        """A ``callin`` webhook (see ``e9_inbound.parse_callin``)."""
        return e9_inbound.parse_callin(body)

    def inbound_reply(self, answer: events.InboundAnswer, inbound_url: str) -> tuple[bytes, str]:
        """The JSON action e9 expects (see ``e9_inbound.action_reply``). e9 comes back with
        ``callin`` to the URL set in its console, so ``inbound_url`` is not sent."""
        return e9_inbound.action_reply(answer)


def build(settings: E9Settings) -> E9Channel:
    return E9Channel(
        settings.e9_base_url,
        settings.e9_account_sid,
        settings.e9_auth_token,
        helpers.status_url(settings, "e9"),
        settings.vendor_timeout_s,
        RecordingSource.of(settings, "e9", settings.e9_base_url, settings.e9_recording_origins),
    )
