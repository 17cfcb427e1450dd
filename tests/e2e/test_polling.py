"""hw specifics on the live stack: polling reaches the record, an unreachable vendor closes."""

from __future__ import annotations

import httpx

from contracts.ids import workflow_id
from tests.e2e.calls import place, wait_closed, wait_state
from tests.stack import Stack


async def test_vendor_unreachable_while_polling_closes_with_7(
    stack: Stack, sim_faults: httpx.AsyncClient
) -> None:
    call = await place(stack.api, channel="hw", called="+8613900000085", max_duration=600)
    await wait_state(stack.api, call["id"], "conn")
    await stack.sims["hw"].put("/_sim/faults", json={"poll": "http_500"})
    view = await wait_closed(stack.api, call["id"], within=30)
    assert view["close_type"] == 7 and view["conn_time"] is not None
    log = (await stack.sims["hw"].get("/_sim/log")).json()["requests"]
    stops = [
        r for r in log if r["path"].endswith("/callStop/v2.0") and view["call_id"] in r["body"]
    ]
    assert stops  # CC asked the vendor to end the call it can no longer watch


async def test_polled_events_are_kept_raw_in_the_inbox(stack: Stack) -> None:
    call = await place(stack.api, channel="hw")
    await stack.client.get_workflow_handle(workflow_id(call["id"])).result()  # CDR folded in
    view = (await stack.api.get(f"/v1/calls/{call['id']}")).json()
    events = (await stack.api.get(f"/v1/calls/{call['id']}/events")).json()["items"]
    assert {"a_dialing", "bridged", "hangup"} <= {e["kind"] for e in events}
    assert all(e["applied"] and e["body"].startswith('{"resultcode"') for e in events)
    assert view["ch_state"].startswith(("disconnect:", "fee"))
