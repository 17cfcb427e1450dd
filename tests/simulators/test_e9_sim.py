"""The e9 simulator speaks e9's protocol: auth, events, retries, faults, recordings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from channels.e9 import E9Channel, request_sig
from channels.e9_events import BEIJING
from channels.errors import VendorOutcomeUnknown, VendorRejected, VendorServerError
from channels.events import PlaceCallRequest
from channels.registry import Settings
from core.types import CloseType, EventKind
from simulators.e9 import create_app
from tests.support import ServerThread, free_port, wait_for

SID, TOKEN = "sid-test", "token-test"


@dataclass
class Receiver:
    """A webhook endpoint that records what it gets and can refuse the first N posts."""

    fail_first: int = 0
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    refused: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            if self.refused < self.fail_first:
                self.refused += 1
                return Response(status_code=500)
            self.got.append((dict(request.headers), await request.body()))
            return Response('{"statusCode": "000000"}', media_type="application/json")

        return app

    def events(self) -> list[dict[str, object]]:
        return [json.loads(body) for _, body in self.got]


@dataclass
class Sim:
    base: str
    hook: str
    receiver: Receiver
    http: httpx.AsyncClient
    e9: E9Channel


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str, Receiver]]:
    sim_port, hook_port = free_port(), free_port()
    settings = Settings(e9_base_url=f"http://127.0.0.1:{sim_port}", e9_account_sid=SID,
                        e9_auth_token=TOKEN, sim_retry_scale=0.01)  # fmt: skip
    receiver = Receiver()
    threads = [ServerThread(create_app(settings), sim_port).start(),
               ServerThread(receiver.app(), hook_port).start()]  # fmt: skip
    yield settings.e9_base_url, f"http://127.0.0.1:{hook_port}/hook", receiver
    for thread in threads:
        thread.stop()


@pytest.fixture
async def sim(servers: tuple[str, str, Receiver]) -> AsyncIterator[Sim]:
    base, hook, receiver = servers
    receiver.got.clear()
    receiver.fail_first = receiver.refused = 0
    async with httpx.AsyncClient(base_url=base) as http:
        await http.put("/_sim/faults", json={})
        await http.put("/_sim/timing", json={"ring_ms": 40, "talk_ms": 200, "no_answer_ms": 80,
                                             "recording_delay_ms": 300})  # fmt: skip
        e9 = E9Channel(base, SID, TOKEN, hook)
        yield Sim(base, hook, receiver, http, e9)
        await e9.aclose()


def request(cc_id: str, called: str = "+8613900000002", max_s: int = 60) -> PlaceCallRequest:
    return PlaceCallRequest(cc_call_id=cc_id, caller="+8613800000001", called=called,
                            display_to_a="+861088000100", display_to_b="+8613800000001",
                            agent="+861088000100", max_duration_s=max_s)  # fmt: skip


async def hangup_of(sim: Sim, cc_id: str) -> dict[str, object]:
    async def found() -> dict[str, object] | None:
        hangups = [
            e for e in sim.receiver.events() if e["userData"] == cc_id and e["event"] == "hangup"
        ]
        return hangups[0] if hangups else None

    return await wait_for(found, 10, f"hangup of {cc_id}")


def raw_auth(ts: str, sid: str = SID, token: str = TOKEN) -> tuple[dict[str, str], str]:
    header = base64.b64encode(f"{sid}:{ts}".encode()).decode()
    return {"Authorization": header}, request_sig(sid, token, ts)


@pytest.mark.parametrize("skew_min", [-10, 10])
async def test_stale_or_future_timestamp_is_refused(sim: Sim, skew_min: int) -> None:
    ts = (datetime.now(BEIJING) + timedelta(minutes=skew_min)).strftime("%Y%m%d%H%M%S")
    headers, sig = raw_auth(ts)
    answer = await sim.http.get(f"/2013-12-26/Accounts/{SID}/AccountInfo", params={"sig": sig},
                                headers=headers)  # fmt: skip
    assert answer.json()["statusCode"] == "112300"


async def test_wrong_credentials_are_refused(sim: Sim) -> None:
    bad = E9Channel(sim.base, SID, "not-the-token", sim.hook)
    with pytest.raises(VendorRejected, match="112300"):
        await bad.place_call(request("bad-auth"))
    await bad.aclose()
    calls = (await sim.http.get("/_sim/calls")).json()
    assert all(c["userData"] != "bad-auth" for c in calls)


async def test_normal_call_events_are_signed_and_ordered(sim: Sim) -> None:
    placed = await sim.e9.place_call(request("normal-1"))
    hangup = await hangup_of(sim, "normal-1")
    assert hangup["byetype"] == 1 and hangup["callSid"] == placed.vendor_call_id
    assert str(hangup["recordurl"]).endswith(".wav")
    order = ["callA", "ringA", "answerA", "callB", "ringB", "answerB", "bridge", "hangup"]

    async def all_came() -> list[tuple[dict[str, str], bytes]] | None:
        got = [(h, b) for h, b in sim.receiver.got if json.loads(b)["userData"] == "normal-1"]
        return got if len(got) >= len(order) else None

    mine = await wait_for(all_came, 10, "every event of normal-1")
    # Each event is POSTed on its own, as a vendor's are: they may arrive in any order (a
    # busy machine showed ringB before callB), but each comes once, stamped in call order.
    stamps = {json.loads(b)["event"]: json.loads(b)["timestamp"] for _, b in mine}
    assert len(mine) == len(order) and sorted(stamps) == sorted(order)
    assert [stamps[name] for name in order] == sorted(stamps.values())
    for headers, body in mine:
        ts = headers["x-e9-timestamp"]
        expected = hmac.new(TOKEN.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert headers["x-e9-signature"] == expected


@pytest.mark.parametrize(
    ("called", "max_s", "byetype"),
    [("+8613900000081", 60, -5), ("+8613900000082", 60, -4), ("+8613900000083", 60, -6),
     ("+8613900000084", 60, -5), ("+8613900000085", 1, -7)],
)  # fmt: skip
async def test_scenario_byetypes(sim: Sim, called: str, max_s: int, byetype: int) -> None:
    await sim.e9.place_call(request(f"scn-{called}", called, max_s))
    assert (await hangup_of(sim, f"scn-{called}"))["byetype"] == byetype


async def test_refused_delivery_is_retried(sim: Sim) -> None:
    sim.receiver.fail_first = 2
    await sim.e9.place_call(request("retry-1"))
    await hangup_of(sim, "retry-1")
    log = (await sim.http.get("/_sim/log")).json()["events"]
    by_event: dict[str, list[tuple[int, object]]] = {}
    for entry in log:
        body = json.loads(entry["body"])
        if body["userData"] == "retry-1":
            by_event.setdefault(body["eventId"], []).append((entry["attempt"], entry["status"]))
    # The receiver refused its first two requests: one event's first two tries, or the first
    # tries of two events (which, depends on how quickly the retry comes). Each refused event
    # was sent again, attempt after attempt, until taken.
    assert all(tries[-1][1] == 200 for tries in by_event.values())
    assert all(
        [a for a, _ in tries] == list(range(1, len(tries) + 1)) for tries in by_event.values()
    )
    assert sum(status == 500 for tries in by_event.values() for _, status in tries) == 2


async def test_duplicate_fault_sends_same_event_id_twice(sim: Sim) -> None:
    await sim.http.put("/_sim/faults", json={"delivery": {"duplicate": 1.0}})
    await sim.e9.place_call(request("dup-1"))
    await hangup_of(sim, "dup-1")

    async def both_hangups() -> list[dict[str, object]] | None:
        events = [e for e in sim.receiver.events() if e["userData"] == "dup-1"]
        hangups = [e for e in events if e["event"] == "hangup"]
        return events if len(hangups) == 2 else None

    events = await wait_for(both_hangups, 10, "the duplicated hangup")
    ids = [e["eventId"] for e in events]
    assert len(ids) == 2 * len(set(ids))


async def test_cancel(sim: Sim) -> None:
    placed = await sim.e9.place_call(request("cancel-1", "+8613900000085", 600))
    await sim.e9.hangup(placed.vendor_call_id)
    assert (await hangup_of(sim, "cancel-1"))["byetype"] == -9


async def test_only_e9_endpoints_are_served(sim: Sim) -> None:
    """No lookup by userData: the real vendor has none (VENDORS.md)."""
    ts = datetime.now(BEIJING).strftime("%Y%m%d%H%M%S")
    headers, sig = raw_auth(ts)
    query = await sim.http.get(f"/2013-12-26/Accounts/{SID}/Calls/Query",
                               params={"sig": sig, "userData": "x"}, headers=headers)  # fmt: skip
    assert query.status_code in (404, 405)
    assert not hasattr(sim.e9, "find_call")


async def call_ended(sim: Sim, sid: str) -> None:
    async def ended() -> bool:
        calls = (await sim.http.get("/_sim/calls")).json()
        return any(c["callSid"] == sid and c["state"] == "ended" for c in calls)

    await wait_for(ended, 10, f"call {sid} to end")


async def test_call_result_rebuilds_a_call_whose_webhooks_were_all_dropped(sim: Sim) -> None:
    await sim.http.put("/_sim/faults", json={"delivery": {"drop": 1.0}})
    placed = await sim.e9.place_call(request("lost-1"))
    await call_ended(sim, placed.vendor_call_id)
    assert not [e for e in sim.receiver.events() if e["userData"] == "lost-1"]

    events = await sim.e9.call_result(placed.vendor_call_id, "lost-1")
    by_kind = {e.kind: e for e in events}
    assert [e.kind for e in events] == [EventKind.A_DIALING, EventKind.A_ANSWERED,
                                        EventKind.B_DIALING, EventKind.B_ANSWERED,
                                        EventKind.BRIDGED, EventKind.HANGUP]  # fmt: skip
    hangup = by_kind[EventKind.HANGUP]
    assert hangup.close_type is CloseType.NORMAL and hangup.ch_state == "hangup:1"
    assert hangup.duration_s == 1  # 200 ms of talk, rounded up as the vendor does
    assert str(hangup.recording_url).endswith(f"/recordings/{placed.vendor_call_id}.wav")
    assert [e.at for e in events] == sorted(e.at for e in events)
    for event in events:
        assert (event.cc_call_id, event.vendor_call_id) == ("lost-1", placed.vendor_call_id)
    again = await sim.e9.call_result(placed.vendor_call_id, "lost-1")
    assert again == events  # same facts, same dedupe keys: asking twice stores nothing new
    assert len({e.dedupe_key for e in events}) == len(events)


@pytest.mark.parametrize(("called", "byetype", "close_type"),
                         [("+8613900000081", -5, CloseType.B_BUSY),
                          ("+8613900000082", -4, CloseType.B_UNREACHABLE)])  # fmt: skip
async def test_call_result_of_a_failed_call(
    sim: Sim, called: str, byetype: int, close_type: CloseType
) -> None:
    await sim.http.put("/_sim/faults", json={"delivery": {"drop": 1.0}})
    placed = await sim.e9.place_call(request(f"lost-{called}", called))
    await call_ended(sim, placed.vendor_call_id)
    events = await sim.e9.call_result(placed.vendor_call_id, f"lost-{called}")
    [hangup] = [e for e in events if e.kind is EventKind.HANGUP]
    assert (hangup.close_type, hangup.ch_state) == (close_type, f"hangup:{byetype}")
    assert hangup.duration_s == 0 and hangup.recording_url is None


async def test_call_result_of_a_live_call_gives_the_legs_so_far(sim: Sim) -> None:
    placed = await sim.e9.place_call(request("live-1", "+8613900000085", 600))

    async def talking() -> bool:
        calls = (await sim.http.get("/_sim/calls")).json()
        return any(c["callSid"] == placed.vendor_call_id and c["state"] == "talking"
                   for c in calls)  # fmt: skip

    await wait_for(talking, 10, "the bridge")
    events = await sim.e9.call_result(placed.vendor_call_id, "live-1")
    assert [e.kind for e in events] == [
        EventKind.A_DIALING,
        EventKind.A_ANSWERED,
        EventKind.B_DIALING,
        EventKind.B_ANSWERED,
        EventKind.BRIDGED,
    ]  # no hang-up: it has not happened
    assert {e.ch_state for e in events} == {"result:talking"}
    await sim.e9.hangup(placed.vendor_call_id)
    await hangup_of(sim, "live-1")
    with pytest.raises(VendorRejected, match="111200"):
        await sim.e9.call_result("no-such-call", "live-1")


async def test_call_result_needs_auth(sim: Sim) -> None:
    bad = E9Channel(sim.base, SID, "not-the-token", sim.hook)
    with pytest.raises(VendorRejected, match="112300"):
        await bad.call_result("any", "cc")
    await bad.aclose()


async def test_timeout_after_accept_is_an_unknown_outcome_but_the_call_runs(sim: Sim) -> None:
    await sim.http.put("/_sim/faults", json={"place_call": "timeout_after_accept"})
    impatient = E9Channel(sim.base, SID, TOKEN, sim.hook, timeout_s=0.5)
    try:
        with pytest.raises(VendorOutcomeUnknown):
            await impatient.place_call(request("unknown-1"))
        calls = (await sim.http.get("/_sim/calls")).json()
        assert [c["userData"] for c in calls].count("unknown-1") == 1  # it was placed
        assert (await hangup_of(sim, "unknown-1"))["byetype"] == 1  # and its events flow
    finally:
        await sim.http.put("/_sim/faults", json={})  # releases the held answer
        await impatient.aclose()


async def test_recording_404_until_ready_then_wav(sim: Sim) -> None:
    await sim.e9.place_call(request("rec-1"))
    url = str((await hangup_of(sim, "rec-1"))["recordurl"])
    assert (await sim.http.get(url)).status_code == 404  # published only after a delay

    async def ready() -> httpx.Response | None:
        response = await sim.http.get(url)
        return response if response.status_code == 200 else None

    response = await wait_for(ready, 10, "the recording")
    assert response.headers["content-type"] == "audio/wav"
    assert response.content[:4] == b"RIFF" and response.content[8:12] == b"WAVE"


@pytest.mark.parametrize(
    ("fault", "error"), [("http_500", VendorServerError), ("malformed", VendorServerError),
                         ("rate_limit", VendorServerError), ("auth_reject", VendorRejected)],
)  # fmt: skip
async def test_place_call_faults(sim: Sim, fault: str, error: type[Exception]) -> None:
    await sim.http.put("/_sim/faults", json={"place_call": fault})
    with pytest.raises(error):
        await sim.e9.place_call(request(f"fault-{fault}"))
    calls = (await sim.http.get("/_sim/calls")).json()
    assert all(c["userData"] != f"fault-{fault}" for c in calls)  # an answered error: no call
    await sim.http.put("/_sim/faults", json={})
    await sim.e9.place_call(request(f"after-{fault}"))
