"""The jy simulator's customer calling a 400 number: Twilio's voice webhook out, CC's TwiML in.

The voice webhook goes to the number's URL (``CC_JY_INBOUND_URL``), signed as callbacks; the
TwiML CC answers is parsed and checked (``read_twiml``) and obeyed: ``<Gather>`` posts the
keyed ``Digits`` to its ``action``, ``<Dial>`` runs the call (``dialled_call``: the customer
is leg A, on the line at once; the ``<Number>`` is leg B, shown ``callerId``, or the
customer's number when there is none, as Twilio does), ``<Say><Hangup/>`` ends it. The dial's
callbacks go to the ``<Number statusCallback>`` (only its ``statusCallbackEvent``s), with
``Tag`` that URL's ``Tag`` query parameter.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urljoin, urlsplit
from xml.etree import ElementTree

import httpx

from core.types import Direction, InboundAction
from simulators.common import now_ms
from simulators.inbound import BadAnswer, InboundReply, InboundStart
from simulators.jy_calls import NUMBER, JyCall

WEBHOOK_TIMEOUT_S = 15.0  # Twilio waits this long for a voice webhook's TwiML
DEFAULT_TIME_LIMIT_S = 14400  # a <Dial>'s timeLimit when it names none
# What a TwiML verb may say here (anything else is refused: the simulator does not play it).
GATHER_ATTRS = {"numDigits", "action", "method", "timeout", "finishOnKey"}
DIAL_ATTRS = {"callerId", "record", "timeLimit", "timeout"}
NUMBER_ATTRS = {"statusCallback", "statusCallbackEvent", "statusCallbackMethod"}
RECORD_MODES = {
    "do-not-record",
    "record-from-answer",
    "record-from-ringing",
    "record-from-answer-dual",
    "record-from-ringing-dual",
}


def voice_webhook(
    account_sid: str, sid: str, start: InboundStart, digits: str | None
) -> dict[str, str]:
    """Twilio's voice webhook params of the customer's call ``sid`` (``Digits``: once keyed)."""
    params = {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": "ringing",
        "Called": start.main_num,
        "Caller": start.caller,
        "Direction": "inbound",
        "From": start.caller,
        "To": start.main_num,
    }
    if digits is not None:
        params["Digits"] = digits
    return params


def dialled_call(sid: str, start: InboundStart, reply: InboundReply) -> JyCall:
    """The customer's call ``sid`` as CC's ``<Dial>`` runs it."""
    shown = reply.display or start.caller  # no callerId: Twilio shows the caller
    form = {
        "To": start.main_num,
        "From": start.caller,
        "BridgeTo": reply.agent,
        "BridgeCallerId": shown,
        "StatusCallback": reply.status_url,
        "Record": "true" if reply.record else "false",
        "TimeLimit": str(reply.time_limit_s),
        "Tag": reply.tag,
    }
    return JyCall(
        sid=sid,
        form=form,
        created=now_ms(),
        direction=Direction.IN,
        shown_to_b=shown,
        status_events=reply.status_events,
    )


def read_twiml(answer: httpx.Response, url: str) -> InboundReply:
    """CC's TwiML, parsed and checked: ``<Gather><Say/></Gather>``, ``<Dial><Number/></Dial>``
    or ``<Say/><Hangup/>``; anything else is ``BadAnswer``."""
    media = answer.headers.get("content-type", "").split(";")[0].strip()
    if media not in ("application/xml", "text/xml"):
        raise BadAnswer(f"TwiML must be XML, not {media!r}")
    try:
        root = ElementTree.fromstring(answer.content)
    except ElementTree.ParseError as exc:
        raise BadAnswer(f"TwiML is not XML: {exc}") from exc
    verbs = [verb.tag for verb in root]
    if root.tag != "Response":
        raise BadAnswer(f"TwiML root is <{root.tag}>, not <Response>")
    if verbs == ["Gather"]:
        return _gather(root[0], url)
    if verbs == ["Dial"]:
        return _dial(root[0])
    if verbs == ["Say", "Hangup"] and not len(root[1]) and not (root[1].text or "").strip():
        return InboundReply(action=InboundAction.REJECT)
    raise BadAnswer(f"TwiML the simulator does not play: {verbs}")


def _gather(gather: ElementTree.Element, url: str) -> InboundReply:
    _only(gather, GATHER_ATTRS, ["Say"])
    digits = gather.get("numDigits", "")
    if not digits.isdigit() or not 1 <= int(digits) <= 32:
        raise BadAnswer(f"<Gather numDigits={digits!r}>")
    if gather.get("method", "POST") != "POST":
        raise BadAnswer("<Gather> posts its digits (method POST)")
    action = gather.get("action")
    return InboundReply(
        action=InboundAction.IVR,
        collect=int(digits),
        next_url=urljoin(url, action) if action else None,
    )


def _dial(dial: ElementTree.Element) -> InboundReply:
    _only(dial, DIAL_ATTRS, ["Number"])
    number = dial[0]
    _only(number, NUMBER_ATTRS, [])
    agent, caller_id = (number.text or "").strip(), dial.get("callerId", "")
    if not NUMBER.fullmatch(agent) or (caller_id and not NUMBER.fullmatch(caller_id)):
        raise BadAnswer(f"<Dial callerId={caller_id!r}><Number>{agent!r}")
    record, limit = dial.get("record", "do-not-record"), dial.get("timeLimit", "")
    events = frozenset(number.get("statusCallbackEvent", "completed").split())
    if (
        record not in RECORD_MODES
        or (limit and not limit.isdigit())
        or not events <= {"initiated", "ringing", "answered", "completed"}
        or number.get("statusCallbackMethod", "POST") != "POST"
    ):
        raise BadAnswer(f"<Dial> or <Number> attributes jy does not take: {dial.attrib}")
    callback = number.get("statusCallback", "")
    tag = parse_qs(urlsplit(callback).query).get("Tag", [""])[0]
    return InboundReply(
        action=InboundAction.DIAL,
        agent=agent,
        display=caller_id,
        record=record.startswith("record-from"),
        tag=tag,
        status_url=callback,
        status_events=events,
        time_limit_s=int(limit or DEFAULT_TIME_LIMIT_S),
    )


def _only(verb: ElementTree.Element, attrs: set[str], children: list[str]) -> None:
    if set(verb.attrib) - attrs or [child.tag for child in verb] != children:
        raise BadAnswer(
            f"<{verb.tag}> with {dict(verb.attrib)} and {[child.tag for child in verb]}"
        )
