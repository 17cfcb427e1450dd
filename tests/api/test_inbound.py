"""POST /webhooks/{channel}/inbound: a customer calling a 400 number, answered by CC (issue 13).

On the API alone (Temporal faked): the raw request is stored first; a bound idle extension
gets ``dial`` to the agent's phone showing main_num and becomes an open inbound record whose
line is leased; no extension keyed gets ``ivr``; an unbound or busy extension gets ``reject``
and a closed record (close_type 2); an unknown number gets ``reject`` and no record; a
vendor's retry gets the same answer and no second call; a bad signature is 401."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlmodel import Session, select

from channels.e9 import webhook_signature
from store.db import session_scope
from store.lines import ensure_line
from store.models import AgentLine, CallRecordRow, VendorEvent
from tests.api.conftest import UNIT_LINE, Harness

MAIN, CUSTOMER, AGENT_PHONE = "+864008001234", "+8613900000042", "+8613800000011"


def callin(harness: Harness, sid: str, ext: str = "", **extra: Any) -> dict[str, Any]:
    """The e9 ``callin`` request for a customer's call ``sid``, signed as e9 signs."""
    raw = json.dumps({"eventId": f"ci-{sid}-{ext}", "callSid": sid, "event": "callin",
                      "caller": CUSTOMER.removeprefix("+86"), "called": "4008001234", "ext": ext,
                      "timestamp": "20261126120000", "userData": "", **extra}).encode()  # fmt: skip
    ts = str(int(time.time()))
    signature = webhook_signature(harness.state.settings.e9_auth_token, ts, raw)
    return {"content": raw, "headers": {"x-e9-timestamp": ts, "x-e9-signature": signature,
                                        "content-type": "application/json"}}  # fmt: skip


async def ask(harness: Harness, sid: str, ext: str = "") -> dict[str, Any]:
    response = await harness.api.post("/webhooks/e9/inbound", **callin(harness, sid, ext))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture
async def bound(harness: Harness) -> Harness:
    put = await harness.api.put(f"/v1/extensions/{MAIN}/12", json={
        "channel": UNIT_LINE[0], "agent": UNIT_LINE[1], "phone": AGENT_PHONE})  # fmt: skip
    assert put.status_code == 200, put.text
    return harness


def rows(harness: Harness) -> list[CallRecordRow]:
    with Session(harness.state.engine) as session:
        return list(session.exec(select(CallRecordRow)).all())


def line_holder(harness: Harness) -> str | None:
    with Session(harness.state.engine) as session:
        line = session.exec(select(AgentLine).where(AgentLine.agent == UNIT_LINE[1])).one()
        return line.lease_call_id


async def test_a_bound_extension_is_dialled_showing_the_main_number(bound: Harness) -> None:
    answer = await ask(bound, "CS1", "12")
    assert {k: answer[k] for k in ("action", "to", "display", "record")} == {
        "action": "dial", "to": AGENT_PHONE, "display": MAIN, "record": True}  # fmt: skip
    assert CUSTOMER.removeprefix("+86") not in json.dumps(answer)  # the agent never sees it
    [row] = rows(bound)
    assert answer["userData"] == row.cc_call_id
    assert (row.direction, row.state, row.caller, row.called, row.main_num, row.ext_num,
            row.vendor_call_id, row.channel, row.agent) == (
        "in", "init", CUSTOMER, AGENT_PHONE, MAIN, "12", "CS1", "e9", UNIT_LINE[1])  # fmt: skip
    assert bound.temporal.started == [f"call-{row.cc_call_id}"]
    assert line_holder(bound) == row.cc_call_id  # the agent is on this call: no callback now
    with Session(bound.state.engine) as session:
        [stored] = session.exec(select(VendorEvent)).all()
    assert (stored.kind, stored.cc_call_id, stored.applied) == ("callin", row.cc_call_id, True)


async def test_a_vendors_retry_gets_the_same_answer_and_no_second_call(bound: Harness) -> None:
    first = await ask(bound, "CS2", "12")
    again = await ask(bound, "CS2", "12")
    assert again == first
    assert len(rows(bound)) == 1 and len(bound.temporal.started) == 1


async def test_no_extension_keyed_asks_for_one(bound: Harness) -> None:
    answer = await ask(bound, "CS3")
    assert answer["action"] == "ivr" and answer["collect"] == 4 and answer["playText"]
    assert rows(bound) == [] and bound.temporal.started == []
    then = await ask(bound, "CS3", "12")  # the vendor comes back with the digits keyed
    assert then["action"] == "dial"


async def test_an_unbound_extension_is_refused_and_recorded_with_2(bound: Harness) -> None:
    answer = await ask(bound, "CS4", "99")
    assert answer["action"] == "reject" and answer["playText"]
    [row] = rows(bound)
    assert (row.direction, row.state, row.close_type, row.ext_num) == ("in", "close", "2", "99")
    assert bound.temporal.started == [] and line_holder(bound) is None


async def test_a_busy_agent_is_refused_and_recorded_with_2(bound: Harness) -> None:
    busy = await bound.api.post("/v1/calls", json={"caller": AGENT_PHONE,
                                                    "called": "+8613900000001"})  # fmt: skip
    assert busy.status_code == 201
    answer = await ask(bound, "CS5", "12")
    assert answer["action"] == "reject"
    inbound = [r for r in rows(bound) if r.direction == "in"]
    assert [(r.state, r.close_type) for r in inbound] == [("close", "2")]
    assert line_holder(bound) == busy.json()["id"]  # the callback keeps its line


async def test_an_unknown_number_is_refused_without_a_record(harness: Harness) -> None:
    answer = await ask(harness, "CS6", "12")
    assert answer["action"] == "reject"
    assert rows(harness) == []
    with Session(harness.state.engine) as session:
        [stored] = session.exec(select(VendorEvent)).all()
    assert (stored.kind, stored.note) == ("callin", "unknown_main_num")  # kept for operators


async def test_a_forged_or_garbled_request_is_refused_and_places_nothing(bound: Harness) -> None:
    forged = callin(bound, "CS7", "12")
    forged["headers"]["x-e9-signature"] = "0" * 64
    assert (await bound.api.post("/webhooks/e9/inbound", **forged)).status_code == 401
    garbled = callin(bound, "CS8", "12")
    garbled["content"] = b"{not json"
    # The signature covers the body: a garbled body no longer verifies.
    assert (await bound.api.post("/webhooks/e9/inbound", **garbled)).status_code == 401
    no_sid = callin(bound, "", "12")
    assert (await bound.api.post("/webhooks/e9/inbound", **no_sid)).status_code == 400
    assert rows(bound) == [] and bound.temporal.started == []


async def test_temporal_refusing_the_call_frees_the_line_and_rejects(bound: Harness) -> None:
    bound.temporal.start_error = RuntimeError("down")
    answer = await ask(bound, "CS9", "12")
    assert answer["action"] == "reject"
    assert line_holder(bound) is None and rows(bound) == []


async def test_a_channel_without_inbound_calls_has_no_inbound_url(harness: Harness) -> None:
    response = await harness.api.post("/webhooks/hw/inbound", content=b"{}")
    assert response.status_code == 404


async def test_an_agent_line_of_another_channel_is_dialled_by_the_calling_vendor(
    harness: Harness,
) -> None:
    with session_scope(harness.state.engine) as session:
        ensure_line(session, "unit-t", "hw", "10001", "+8610880000009")
    put = await harness.api.put(f"/v1/extensions/{MAIN}/5", json={
        "channel": "hw", "agent": "10001", "phone": AGENT_PHONE})  # fmt: skip
    assert put.status_code == 200
    answer = await ask(harness, "CS10", "5")
    assert (answer["action"], answer["to"]) == ("dial", AGENT_PHONE)
    [row] = rows(harness)
    assert (row.channel, row.agent) == ("e9", "10001")  # the vendor carrying it, the seat held
