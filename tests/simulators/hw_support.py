"""The hw simulator (a CC-Gateway) in process for its tests and the hw channel's: quick call
timing, CC's side of one seat by hand (``Agent``), the simulator's control endpoints
(``Gateway``), and the ``gw`` fixture (exposed to tests/simulators by its conftest.py)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from channels.registry import Settings
from simulators.hw import create_app

ROOT = "/agentgateway/resource"
BASE = "http://hw.test"
PASSWORD = "seat-secret"
SEAT, PHONE, B, SHOWN = "10001", "13800000001", "13900000002", "01088000100"
HOLD_MS = 300
TIMING = {"ring_ms": 40, "talk_ms": 200, "no_answer_ms": 80, "recording_delay_ms": 300}


@asynccontextmanager
async def hw_simulator(
    timing: Mapping[str, int] = TIMING,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.ASGITransport]]:
    """The simulator app in process (seat password ``PASSWORD``) with ``timing``: a client for
    it at ``BASE``, and the transport that reaches it."""
    app = create_app(Settings(hw_seat_password=PASSWORD))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=BASE) as http,
    ):
        await http.put("/_sim/timing", json=dict(timing))
        yield http, transport


@dataclass
class Agent:
    """CC's side of one seat, by hand: keeps the newest guid (the client keeps the cookie)."""

    http: httpx.AsyncClient
    workno: str = SEAT
    guid: str = ""

    def take_guid(self, answer: httpx.Response) -> None:
        if new := answer.headers.get("set-guid"):
            self.guid = new.removeprefix("JSESSIONID=")

    async def sign_in(
        self, phone: str = PHONE, password: str = PASSWORD, force: bool = False
    ) -> dict[str, Any]:
        body = {"password": password, "phonenum": phone, "releasephone": True, "autoanswer": True,
                "autoenteridle": True, "agenttype": 4, "status": 4}  # fmt: skip
        path = f"{ROOT}/onlineagent/{self.workno}" + ("/forcelogin" if force else "")
        answer = await self.http.put(path, json=body)
        self.take_guid(answer)
        return dict(answer.json())

    async def send(self, method: str, resource: str, **kwargs: Any) -> httpx.Response:
        answer = await self.http.request(
            method, f"{ROOT}/{resource}", headers={"Guid": self.guid}, **kwargs
        )
        self.take_guid(answer)
        return answer

    async def ask(self, method: str, resource: str, **kwargs: Any) -> dict[str, Any]:
        return dict((await self.send(method, resource, **kwargs)).json())

    async def poll(self) -> dict[str, Any]:
        return await self.ask("GET", f"agentevent/{self.workno}")

    async def callout(self, called: str = B, data: str = "cc-1") -> dict[str, Any]:
        body = {"called": called, "caller": SHOWN, "callappdata": data}
        return await self.ask("PUT", f"voicecall/{self.workno}/callout", json=body)

    async def signed_in(self, phone: str = PHONE) -> None:
        """Sign in and take the first two events."""
        assert (await self.sign_in(phone))["retcode"] == "0"
        assert [await types_of(self) for _ in range(2)] == [
            "AgentOther_InService", "AgentState_Ready"
        ]  # fmt: skip


async def types_of(agent: Agent) -> str | None:
    event = (await agent.poll())["event"]
    return event["eventType"] if event else None


@dataclass
class Gateway:
    http: httpx.AsyncClient
    transport: httpx.ASGITransport
    agent: Agent

    async def faults(self, **faults: Any) -> None:
        assert (await self.http.put("/_sim/faults", json=faults)).status_code == 200

    async def config(self, **config: Any) -> None:
        assert (await self.http.put("/_sim/gateway", json=config)).status_code == 200

    async def view(self) -> dict[str, Any]:
        return dict((await self.http.get("/_sim/gateway")).json())

    async def seat(self) -> dict[str, Any]:
        return next(s for s in (await self.view())["seats"] if s["workno"] == SEAT)

    async def calls(self) -> list[dict[str, Any]]:
        return list((await self.http.get("/_sim/calls")).json())

    async def call_events(self, until: str | None = None) -> list[dict[str, Any]]:
        """Poll the seat's events: up to an event of type ``until``, else to the call's end."""
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if event := (await self.agent.poll())["event"]:
                events.append(event)
                if event["eventType"] == until:
                    return events
            seat = await self.seat()
            if until is None and seat["callid"] is None and seat["queued"] == 0:
                return events
        raise AssertionError(f"the call's events did not end: {events}")


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    async with hw_simulator() as (http, transport):
        gateway = Gateway(http, transport, Agent(http))
        await gateway.config(poll_hold_ms=HOLD_MS)
        yield gateway
