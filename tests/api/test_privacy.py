"""Number privacy on the API: a ``masked`` key never reads a customer's number in full (call
view, list, export, raw vendor events), and logs never carry a number in full."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine
from uvicorn.logging import AccessFormatter

from core.logs import install_redaction, redact
from core.phones import mask, mask_in_text
from store.db import make_engine
from tests.api.seed import add_event, add_tenant_key, bulk_insert, call_row
from tests.stack import Stack

TENANT = "privacy-t"
KEYS = {"full": "test-key-privacy-full", "masked": "test-key-privacy-masked",
        "admin": "test-key-privacy-admin", "bogus": "test-key-privacy-bogus"}  # fmt: skip
CUSTOMER, AGENT = "+8613900000055", "+8613800000055"
NATIONAL = "13900000055"  # the digits every spelling of the customer's number shares
CREATED = 1_800_000_000_000 + 9 * 10**6


@pytest.fixture(scope="module")
def call_id(stack: Stack) -> Iterator[str]:
    for scope, key in KEYS.items():
        add_tenant_key(stack.settings.database_url, TENANT, key, scope)
    engine = make_engine(stack.settings.database_url)
    attempts = [{"channel": "jy", "agent": "jy-1", "at": CREATED, "outcome": "failed",
                 "error": f"vendor refused {CUSTOMER}"}]  # fmt: skip
    row = call_row(TENANT, CREATED, caller=AGENT, called=CUSTOMER, attempts=json.dumps(attempts))
    bulk_insert(engine, [row])
    _vendor_events(engine, row["cc_call_id"])
    yield row["cc_call_id"]
    engine.dispose()


def _vendor_events(engine: Engine, cc_call_id: str) -> None:
    add_event(engine, cc_call_id, json.dumps({"to": CUSTOMER, "from": AGENT}), "application/json")
    add_event(engine, cc_call_id, "To=%2B8613900000055&From=%2B8613800000055&CallStatus=ok",
              "application/x-www-form-urlencoded")  # fmt: skip
    national = json.dumps({"calleeNbr": "8613900000055", "local": "013900000055"})
    add_event(engine, cc_call_id, national, "application/json")


async def _reads(stack: Stack, key: str, call_id: str) -> dict[str, httpx.Response]:
    async with stack.as_tenant(key) as api:
        return {
            "view": await api.get(f"/v1/calls/{call_id}"),
            "list": await api.get("/v1/calls", params={"caller": AGENT}),
            "export": await api.get("/v1/calls/export.csv", params={"since": CREATED}),
            "events": await api.get(f"/v1/calls/{call_id}/events"),
        }


@pytest.mark.parametrize("scope", ["masked", "bogus"])
async def test_a_masked_key_never_reads_the_customer_number(
    stack: Stack, call_id: str, scope: str
) -> None:
    reads = await _reads(stack, KEYS[scope], call_id)
    for what, response in reads.items():
        assert response.status_code == 200, what
        assert NATIONAL not in response.text, f"{what} shows the customer's number"
    assert reads["view"].json()["called"] == "+86139****0055" == mask(CUSTOMER)
    assert reads["view"].json()["caller"] == AGENT  # the agent's own number is not masked
    assert reads["view"].json()["attempts"][0]["error"] == "vendor refused +86139****0055"
    assert [i["called"] for i in reads["list"].json()["items"]] == ["+86139****0055"]
    assert "+86139****0055" in reads["export"].text
    bodies = [event["body"] for event in reads["events"].json()["items"]]
    assert len(bodies) == 3
    assert json.loads(bodies[0]) == {"to": "+86139****0055", "from": AGENT}
    assert bodies[1].startswith("To=%2B86139****0055&From=%2B8613800000055")


@pytest.mark.parametrize("scope", ["full", "admin"])
async def test_full_and_admin_keys_read_the_number(stack: Stack, call_id: str, scope: str) -> None:
    reads = await _reads(stack, KEYS[scope], call_id)
    assert reads["view"].json()["called"] == CUSTOMER
    assert reads["list"].json()["items"][0]["called"] == CUSTOMER
    assert CUSTOMER in reads["export"].text
    assert NATIONAL in reads["events"].json()["items"][2]["body"]


async def test_a_masked_key_cannot_probe_for_a_customer_number(stack: Stack, call_id: str) -> None:
    async with stack.as_tenant(KEYS["masked"]) as api:
        probe = await api.get("/v1/calls", params={"called": NATIONAL})
        export = await api.get("/v1/calls/export.csv", params={"called": CUSTOMER})
    assert probe.status_code == export.status_code == 403
    assert probe.json()["code"] == "forbidden" and NATIONAL not in probe.text
    async with stack.as_tenant(KEYS["full"]) as api:
        found = await api.get("/v1/calls", params={"called": NATIONAL})
    assert [item["id"] for item in found.json()["items"]] == [call_id]


async def test_events_page_oldest_first_with_a_cursor(stack: Stack, call_id: str) -> None:
    async with stack.as_tenant(KEYS["full"]) as api:
        everything = (await api.get(f"/v1/calls/{call_id}/events")).json()
        first = (await api.get(f"/v1/calls/{call_id}/events", params={"limit": 2})).json()
        cursor = first["next_cursor"]
        rest = (await api.get(f"/v1/calls/{call_id}/events", params={"cursor": cursor})).json()
        forged = await api.get(f"/v1/calls/{call_id}/events", params={"cursor": "bm9wZQ=="})
    assert everything["next_cursor"] is None and len(everything["items"]) == 3
    ids = [event["id"] for event in everything["items"]]
    assert [e["id"] for e in first["items"] + rest["items"]] == ids and rest["next_cursor"] is None
    assert forged.status_code == 422 and forged.json()["errors"][0]["field"] == "cursor"


def test_masking_covers_every_spelling_of_a_number() -> None:
    text = "+8613900000055 %2B8613900000055 8613900000055 013900000055 13900000055"
    assert NATIONAL not in mask_in_text(text, CUSTOMER)
    assert mask_in_text("nothing here 12345", CUSTOMER) == "nothing here 12345"


def test_logs_never_carry_a_number_in_full(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction()
    log = logging.getLogger("cc.test.privacy")
    with caplog.at_level(logging.INFO, logger="cc.test.privacy"):
        log.info("placing called=%s at %d", CUSTOMER, 1_800_000_000_000)
        log.info("query string GET /v1/calls?called=%%2B8613900000055 from %s", "10.0.0.1")
        try:
            raise ValueError(f"[parameters: ('{CUSTOMER}', '{NATIONAL}')]")
        except ValueError:
            log.exception("insert failed")
        log.warning("vendor said %s", RuntimeError(f"bad number {NATIONAL}"))
    text = caplog.text
    assert NATIONAL not in text and "8613900000055" not in text
    assert "called=+86139****0055 at 1800000000000" in text  # timestamps are kept
    assert "from 10.0.0.1" in text and "ValueError" in text
    assert redact("tel +14155550123.") == "tel +141****0123."
    assert redact("to 8613900000055 / 008613900000055") == "to 86139****0055 / 0086139****0055"


def test_access_log_query_strings_are_redacted() -> None:
    install_redaction()
    args = ("127.0.0.1:50000", "GET", "/v1/calls?called=%2B8613900000055", "1.1", 200)
    record = logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', args, None
    )
    line = AccessFormatter(use_colors=False).format(record)
    assert "8613900000055" not in line and "called=%2B86139****0055" in line
    assert line.endswith('"GET /v1/calls?called=%2B86139****0055 HTTP/1.1" 200')
