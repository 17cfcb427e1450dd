"""Inbound 400-number calls end to end (issue 13), on e9 and jy: the simulator plays the
customer (``POST /_sim/inbound``), CC answers the vendor, and the call becomes an ordinary
record followed by its own CallWorkflow up to the recording copy. What each leg's phone was
shown is read from the simulator: the agent sees main_num, never the customer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.calls import TIMESTAMPS, place, wait_closed
from tests.stack import Stack
from tests.support import wait_for

pytestmark = pytest.mark.e2e

CHANNELS = ("e9", "jy")
# A 400 number and two lines per channel, so the channels' tests never share an extension.
MAIN = {"e9": "+864008001001", "jy": "+864008002002"}
LINE = {"e9": "e9-4", "jy": "jy-4"}
BUSY_LINE = {"e9": "e9-5", "jy": "jy-5"}
AGENT_PHONE = {"e9": "+8613800000411", "jy": "+8613800000511"}


async def bind(stack: Stack, channel: str, ext: str, agent: str) -> None:
    body = {"channel": channel, "agent": agent, "phone": AGENT_PHONE[channel]}
    put = await stack.api.put(f"/v1/extensions/{MAIN[channel]}/{ext}", json=body)
    assert put.status_code == 200, put.text


async def customer_calls(
    stack: Stack, channel: str, customer: str, ext: str | None
) -> dict[str, Any]:
    body = {"main_num": MAIN[channel], "caller": customer, "ext": ext}
    answer = await stack.sims[channel].post("/_sim/inbound", json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def record_of(stack: Stack, channel: str, call_sid: str) -> dict[str, Any]:
    """The inbound record of the vendor's call ``call_sid`` (found by the new filters)."""
    params = {"direction": "in", "main_num": MAIN[channel], "limit": 500}

    async def found() -> dict[str, Any] | None:
        items = (await stack.api.get("/v1/calls", params=params)).json()["items"]
        return next((i for i in items if i["call_id"] == call_sid), None)

    return await wait_for(found, 30, f"the inbound record of {channel} {call_sid}")


async def answers_to_vendor(stack: Stack, channel: str) -> list[str]:
    log = (await stack.sims[channel].get("/_sim/log")).json()
    return [str(e["answer"]) for e in log["events"] if "answer" in e]


async def line_holder(stack: Stack, channel: str, agent: str) -> str | None:
    lines = (await stack.api.get("/v1/lines", params={"channel": channel, "limit": 500})).json()
    holder: str | None = next(i for i in lines["items"] if i["agent"] == agent)["call"]
    return holder


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_customer_reaches_the_bound_agent_who_sees_only_the_main_number(
    stack: Stack, channel: str
) -> None:
    """Bound, idle: the vendor asks with no extension first, CC answers ivr, the customer
    keys it, CC answers dial. Dialled, every timestamp, close_type 0, the recording copied
    (an extension keyed at once is tests/api/test_inbound.py's)."""
    customer = f"+861390000{CHANNELS.index(channel)}042"
    await bind(stack, channel, "12", LINE[channel])
    result = await customer_calls(stack, channel, customer, "12")
    assert result["outcome"] == "dialled", result
    record = await record_of(stack, channel, result["call_sid"])
    closed = await wait_closed(stack.api, record["id"])
    assert (closed["direction"], closed["main_num"], closed["ext_num"]) == (
        "in", MAIN[channel], "12")  # fmt: skip
    assert (closed["caller"], closed["called"]) == (customer, AGENT_PHONE[channel])
    assert closed["close_type"] == 0, closed
    assert [name for name in TIMESTAMPS if closed[name] is None] == []

    async def copied() -> dict[str, Any] | None:
        view: dict[str, Any] = (await stack.api.get(f"/v1/calls/{record['id']}")).json()
        return view if view["audio_url"] else None

    await wait_for(copied, 30, "the recording copied")
    calls = (await stack.sims[channel].get("/_sim/calls")).json()
    shown = next(c for c in calls if c.get("callSid", c.get("sid")) == result["call_sid"])
    assert (shown["direction"], shown["shown_to_b"]) == ("in", MAIN[channel])
    assert all(customer[-8:] not in answer for answer in await answers_to_vendor(stack, channel))
    assert await line_holder(stack, channel, LINE[channel]) is None  # free again


@pytest.mark.parametrize("channel", CHANNELS)
async def test_an_unbound_extension_is_refused_and_recorded_with_2(
    stack: Stack, channel: str
) -> None:
    await bind(stack, channel, "12", LINE[channel])  # the number is known, "77" is not bound
    result = await customer_calls(stack, channel, "+8613900007777", "77")
    assert result["outcome"] == "rejected", result
    record = await record_of(stack, channel, result["call_sid"])
    assert (record["state"], record["close_type"], record["ext_num"]) == ("close", 2, "77")


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_busy_agent_is_refused_and_recorded_with_2(stack: Stack, channel: str) -> None:
    """The agent's line is on a callback (the customer never hangs up: scenario 85)."""
    user = f"inbound-busy-{channel}"
    binding = {"channel": channel, "agent": BUSY_LINE[channel]}
    assert (await stack.api.put(f"/v1/bindings/{user}", json=binding)).status_code == 200
    callback = await place(stack.api, user=user, called="+8613900000085", max_duration=120)
    await bind(stack, channel, "13", BUSY_LINE[channel])
    result = await customer_calls(stack, channel, "+8613900008888", "13")
    assert result["outcome"] == "rejected", result
    record = await record_of(stack, channel, result["call_sid"])
    assert (record["state"], record["close_type"]) == ("close", 2)
    assert await line_holder(stack, channel, BUSY_LINE[channel]) == callback["id"]
    assert (await stack.api.post(f"/v1/calls/{callback['id']}/hangup")).status_code == 202
    await wait_closed(stack.api, callback["id"])


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_customer_who_keys_nothing_is_asked_and_the_call_ends(
    stack: Stack, channel: str
) -> None:
    await bind(stack, channel, "12", LINE[channel])
    result = await customer_calls(stack, channel, "+8613900009999", None)
    assert result["outcome"] == "ivr_no_digits", result
    items = (await stack.api.get("/v1/calls", params={"direction": "in", "limit": 500})).json()
    assert all(i["call_id"] != result["call_sid"] for i in items["items"])  # no call, no record
