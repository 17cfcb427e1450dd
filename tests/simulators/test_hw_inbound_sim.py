"""The hw simulator's customer calling a 400 number CEC hosts (``POST /_sim/inbound``): CEC's
IVR routes the call to the seat whose work number is the extension keyed, if it is signed in
and idle; else CEC answers the customer itself and the seat sees nothing."""

from __future__ import annotations

import re
from typing import Any

from tests.simulators.hw_support import PASSWORD, PHONE, SEAT, Gateway

MAIN, CUSTOMER = "+864001234567", "+8613900000002"
MAIN_DIGITS, CUSTOMER_DIGITS = "4001234567", "13900000002"
INBOUND = ["AgentEvent_Ringing", "AgentEvent_Auto_Answer", "AgentOther_PhoneAlerting",
           "AgentOther_PhoneOffhook", "AgentState_Busy", "AgentEvent_Talking",
           "AgentMediaEvent_Record", "AgentEvent_Customer_Release", "AgentEvent_Call_Release",
           "AgentOther_PhoneRelease", "AgentState_Ready"]  # fmt: skip


async def call_in(gw: Gateway, **body: Any) -> dict[str, Any]:
    body = {"main_num": MAIN, "caller": CUSTOMER, "ext": SEAT, **body}
    answer = await gw.http.post("/_sim/inbound", json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    assert re.fullmatch(r"\d{10}-\d+", result["callid"])
    return result


async def test_a_call_to_an_idle_seat_rings_it_showing_its_phone_the_main_number(
    gw: Gateway,
) -> None:
    await gw.agent.signed_in()
    result = await call_in(gw)
    assert result["routed"] is True and result["reason"] is None
    call_id = result["callid"]
    events = await gw.call_events()
    types = [e["eventType"] for e in events]
    assert types[:7] == INBOUND[:7] and set(types[7:9]) == set(INBOUND[7:9])
    assert types[9:] == INBOUND[9:]
    offer = {"caller": CUSTOMER_DIGITS, "called": MAIN_DIGITS, "callid": call_id}
    assert events[0]["content"] == events[1]["content"] == offer
    talking = events[5]["content"]
    assert (talking["callid"], talking["caller"], talking["called"]) == (
        call_id, CUSTOMER_DIGITS, MAIN_DIGITS)  # fmt: skip
    assert talking["feature"]
    [call] = await gw.calls()
    assert call["callid"] == call_id and call["direction"] == "in"
    assert call["phonenum"] == PHONE  # the seat's phone was rung...
    assert call["shown_to_b"] == MAIN_DIGITS  # ...showing the 400 number...
    assert CUSTOMER_DIGITS not in (call["shown_to_a"], call["shown_to_b"])  # ...never the customer
    assert call["bridged_at"] and call["ended_at"] and call["recordFile"]


async def test_a_seat_signed_in_without_autoanswer_only_rings(gw: Gateway) -> None:
    body = {"password": PASSWORD, "phonenum": PHONE, "autoanswer": False}
    answer = await gw.http.put(f"/agentgateway/resource/onlineagent/{SEAT}", json=body)
    gw.agent.take_guid(answer)
    assert [(await gw.agent.poll())["event"]["eventType"] for _ in range(2)] == [
        "AgentOther_InService", "AgentState_Ready"]  # fmt: skip
    assert (await call_in(gw))["routed"] is True
    types = [e["eventType"] for e in await gw.call_events()]
    assert "AgentEvent_Ringing" in types and "AgentEvent_Auto_Answer" not in types
    assert "AgentEvent_Talking" in types


async def test_a_busy_seat_is_not_rung(gw: Gateway) -> None:
    await gw.agent.signed_in()
    assert (await gw.agent.callout())["retcode"] == "0"
    await gw.call_events(until="AgentEvent_Talking")
    busy = await call_in(gw)
    assert (busy["routed"], busy["reason"]) == (False, "busy")
    types = [e["eventType"] for e in await gw.call_events()]
    assert "AgentEvent_Ringing" not in types
    assert [c["direction"] for c in await gw.calls()] == ["out"]  # nothing more reached CC


async def test_a_seat_that_is_not_signed_in_or_unknown_is_not_rung(gw: Gateway) -> None:
    for body, reason in [({}, "not_signed_in"), ({"ext": "99999"}, "unknown_ext"),
                         ({"ext": None}, "no_ext")]:  # fmt: skip
        result = await call_in(gw, **body)
        assert (result["routed"], result["reason"]) == (False, reason)
    assert await gw.calls() == []
    assert (await gw.seat())["queued"] == 0


async def test_a_second_call_to_a_ringing_seat_finds_it_busy(gw: Gateway) -> None:
    await gw.agent.signed_in()
    first = await call_in(gw)
    second = await call_in(gw, caller="+8613900000003")
    assert first["routed"] and (second["routed"], second["reason"]) == (False, "busy")
    assert first["callid"] != second["callid"]
    await gw.call_events()
    assert len(await gw.calls()) == 1


async def test_an_unusable_main_number_is_refused(gw: Gateway) -> None:
    answer = await gw.http.post("/_sim/inbound", json={"main_num": "+", "caller": CUSTOMER,
                                                       "ext": SEAT})  # fmt: skip
    assert answer.status_code == 422


async def test_the_agent_s_phone_failing_hands_the_customer_back_to_cec(gw: Gateway) -> None:
    await gw.agent.signed_in(phone="13800000081")  # the agent's phone is busy
    assert (await call_in(gw))["routed"] is True
    types = [e["eventType"] for e in await gw.call_events()]
    assert types[:2] == ["AgentEvent_Ringing", "AgentEvent_Auto_Answer"]
    assert "AgentEvent_Call_Release" in types and "AgentEvent_Talking" not in types
    assert "AgentEvent_Customer_Release" not in types
    assert (await gw.seat())["callid"] is None  # the seat is free again
