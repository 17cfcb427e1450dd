"""Scenario 10: app notifications while the app's receiver is down, then while their sender is
SIGKILLed mid-drain. Calls on every channel run to their end with the receiver down (each
call's first event fails at least once; the rest wait behind it, in order); the receiver
comes up, answering each event slowly, and once the first events are in, the worker is killed
and restarted 5 s later. The receiver (``scripts/receiver.py``) verifies every signature. Per
call, the events it got (first copy of each ``webhook-id``) must be exactly the call's outbox
rows, in their order; none lost, none refused, every delivery ``delivered``."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from store.models import DeliveryStatus
from tests.chaos.harness import (
    SIM_TIMING,
    ChaosStack,
    Driver,
    measure,
    mix,
    running,
    table_rows,
)
from tests.notify.support import Received, Receiver

EVENTS = ["call.state", "call.closed", "call.recording"]
DELIVERED = DeliveryStatus.DELIVERED.value
SLOW_S = 0.3  # the receiver's answer time: a call's events drain one by one, so slowly


def deliveries(stack: ChaosStack) -> list[dict[str, Any]]:
    rows = table_rows(stack, "notification_delivery", "id", "cc_call_id", "webhook_id",
                      "status", "attempts")  # fmt: skip
    return sorted(({**row, "call": row["cc_call_id"]} for row in rows), key=lambda r: r["id"])


async def until(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.2)


def slowly(_: Received) -> int | None:
    time.sleep(SLOW_S)
    return None


@pytest.mark.chaos
async def test_notifications_under_receiver_outage_and_worker_kill(chaos_dir: Path) -> None:
    n = 18
    # The receiver's port, held until it starts: bound, not listening, so a send is refused
    # (the app is down) and no outgoing connection takes the port meanwhile.
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.bind(("127.0.0.1", 0))
    port = int(held.getsockname()[1])
    started = time.monotonic()
    async with running(
        chaos_dir, SIM_TIMING, lines_per_channel=n // 3 + 4,
        secret_key=Fernet.generate_key().decode(), notify_poll_s=0.2,
        notify_retry_initial_s=0.5, notify_retry_max_s=2.0,
    ) as stack:  # fmt: skip
        driver = Driver(stack)
        failures: list[str] = []
        receiver: Receiver | None = None
        try:
            subscribed = await driver.request(
                "PUT", "/v1/notifications",
                json={"url": f"http://127.0.0.1:{port}/hooks/cc", "events": EVENTS},
            )  # fmt: skip
            assert subscribed is not None and subscribed.status_code == 200, subscribed
            receiver = Receiver(port, answer=slowly, secret=subscribed.json()["secret"])
            placed = await driver.place_many(mix(n), ["e9", "hw", "jy"])
            assert len(placed) == n, driver.refused
            await driver.wait_closed(120)
            down = "each call's first event tried against the receiver that is down"
            await until(lambda: heads_tried(deliveries(stack), n), 60, down)
            receiver.start()
            held.close()
            await until(lambda: any(d["status"] == DELIVERED for d in deliveries(stack)), 60,
                        "the first delivery delivered")  # fmt: skip
            delivered_at_kill = sum(d["status"] == DELIVERED for d in deliveries(stack))
            stack.worker.kill()
            await asyncio.sleep(5)
            stack.worker.start()
            await until(lambda: all(d["status"] == DELIVERED for d in deliveries(stack)), 180,
                        "every delivery delivered")  # fmt: skip
            rows = deliveries(stack)
            failures += order_problems(rows, receiver)
            row = await measure(
                f"10 notifications, receiver down then worker SIGKILL mid-drain, {n} calls",
                stack, driver, started=started, close_within=60,
                notes={"deliveries": len(rows), "delivered_at_kill": delivered_at_kill,
                       "copies_received": len(receiver.events) - len(rows)},
            )  # fmt: skip
            row.failures += failures
        finally:
            held.close()
            if receiver is not None and hasattr(receiver, "server"):
                receiver.stop()
            await driver.close()
    assert not row.problems(), row.problems()


def heads_tried(rows: list[dict[str, Any]], calls: int) -> bool:
    """Every call's first event tried at least once (a call's later events wait behind it:
    they go in order)."""
    heads: dict[str, dict[str, Any]] = {}
    for row in rows:
        heads.setdefault(row["call"], row)
    return len(heads) == calls and all(row["attempts"] >= 1 for row in heads.values())


def order_problems(rows: list[dict[str, Any]], receiver: Receiver) -> list[str]:
    """Per call, the first copy of each webhook-id the receiver got, in arrival order, must be
    the call's outbox rows in theirs."""
    expected: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        expected[row["call"]].append(row["webhook_id"])
    got: dict[str, list[str]] = defaultdict(list)
    for event in list(receiver.events):
        webhook_id = event.headers.get("webhook-id", "")
        if webhook_id not in got[event.call_id]:
            got[event.call_id].append(webhook_id)
    problems = [f"call {call}: got {len(got[call])} of {len(ids)} events, or out of order"
                for call, ids in expected.items() if got[call] != ids]  # fmt: skip
    strangers = set(got) - set(expected)
    if strangers:
        problems.append(f"events of calls with no delivery row: {sorted(strangers)[:3]}")
    return problems
