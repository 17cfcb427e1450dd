"""Helpers the end-to-end tests share: place a call, wait for its close, read the sim log."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import wait_for

TIMESTAMPS = (
    "a_call_time",
    "a_offhook_time",
    "b_call_time",
    "b_offhook_time",
    "conn_time",
    "close_time",
)


async def place(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("caller", "+8613800000001")
    body.setdefault("called", "+8613900000002")
    response = await api.post("/v1/calls", json=body)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v1/calls/{response.json()['id']}"
    call: dict[str, Any] = response.json()
    return call


async def wait_state(
    api: httpx.AsyncClient, call_id: str, state: str, within: float = 30
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        view: dict[str, Any] = (await api.get(f"/v1/calls/{call_id}")).json()
        return view if view["state"] == state else None

    return await wait_for(reached, within, f"call {call_id} to reach {state}")


async def wait_closed(api: httpx.AsyncClient, call_id: str, within: float = 40) -> dict[str, Any]:
    return await wait_state(api, call_id, "close", within)


async def callback_requests(sim: httpx.AsyncClient, cc_call_id: str) -> list[dict[str, Any]]:
    """The Callback (dial) requests the simulator received for this CC call id."""
    log = (await sim.get("/_sim/log")).json()
    return [
        r
        for r in log["requests"]
        if r["path"].endswith("/Calls/Callback") and cc_call_id in str(r.get("body"))
    ]
