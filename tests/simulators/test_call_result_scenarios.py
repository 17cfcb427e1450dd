"""``call_result`` rebuilds exactly the record the webhooks would have built, in every scenario.

For each simulator scenario (81 busy, 82 no answer, 83 unreachable, 84 rejects while ringing,
85 runs to max duration, on leg A and on leg B; and a normal call), on e9 and jy, the scenario
runs twice at once on two simulators: once clean, once with every webhook dropped for good.

- Clean run: the record folded from the webhooks CC got equals the record folded from
  ``call_result`` of the same call (every timestamp, the close_type, the talk seconds).
- Dropped run: no webhook arrived; the record folded from ``call_result`` equals the record the
  dropped webhooks (as the simulator logged them, parsed by the adapter) would have built, and
  it has the same close_type and the same timestamps set as the clean run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from callflow.record import CallRecord, apply_events
from channels.e9 import E9Channel
from channels.events import CallEvent, PlaceCallRequest
from channels.jy import JyChannel
from channels.registry import Settings
from core.types import CloseType, DisplayPolicy
from simulators import e9 as e9_sim
from simulators import jy as jy_sim
from tests.support import ServerThread, free_port, wait_for

SID, TOKEN = "ACscenarios", "scenario-token"
TIMING = {"ring_ms": 100, "talk_ms": 1000, "no_answer_ms": 300, "recording_delay_ms": 0}
MAX_S = 2  # > talk_ms: only the 85 numbers reach it
COMPARED = ("a_call_time", "a_offhook_time", "b_call_time", "b_offhook_time", "conn_time",
            "close_time", "close_type", "duration")  # fmt: skip
TIMES = ("a_call_time", "a_offhook_time", "b_call_time", "b_offhook_time", "conn_time",
         "close_time")  # fmt: skip
A_OK, B_OK = "+8613800000001", "+8613900000002"

# (id, A's number, B's number, close_type on e9, close_type on jy)
SCENARIOS = [
    ("normal", A_OK, B_OK, CloseType.NORMAL, CloseType.NORMAL),
    ("a-busy", "+8613800000081", B_OK, CloseType.A_BUSY, CloseType.A_BUSY),
    ("a-no-answer", "+8613800000082", B_OK, CloseType.A_UNREACHABLE, CloseType.A_UNREACHABLE),
    ("a-unreachable", "+8613800000083", B_OK, CloseType.A_UNREACHABLE, CloseType.A_UNREACHABLE),
    ("a-rejects", "+8613800000084", B_OK, CloseType.A_BUSY, CloseType.A_BUSY),
    # jy reports a call cut at TimeLimit as an ordinary completed call (both legs completed)
    ("a-max-duration", "+8613800000085", B_OK, CloseType.MAX_DURATION, CloseType.NORMAL),
    ("b-busy", A_OK, "+8613900000081", CloseType.B_BUSY, CloseType.B_BUSY),
    ("b-no-answer", A_OK, "+8613900000082", CloseType.B_UNREACHABLE, CloseType.B_UNREACHABLE),
    ("b-unreachable", A_OK, "+8613900000083", CloseType.B_UNREACHABLE, CloseType.B_UNREACHABLE),
    ("b-rejects", A_OK, "+8613900000084", CloseType.B_BUSY, CloseType.B_BUSY),
    ("b-max-duration", A_OK, "+8613900000085", CloseType.MAX_DURATION, CloseType.NORMAL),
]


@dataclass
class Vendor:
    """One channel: a clean simulator and one that drops every webhook, and their adapters."""

    name: str
    clean_base: str
    dropped_base: str
    clean: E9Channel | JyChannel
    dropped: E9Channel | JyChannel


@dataclass
class Bases:
    e9: tuple[str, str]
    jy: tuple[str, str]
    hook: str


@pytest.fixture(scope="module")
def bases() -> Iterator[Bases]:
    hook_app = FastAPI()

    @hook_app.post("/hook")
    async def hook(request: Request) -> Response:
        await request.body()
        return Response('{"statusCode": "000000"}', media_type="application/json")

    hook_port = free_port()
    threads = [ServerThread(hook_app, hook_port).start()]
    urls: dict[str, list[str]] = {"e9": [], "jy": []}
    for _ in range(2):
        e9_port, jy_port = free_port(), free_port()
        settings = Settings(
            e9_base_url=f"http://127.0.0.1:{e9_port}", e9_account_sid=SID, e9_auth_token=TOKEN,
            jy_base_url=f"http://127.0.0.1:{jy_port}", jy_account_sid=SID, jy_auth_token=TOKEN,
            sim_retry_scale=0.01,
        )  # fmt: skip
        threads.append(ServerThread(e9_sim.create_app(settings), e9_port).start())
        threads.append(ServerThread(jy_sim.create_app(settings), jy_port).start())
        urls["e9"].append(settings.e9_base_url)
        urls["jy"].append(settings.jy_base_url)
    yield Bases(e9=(urls["e9"][0], urls["e9"][1]), jy=(urls["jy"][0], urls["jy"][1]),
                hook=f"http://127.0.0.1:{hook_port}/hook")  # fmt: skip
    for thread in threads:
        thread.stop()


@pytest.fixture(params=["e9", "jy"])
async def vendor(request: pytest.FixtureRequest, bases: Bases) -> AsyncIterator[Vendor]:
    name: str = request.param
    clean_base, dropped_base = bases.e9 if name == "e9" else bases.jy
    kind = E9Channel if name == "e9" else JyChannel
    for base, drop in ((clean_base, 0.0), (dropped_base, 1.0)):
        async with httpx.AsyncClient(base_url=base) as control:
            await control.put("/_sim/faults", json={"delivery": {"drop": drop}})
            await control.put("/_sim/timing", json=TIMING)
    clean = kind(clean_base, SID, TOKEN, bases.hook)
    dropped = kind(dropped_base, SID, TOKEN, bases.hook)
    yield Vendor(name, clean_base, dropped_base, clean, dropped)
    await clean.aclose()
    await dropped.aclose()


def times_set(caller: str, called: str) -> set[str]:
    """The timestamps a call of the scenario has: a failed leg is never answered."""
    if caller[-2:] in ("81", "82", "83", "84"):
        return {"a_call_time", "close_time"}
    if called[-2:] in ("81", "82", "83", "84"):
        return {"a_call_time", "a_offhook_time", "b_call_time", "close_time"}
    return set(TIMES)


def fresh_record(cc_id: str, vendor: str) -> CallRecord:
    return CallRecord(cc_call_id=cc_id, tenant="t", channel=vendor, agent="line-1",
                      caller=A_OK, called=B_OK, display=DisplayPolicy.PLATFORM,
                      created=0)  # fmt: skip


def fold(cc_id: str, vendor: str, events: list[CallEvent]) -> dict[str, Any]:
    record = apply_events(fresh_record(cc_id, vendor), events)
    return {name: getattr(record, name) for name in COMPARED}


async def sent_bodies(base: str, vendor_call_id: str) -> list[dict[str, Any]]:
    """Every webhook the simulator sent (or dropped) for the call, one entry per attempt."""
    async with httpx.AsyncClient(base_url=base) as control:
        events: list[dict[str, Any]] = (await control.get("/_sim/log")).json()["events"]
    return [e for e in events if vendor_call_id in e["body"]]


def is_last_webhook(vendor: str, body: str) -> bool:
    """The call's last webhook: e9's hangup, jy's terminal callback of leg A."""
    if vendor == "e9":
        return bool(json.loads(body)["event"] == "hangup")
    return (
        "Leg=A" in body
        and "CallStatus=in-progress" not in body
        and any(
            f"CallStatus={s}" in body
            for s in ("completed", "busy", "no-answer", "failed", "canceled")
        )
    )


async def ended(base: str, vendor: str, vendor_call_id: str) -> None:
    async def over() -> bool:
        async with httpx.AsyncClient(base_url=base) as control:
            calls = (await control.get("/_sim/calls")).json()
        if vendor == "e9":
            return any(c["callSid"] == vendor_call_id and c["state"] == "ended" for c in calls)
        return any(c["sid"] == vendor_call_id and c["end_time"] for c in calls)

    await wait_for(over, 15, f"{vendor} call {vendor_call_id} to end")


async def webhooks_of(channel: E9Channel | JyChannel, base: str, vendor: str,
                      vendor_call_id: str, delivered: bool) -> list[CallEvent]:  # fmt: skip
    """Wait for the call to end and its last webhook to be logged; parse what was sent."""
    await ended(base, vendor, vendor_call_id)

    async def last_logged() -> bool:
        sent = await sent_bodies(base, vendor_call_id)
        return any(is_last_webhook(vendor, e["body"]) for e in sent)

    await wait_for(last_logged, 10, "the last webhook")
    await asyncio.sleep(0.3)  # its siblings, sent at the same moment, land too
    sent = await sent_bodies(base, vendor_call_id)
    if delivered:
        assert all(isinstance(e["status"], int) and 200 <= e["status"] < 300 for e in sent)
    else:
        assert {e["status"] for e in sent} == {"dropped"}
    content_type = "application/json" if vendor == "e9" else "application/x-www-form-urlencoded"
    bodies = dict.fromkeys(e["body"] for e in sent)  # one per event (attempts repeat it)
    return [
        event for body in bodies for event in channel.parse_webhook(body.encode(), content_type)
    ]


async def run(vendor: Vendor, caller: str, called: str, cc_id: str, clean: bool
              ) -> tuple[list[CallEvent], list[CallEvent]]:  # fmt: skip
    """Place one call; return (the webhooks it sent, its call_result once it is over)."""
    channel = vendor.clean if clean else vendor.dropped
    base = vendor.clean_base if clean else vendor.dropped_base
    request = PlaceCallRequest(cc_call_id=cc_id, caller=caller, called=called,
                               display_to_a="+861088000100", display_to_b=caller,
                               agent="line-1", max_duration_s=MAX_S)  # fmt: skip
    placed = await channel.place_call(request)
    webhooks = await webhooks_of(channel, base, vendor.name, placed.vendor_call_id, clean)
    result = await channel.call_result(placed.vendor_call_id, cc_id)
    assert await channel.call_result(placed.vendor_call_id, cc_id) == result  # same keys
    assert len({e.dedupe_key for e in result}) == len(result)
    assert {(e.cc_call_id, e.vendor_call_id) for e in result} == {(cc_id, placed.vendor_call_id)}
    return webhooks, result


@pytest.mark.parametrize(("caller", "called", "e9_close", "jy_close"),
                         [pytest.param(*s[1:], id=s[0]) for s in SCENARIOS])  # fmt: skip
async def test_call_result_rebuilds_the_webhook_record(
    vendor: Vendor, caller: str, called: str, e9_close: CloseType, jy_close: CloseType,
) -> None:  # fmt: skip
    cc_id = f"{vendor.name}-{caller[-2:]}-{called[-2:]}"
    (clean_hooks, clean_result), (lost_hooks, lost_result) = await asyncio.gather(
        run(vendor, caller, called, f"{cc_id}-c", clean=True),
        run(vendor, caller, called, f"{cc_id}-d", clean=False),
    )
    clean = fold(f"{cc_id}-c", vendor.name, clean_hooks)
    assert clean["close_type"] is (e9_close if vendor.name == "e9" else jy_close)
    assert {k for k in TIMES if clean[k] is not None} == times_set(caller, called)
    # the clean call: its call_result says exactly what its webhooks said
    assert fold(f"{cc_id}-c", vendor.name, clean_result) == clean
    # the call whose webhooks were all lost: call_result gives the record the webhooks would
    # have given, with the same close and the same timestamps set as the clean run
    rebuilt = fold(f"{cc_id}-d", vendor.name, lost_result)
    assert rebuilt == fold(f"{cc_id}-d", vendor.name, lost_hooks)
    assert rebuilt["close_type"] is clean["close_type"]
    assert {k for k, v in rebuilt.items() if v is None} == {
        k for k, v in clean.items() if v is None
    }
    # folding webhooks and result together changes nothing either (set-once timestamps)
    both = fold(f"{cc_id}-d", vendor.name, [*lost_result, *lost_hooks])
    assert both == rebuilt
