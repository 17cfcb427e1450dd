"""The hw simulator is a CC-Gateway: seats and guids, one-event long polls, callouts, faults."""

from __future__ import annotations

import asyncio
import json
import re
import struct
import time
import warnings

import httpx
import pytest

from simulators.hw_events import alaw_byte
from tests.simulators.hw_support import (
    BASE,
    HOLD_MS,
    PASSWORD,
    PHONE,
    ROOT,
    SEAT,
    SHOWN,
    Agent,
    B,
    Gateway,
    types_of,
)
from tests.support import wait_for

STATUS = f"onlineagent/{SEAT}/agentstatus"
NORMAL = ["AgentOther_PhoneAlerting", "AgentOther_PhoneOffhook", "AgentState_Busy",
          "AgentEvent_Customer_Alerting", "AgentEvent_Talking", "AgentMediaEvent_Record",
          "AgentEvent_Customer_Release", "AgentEvent_Call_Release", "AgentOther_PhoneRelease",
          "AgentState_Ready"]  # fmt: skip
# a leg's fate (last two digits) → OUTBOUND_DETECT_EVENT's detect, the hangup reason
FATES = [("81", {47}, "busy"), ("82", {8}, "no_answer"), ("83", {10, 48}, "unreachable"),
         ("84", {9}, "busy")]  # fmt: skip


# -- sessions -----------------------------------------------------------------------------
async def test_sign_in_gives_a_guid_a_cookie_and_the_first_events(gw: Gateway) -> None:
    answer = await gw.http.put(f"{ROOT}/onlineagent/{SEAT}",
                               json={"password": PASSWORD, "phonenum": PHONE})  # fmt: skip
    body = answer.json()
    assert answer.status_code == 200 and body["retcode"] == "0"
    assert body["result"]["workno"] == SEAT and body["result"]["loginTime"].isdigit()
    assert {"vdnid", "workno", "loginTime"} <= set(body["result"])
    assert re.fullmatch(r"JSESSIONID=[0-9a-f-]{36}\.AgentGateway1", answer.headers["set-guid"])
    assert "AGW_ROUTE=AgentGateway1" in answer.headers["set-cookie"]
    gw.agent.take_guid(answer)
    first, second = await gw.agent.poll(), await gw.agent.poll()
    assert (first["event"]["eventType"], second["event"]["eventType"]) == (
        "AgentOther_InService", "AgentState_Ready"
    )  # fmt: skip
    assert first["retcode"] == "0" and "result" not in first and first["event"]["workNo"] == SEAT
    status = await gw.agent.ask("GET", STATUS)
    assert status["result"] == {"agentState": 4, "isWorking": False}


async def test_sign_in_refusals_and_forcelogin(gw: Gateway) -> None:
    agent = gw.agent
    assert (await agent.sign_in(password="wrong"))["retcode"] == "100-004"
    assert (await Agent(gw.http, "99999").sign_in())["retcode"] == "100-004"
    assert (await agent.sign_in(phone="+8613800000001"))["retcode"] == "100-013"
    assert (await agent.sign_in())["retcode"] == "0"
    first = agent.guid
    assert (await agent.sign_in())["retcode"] == "100-002"
    assert (await agent.sign_in(force=True))["retcode"] == "0" and agent.guid != first
    stale = await gw.http.get(f"{ROOT}/{STATUS}", headers={"Guid": first})
    assert stale.json()["retcode"] == "000-003"
    assert (await agent.ask("GET", STATUS))["retcode"] == "0"


async def test_every_call_needs_the_guid_and_the_cookie(gw: Gateway) -> None:
    agent = gw.agent
    assert (await agent.ask("GET", STATUS))["retcode"] == "100-006"  # not signed in
    await agent.sign_in()
    no_guid = await gw.http.get(f"{ROOT}/{STATUS}")
    assert no_guid.status_code == 200 and no_guid.json()["retcode"] == "000-003"
    async with httpx.AsyncClient(transport=gw.transport, base_url=BASE) as cookieless:
        answer = await cookieless.get(f"{ROOT}/{STATUS}", headers={"Guid": agent.guid})
    assert answer.json()["retcode"] == "000-003"
    assert (await agent.ask("DELETE", f"onlineagent/{SEAT}/logout"))["retcode"] == "0"
    assert (await agent.ask("GET", STATUS))["retcode"] == "100-006"


async def test_the_guid_rotates_and_a_replaced_one_lasts_its_grace(gw: Gateway) -> None:
    await gw.config(guid_interval_ms=100, guid_grace_ms=500)
    agent = gw.agent
    await agent.sign_in()
    first = agent.guid

    async def rotated() -> str | None:
        return (await agent.send("GET", STATUS)).headers.get("set-guid")

    await wait_for(rotated, 5, "a new Set-GUID")
    assert agent.guid != first
    old = await gw.http.get(f"{ROOT}/{STATUS}", headers={"Guid": first})
    assert old.json()["retcode"] == "0"  # within its grace...
    assert old.headers["set-guid"].startswith("JSESSIONID=")  # ...pointing at the newest

    async def stale() -> bool:
        answer = await gw.http.get(f"{ROOT}/{STATUS}", headers={"Guid": first})
        return bool(answer.json()["retcode"] == "000-003")

    await wait_for(stale, 5, "the replaced guid to go stale")
    assert (await agent.ask("GET", STATUS))["retcode"] == "0"


async def test_a_poll_answers_one_event_or_null_when_idle(gw: Gateway) -> None:
    await gw.agent.sign_in()
    assert (await types_of(gw.agent)) == "AgentOther_InService"  # Ready waits its turn
    assert (await types_of(gw.agent)) == "AgentState_Ready"
    started = time.monotonic()
    idle = await gw.agent.poll()
    assert idle == {"message": "", "retcode": "0", "event": None}
    assert time.monotonic() - started >= HOLD_MS / 1000 * 0.9


async def test_a_second_concurrent_poll_is_refused(gw: Gateway) -> None:
    assert (await gw.view())["concurrent_polls_refused"] == 0
    await gw.agent.signed_in()
    held = asyncio.create_task(gw.agent.poll())

    async def polling() -> bool:
        return bool((await gw.seat())["polling"])

    await wait_for(polling, 5, "the first poll to be held")
    second = await gw.agent.poll()
    assert second["retcode"] == "000-007" and second["event"] is None
    assert (await held) == {"message": "", "retcode": "0", "event": None}
    assert (await gw.view())["concurrent_polls_refused"] == 1


async def test_a_seat_without_polls_is_signed_out(gw: Gateway) -> None:
    await gw.config(idle_signout_ms=200)
    await gw.agent.sign_in()

    async def signed_out() -> bool:
        return not (await gw.seat())["signed_in"]

    await wait_for(signed_out, 5, "the idle seat's sign-out")
    farewell = await gw.agent.poll()
    assert farewell["retcode"] == "0"
    assert farewell["event"]["eventType"] == "AgentOther_ShutdownService"
    assert (await gw.agent.poll())["retcode"] == "100-006"
    assert (await gw.agent.ask("GET", STATUS))["retcode"] == "100-006"


# -- calls --------------------------------------------------------------------------------
async def test_a_callout_shows_the_seat_its_events_with_their_quirks(gw: Gateway) -> None:
    await gw.agent.signed_in()
    placed = await gw.agent.callout()
    assert placed["retcode"] == "0" and re.fullmatch(r"\d{10}-\d+", placed["result"])
    call_id = placed["result"]
    events = await gw.call_events()
    types = [e["eventType"] for e in events]
    assert types[:6] == NORMAL[:6] and set(types[6:8]) == set(NORMAL[6:8])
    assert types[8:] == NORMAL[8:]
    by_type = {e["eventType"]: e for e in events}
    assert all(call_id not in json.dumps(e) for e in events[:3])  # before B: no id at all
    assert by_type["AgentOther_PhoneAlerting"]["content"] is None
    assert by_type["AgentEvent_Customer_Alerting"]["content"]["callid"] == call_id
    assert by_type["AgentEvent_Customer_Alerting"]["content"]["otherPhone"] == B
    talking = by_type["AgentEvent_Talking"]["content"]
    assert (talking["callid"], talking["caller"], talking["called"]) == (call_id, SHOWN, B)
    assert "feature" in talking
    assert by_type["AgentMediaEvent_Record"]["content"]["callId"] == call_id
    assert by_type["AgentEvent_Call_Release"]["content"] == call_id
    assert by_type["AgentEvent_Customer_Release"]["content"] == {"callid": call_id, "number": B}
    assert by_type["AgentOther_PhoneRelease"]["content"] == {"phoneState": 3}
    stamped = ["eventGenTime" in e for e in events]
    assert any(stamped) and not all(stamped)
    [call] = await gw.calls()
    assert (call["callid"], call["seat"], call["callappdata"]) == (call_id, SEAT, "cc-1")
    assert call["bridged_at"] and call["ended_at"] and call["reason"] == "b_hung_up"


async def test_the_release_pair_comes_in_either_order(gw: Gateway) -> None:
    await gw.agent.signed_in()
    orders = []
    for data in ("cc-1", "cc-2"):
        assert (await gw.agent.callout(data=data))["retcode"] == "0"
        types = [e["eventType"] for e in await gw.call_events()]
        orders.append([t for t in types if t in NORMAL[6:8]])
    assert orders[0] == orders[1][::-1]


@pytest.mark.parametrize(("fate", "detect", "reason"), FATES)
async def test_leg_a_fails_before_the_agent_phone_goes_off_hook(
    gw: Gateway, fate: str, detect: set[int], reason: str
) -> None:
    await gw.agent.signed_in(phone=PHONE[:-2] + fate)
    call_id = (await gw.agent.callout())["result"]
    events = await gw.call_events()
    types = [e["eventType"] for e in events]
    assert "AgentOther_PhoneOffhook" not in types and "AgentState_Ready" not in types
    fail = types.index("AgentEvent_Call_Out_Fail")
    assert types[fail + 1] == "AgentEvent_Connect_Fail"
    assert events[fail]["content"] == events[fail + 1]["content"] == call_id
    assert types[fail - 1] == "OUTBOUND_DETECT_EVENT"
    assert events[fail - 1]["content"]["callId"] == call_id
    assert events[fail - 1]["content"]["detect"] in detect
    rang = fate in ("82", "84")
    assert ("AgentOther_PhoneAlerting" in types) is rang
    assert (types[-1] == "AgentOther_PhoneRelease") is rang
    assert [c["reason"] for c in await gw.calls()] == [f"a_{reason}"]


@pytest.mark.parametrize(("fate", "detect", "reason"), FATES)
async def test_leg_b_fails_after_the_agent_phone_went_off_hook(
    gw: Gateway, fate: str, detect: set[int], reason: str
) -> None:
    await gw.agent.signed_in()
    call_id = (await gw.agent.callout(called=B[:-2] + fate))["result"]
    events = await gw.call_events()
    types = [e["eventType"] for e in events]
    assert types[:3] == NORMAL[:3] and "AgentEvent_Talking" not in types
    assert ("AgentEvent_Customer_Alerting" in types) is (fate in ("82", "84"))
    fail = types.index("AgentEvent_Call_Out_Fail")
    assert types[fail - 1 : fail + 2] == [
        "OUTBOUND_DETECT_EVENT", "AgentEvent_Call_Out_Fail", "AgentEvent_Connect_Fail"
    ]  # fmt: skip
    assert events[fail - 1]["content"]["detect"] in detect
    assert events[fail]["content"] == events[fail + 1]["content"] == call_id
    assert types[-2:] == ["AgentOther_PhoneRelease", "AgentState_Ready"]
    assert [c["reason"] for c in await gw.calls()] == [f"b_{reason}"]


async def test_release_ends_a_call_that_never_hangs_up(gw: Gateway) -> None:
    agent = gw.agent
    await agent.signed_in()
    call_id = (await agent.callout(called=B[:-2] + "85"))["result"]
    await gw.call_events(until="AgentEvent_Talking")
    refused = await agent.ask("DELETE", f"onlineagent/{SEAT}/logout")
    assert refused["retcode"] == "100-010"  # no sign-out while talking
    status = await agent.ask("GET", STATUS)
    assert status["result"] == {"agentState": 7, "isWorking": True}
    assert (await agent.ask("DELETE", f"voicecall/{SEAT}/release"))["retcode"] == "0"
    events = await gw.call_events()
    assert {"AgentEvent_Customer_Release", "AgentEvent_Call_Release"} <= {
        e["eventType"] for e in events
    }
    assert [e["eventType"] for e in events][-2:] == NORMAL[-2:]
    assert [(c["callid"], c["reason"]) for c in await gw.calls()] == [(call_id, "cancelled")]
    assert (await agent.ask("DELETE", f"voicecall/{SEAT}/release"))["retcode"] == "200-017"
    assert (await agent.ask("DELETE", f"onlineagent/{SEAT}/logout"))["retcode"] == "0"


async def test_callout_refusals(gw: Gateway) -> None:
    agent = gw.agent
    assert (await agent.callout())["retcode"] == "100-006"
    await agent.signed_in()
    assert (await agent.callout(called="+8613900000002"))["retcode"] == "200-001"
    assert (await agent.callout(data="x" * 1025))["retcode"] == "000-002"
    assert (await agent.callout(called=B[:-2] + "85"))["retcode"] == "0"
    assert (await agent.callout(data="cc-2"))["retcode"] == "100-007"  # the seat is not idle
    assert [c["callappdata"] for c in await gw.calls()] == ["cc-1"]


async def test_the_recording_is_an_alaw_wav_once_ready(gw: Gateway) -> None:
    await gw.http.put("/_sim/timing", json={"recording_delay_ms": 1500})
    await gw.agent.signed_in()
    await gw.agent.callout()
    events = await gw.call_events()
    [record] = [e["content"] for e in events if e["eventType"] == "AgentMediaEvent_Record"]
    resource = f"recordfile/{SEAT}"
    early = await gw.agent.send("GET", resource, params={"recordId": record["fileName"]})
    assert early.json()["retcode"] == "104-005"
    unknown = await gw.agent.send("GET", resource, params={"recordId": "Y:/1/0/nope.V3"})
    assert unknown.json()["retcode"] == "104-005"

    async def ready() -> httpx.Response | None:
        answer = await gw.agent.send("GET", resource, params={"recordId": record["fileName"]})
        return answer if answer.headers["content-type"] == "audio/wav" else None

    audio = (await wait_for(ready, 10, "the recording")).content
    assert audio[:4] == b"RIFF" and audio[8:16] == b"WAVEfmt "
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", audio[20:36])
    assert (tag, channels, rate, bits) == (6, 1, 8000, 8)  # WAVE_FORMAT_ALAW, 8 kHz mono


def test_the_alaw_encoder_matches_the_reference() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    every = range(-32768, 32768)
    assert bytes(alaw_byte(s) for s in every) == audioop.lin2alaw(struct.pack("<65536h", *every), 2)


# -- faults -------------------------------------------------------------------------------
async def test_guid_expired_answers_000_003_once(gw: Gateway) -> None:
    await gw.agent.sign_in()
    await gw.faults(gateway="guid_expired")
    assert (await gw.agent.ask("GET", STATUS))["retcode"] == "000-003"
    assert (await gw.agent.ask("GET", STATUS))["retcode"] == "0"


async def test_signed_out_mid_call_leaves_the_call_running(gw: Gateway) -> None:
    agent = gw.agent
    await agent.signed_in()
    call_id = (await agent.callout(called=B[:-2] + "85"))["result"]
    await gw.call_events(until="AgentEvent_Talking")
    await gw.faults(gateway="signed_out")
    assert (await agent.ask("GET", STATUS))["retcode"] == "100-006"
    assert (await agent.poll())["retcode"] == "100-006"
    [call] = await gw.calls()
    assert call["ended_at"] is None  # the call goes on at the vendor
    assert (await agent.sign_in())["retcode"] == "0"
    assert [await types_of(agent) for _ in range(2)] == ["AgentOther_InService", "AgentState_Busy"]
    assert (await agent.ask("GET", STATUS))["result"]["isWorking"] is True
    assert (await agent.ask("DELETE", f"voicecall/{SEAT}/release"))["retcode"] == "0"
    releases = [e["content"] for e in await gw.call_events()
                if e["eventType"] == "AgentEvent_Call_Release"]  # fmt: skip
    assert releases == [call_id]


async def test_failover_answers_105_006_until_sign_in(gw: Gateway) -> None:
    await gw.agent.signed_in()
    await gw.faults(gateway="failover")
    assert (await gw.agent.ask("GET", STATUS))["retcode"] == "105-006"
    assert (await gw.agent.poll())["retcode"] == "105-006"
    assert (await gw.agent.sign_in())["retcode"] == "0"  # no forcelogin needed
    assert (await gw.agent.ask("GET", STATUS))["retcode"] == "0"
    assert (await gw.view())["node"] == "AgentGateway2"


async def test_slow_poll_answers_late(gw: Gateway) -> None:
    await gw.config(slow_poll_ms=400)
    await gw.agent.sign_in()
    await gw.faults(gateway="slow_poll")
    started = time.monotonic()
    assert (await types_of(gw.agent)) == "AgentOther_InService"
    assert time.monotonic() - started >= 0.35


async def test_seat_taken_refuses_sign_in(gw: Gateway) -> None:
    await gw.faults(gateway="seat_taken")
    assert (await gw.agent.sign_in())["retcode"] == "100-015"
    assert (await gw.agent.sign_in(force=True))["retcode"] == "100-015"


@pytest.mark.parametrize(
    ("fault", "status", "retcode"),
    [("http_500", 500, None), ("malformed", 200, None), ("rate_limit", 429, None),
     ("auth_reject", 200, "000-003")],
)  # fmt: skip
async def test_place_call_faults_refuse_the_callout(
    gw: Gateway, fault: str, status: int, retcode: str | None
) -> None:
    await gw.agent.signed_in()
    await gw.faults(place_call=fault)
    answer = await gw.agent.send("PUT", f"voicecall/{SEAT}/callout", json={"called": B})
    assert answer.status_code == status
    if retcode:
        assert answer.json()["retcode"] == retcode
    if fault == "malformed":
        assert answer.headers["content-type"].startswith("text/html")
    assert await gw.calls() == []


@pytest.mark.parametrize(("fault", "placed"), [("timeout", False), ("timeout_after_accept", True)])
async def test_a_callout_that_times_out(gw: Gateway, fault: str, placed: bool) -> None:
    await gw.agent.signed_in()
    await gw.faults(place_call=fault)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(gw.agent.callout(data="cc-unknown"), 0.5)
    await gw.faults()
    assert [c["callappdata"] for c in await gw.calls()] == (["cc-unknown"] if placed else [])
    if placed:  # the call runs: its events reach the seat
        assert "AgentEvent_Talking" in [e["eventType"] for e in await gw.call_events()]


async def test_duplicate_and_drop_faults_act_on_call_events(gw: Gateway) -> None:
    await gw.agent.signed_in()
    await gw.faults(delivery={"duplicate": 1.0})
    await gw.agent.callout()
    types = [e["eventType"] for e in await gw.call_events()]
    assert sorted(types) == sorted(NORMAL * 2)
    await gw.faults(delivery={"drop": 1.0})
    await gw.agent.callout(data="cc-2")
    assert await gw.call_events() == []
    log = (await gw.http.get("/_sim/log")).json()["events"]
    assert any(e["status"] == "dropped" for e in log)


async def test_a_seats_events_stay_in_order_under_the_reorder_fault(gw: Gateway) -> None:
    """One queue per seat: a gateway cannot reorder what it answers (pushing vendors can)."""
    await gw.agent.signed_in()
    await gw.faults(delivery={"reorder": True}, seed=7)
    await gw.agent.callout()
    types = [e["eventType"] for e in await gw.call_events()]
    assert types == NORMAL


async def test_delay_fault_queues_call_events_late(gw: Gateway) -> None:
    await gw.agent.signed_in()
    await gw.faults(delivery={"delay_ms": 400})
    started = time.monotonic()
    await gw.agent.callout()
    events = await gw.call_events(until="AgentState_Ready")
    assert time.monotonic() - started >= 0.35
    assert sorted(e["eventType"] for e in events) == sorted(NORMAL)


async def test_the_poll_fault_breaks_the_poll(gw: Gateway) -> None:
    await gw.agent.sign_in()
    await gw.faults(poll="http_500")
    answer = await gw.agent.send("GET", f"agentevent/{SEAT}")
    assert answer.status_code == 500


# -- control and scope --------------------------------------------------------------------
async def test_the_log_shows_requests_and_the_events_sent(gw: Gateway) -> None:
    await gw.agent.signed_in()
    await gw.agent.callout(called=B[:-2] + "85")
    await gw.call_events(until="AgentEvent_Talking")
    await gw.agent.ask("DELETE", f"voicecall/{SEAT}/release")
    await gw.call_events()
    log = (await gw.http.get("/_sim/log")).json()
    asked = {(r["method"], r["path"]) for r in log["requests"]}
    assert {("PUT", f"{ROOT}/onlineagent/{SEAT}"), ("GET", f"{ROOT}/agentevent/{SEAT}"),
            ("PUT", f"{ROOT}/voicecall/{SEAT}/callout"),
            ("DELETE", f"{ROOT}/voicecall/{SEAT}/release")} <= asked  # fmt: skip
    sent = [json.loads(e["body"])["eventType"] for e in log["events"] if e["status"] == "sent"]
    assert {"AgentOther_InService", "AgentEvent_Talking", "AgentEvent_Call_Release"} <= set(sent)


async def test_the_control_api_checks_its_input(gw: Gateway) -> None:
    assert (await gw.http.put("/_sim/gateway", json={"no_such_timer": 1})).status_code == 422
    assert (await gw.http.put("/_sim/faults", json={"gateway": "meteor"})).status_code == 422
    assert (await gw.view())["config"]["poll_hold_ms"] == HOLD_MS
    assert (await gw.http.get("/openapi.json")).status_code == 200


async def test_only_gateway_endpoints_are_served(gw: Gateway) -> None:
    old = await gw.http.post("/rest/httpsessions/click2Call/v2.0", json={})
    assert old.status_code == 404
