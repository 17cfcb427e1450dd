"""Number privacy on real calls, asserted on what each vendor simulator received: leg A is
shown the line's number, never the customer's; leg B the line's number or the agent's own
(``display``); and a ``masked`` key never reads the customer's number, nor do the logs."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from channels.hw_session import dial
from channels.registry import CHANNELS
from core.phones import mask
from tests.api.seed import add_tenant_key
from tests.e2e.calls import place, wait_closed
from tests.stack import Stack
from tests.support import wait_for

MASKED_KEY = "test-key-tenant-a-masked"
AGENT = "+8613800000011"
# Shown to leg A / leg B, in each vendor's own field names (VENDORS.md).
# hw's callout names only what B is shown (``caller``, national digits): the seat's own phone
# is leg A and the gateway shows it the platform's number, never one CC passes.
DISPLAY_FIELDS = {"e9": ("fromSerNum", "customerSerNum"), "hw": (None, "caller"),
                  "jy": ("From", "BridgeCallerId")}  # fmt: skip

pytestmark = pytest.mark.e2e


async def dial_request(stack: Stack, channel: str, cc_call_id: str) -> dict[str, Any]:
    """The body of the dial request the channel's simulator received for this call."""

    async def received() -> dict[str, Any] | None:
        log = (await stack.sims[channel].get("/_sim/log")).json()
        for request in log["requests"]:
            if request["method"] in ("POST", "PUT") and cc_call_id in request["body"]:
                body = request["body"]
                form = "form" in request["headers"].get("content-type", "")
                parsed: dict[str, Any] = dict(parse_qsl(body)) if form else json.loads(body)
                return parsed
        return None

    return await wait_for(received, 20, f"{channel} dial request for {cc_call_id}")


async def line_number(api: httpx.AsyncClient, channel: str, agent: str) -> str:
    lines = (await api.get("/v1/lines", params={"channel": channel, "limit": 500})).json()
    return next(line["number"] for line in lines["items"] if line["agent"] == agent)


@pytest.mark.parametrize("channel", list(CHANNELS))
@pytest.mark.parametrize("display", ["platform", "passthrough"])
async def test_leg_a_is_shown_the_line_never_the_customer(
    stack: Stack, channel: str, display: str
) -> None:
    called = f"+86139000{list(CHANNELS).index(channel)}00{10 + len(display)}"
    call = await place(stack.api, channel=channel, display=display, caller=AGENT, called=called)
    request = await dial_request(stack, channel, call["id"])
    line = await line_number(stack.api, channel, call["agent"])
    a_field, b_field = DISPLAY_FIELDS[channel]
    shown = (lambda number: dial(number, "CN")) if channel == "hw" else (lambda number: number)
    if a_field is None:  # nothing CC sends is shown to A: the customer is only ever `called`
        assert [key for key, value in request.items() if called[-8:] in str(value)] == ["called"]
    else:
        assert request[a_field] == line
        assert called[-8:] not in request[a_field]
    assert request[b_field] == shown(line if display == "platform" else AGENT)
    await wait_closed(stack.api, call["id"])


@pytest.mark.parametrize("channel", list(CHANNELS))
async def test_a_masked_key_never_reads_the_customer_number_of_a_live_call(
    stack: Stack, channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    add_tenant_key(stack.settings.database_url, "tenant-a", MASKED_KEY, "masked")
    called = f"+86139111{list(CHANNELS).index(channel)}0077"
    national = called.removeprefix("+86")
    with caplog.at_level(logging.DEBUG):
        async with stack.as_tenant(MASKED_KEY) as api:
            created = await place(api, channel=channel, caller=AGENT, called=called)
            assert created["called"] == mask(called)
            await wait_closed(api, created["id"])
            since = created["created"]
            reads = [
                await api.get(f"/v1/calls/{created['id']}"),
                await api.get(f"/v1/calls/{created['id']}/events"),
                await api.get("/v1/calls", params={"caller": AGENT, "since": since}),
                await api.get("/v1/calls/export.csv", params={"since": since}),
            ]
    assert [r.status_code for r in reads] == [200] * 4
    assert reads[1].json()["items"], "the call's vendor events are listed"
    for response in reads:
        assert national not in response.text, response.url
    assert reads[0].json()["called"] == mask(called)
    if channel == "hw":  # hw's events carry the callee: a full key reads what was masked
        full = await stack.api.get(f"/v1/calls/{created['id']}/events")
        assert national in full.text and "139****0077" in reads[1].text
    # The test's own client logs the URLs it asks the API for; everything else is CC's.
    own = f"HTTP Request: GET {stack.settings.public_base_url}/v1/"
    lines = [r.getMessage() for r in caplog.records if not r.getMessage().startswith(own)]
    leaked = [line for line in lines if national in line]
    assert leaked == [], "a log line carries the customer's number in full"
