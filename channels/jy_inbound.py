"""Channel jy's side of a customer calling a 400 number (VENDORS.md, jy; ``JyChannel``'s
``parse_inbound`` and ``inbound_reply``).

The call arrives as Twilio's voice webhook (``CallSid``, ``From``, ``To``, ``Digits`` after a
``<Gather>``), signed as the callbacks (``JyChannel.verify_webhook``); CC answers TwiML, built
with Twilio's own ``VoiceResponse``. The dial's ``<Number statusCallback>`` carries CC's call
id as the URL's ``Tag`` query parameter, which jy echoes as the ``Tag`` of the call's
callbacks, as it does for a call CC placed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

from twilio.twiml.voice_response import VoiceResponse

from channels import errors, events, helpers
from core.types import InboundAction

# An inbound call's fields: numbers and ids are short; ``Digits`` is what the customer keyed.
FIELD_MAX = 64
DIGITS_KEYED = re.compile(r"[0-9*#]{0,32}")
# Every status of the dialled agent's call, so CC hears of each leg as for a placed call.
STATUS_EVENTS = "initiated ringing answered completed"


def parse_voice_webhook(body: bytes) -> events.InboundCall:
    """Twilio's voice webhook: ``From`` (the customer) dialled ``To`` (a 400 number);
    ``Digits`` once a ``<Gather>`` collected some. It has no time: stamped at receipt."""
    form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    try:
        sid, caller, called = (
            _field(form, "CallSid"),
            _field(form, "From", empty=True),
            _field(form, "To"),
        )
        digits = _field(form, "Digits", empty=True) if "Digits" in form else ""
        if not DIGITS_KEYED.fullmatch(digits):
            raise ValueError("Digits are not keyed digits")
    except (KeyError, ValueError) as exc:
        raise errors.MalformedEvent(f"not a jy voice webhook: {exc}") from exc
    return events.InboundCall(
        vendor_call_id=helpers.fit(sid, helpers.VENDOR_ID_MAX),
        caller=caller,
        main_num=called,
        ext_num=digits or None,
        at=time.time_ns() // 1_000_000,
        # The first request and the one after the Gather differ; a resent one does not.
        dedupe_key=helpers.fit(f"inbound:{sid}:{digits}", helpers.DEDUPE_MAX),
    )


def twiml_reply(
    answer: events.InboundAnswer, inbound_url: str, status_url: str
) -> tuple[bytes, str]:
    """TwiML: ``<Gather>`` the extension (its digits posted back to ``inbound_url``),
    ``<Dial>`` the agent showing ``display`` (its callbacks to ``status_url``, tagged), or
    ``<Say>`` why and ``<Hangup>``."""
    response = VoiceResponse()
    if answer.action is InboundAction.DIAL:
        if not (answer.to and answer.display and answer.cc_call_id):
            raise ValueError("a dial answer needs to, display and cc_call_id")
        record = "record-from-answer" if answer.record else "do-not-record"
        dial = response.dial(caller_id=answer.display, record=record)
        dial.number(
            answer.to,
            status_callback=tagged_status_url(status_url, answer.cc_call_id),
            status_callback_event=STATUS_EVENTS,
            status_callback_method="POST",
        )
    elif answer.action is InboundAction.IVR:
        gather = response.gather(num_digits=answer.collect, action=inbound_url, method="POST")
        gather.say(answer.prompt or "")
    else:
        response.say(answer.prompt or "")
        response.hangup()
    return response.to_xml().encode(), "application/xml"


def tagged_status_url(status_url: str, cc_call_id: str) -> str:
    """CC's callback URL with the call's id as ``Tag``: TwiML has no Tag of its own."""
    joiner = "&" if urlsplit(status_url).query else "?"
    return status_url + joiner + urlencode({"Tag": cc_call_id})


def _field(form: Mapping[str, str], name: str, empty: bool = False) -> str:
    """A field of a voice webhook, short and storable; ``KeyError`` when absent."""
    value = form[name]
    if len(value) > FIELD_MAX or not helpers.encodable(value):
        raise ValueError(f"{name} is too long")
    if not value and not empty:
        raise ValueError(f"{name} is empty")
    return value
