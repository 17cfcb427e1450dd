"""A wait with a deadline that a cancellation always ends (core/aio.py), and no
``asyncio.wait_for`` left in the product's code to swallow one."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

from core.aio import wait_set

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = [
    "activities",
    "api",
    "callflow",
    "channels",
    "contracts",
    "core",
    "intake",
    "scripts",
    "simulators",
    "storage",
    "store",
    "workflows",
]


async def _waits_in_a_loop(event: asyncio.Event, rounds: list[int]) -> None:
    """A sender's loop: wait for a wake-up or the poll interval, then go round again."""
    while True:
        rounds.append(1)
        event.clear()
        await wait_set(event, 0.05)


async def test_a_cancellation_that_arrives_as_the_event_is_set_still_cancels() -> None:
    event, rounds = asyncio.Event(), list[int]()
    task = asyncio.create_task(_waits_in_a_loop(event, rounds))
    await asyncio.sleep(0)  # one turn: the loop has gone round once and waits on the event
    assert rounds == [1]
    event.set()
    task.cancel()  # same loop turn: asyncio.wait_for on 3.11 would swallow this
    done, _ = await asyncio.wait([task], timeout=5)  # a swallowed cancel: it goes on
    assert task in done, f"still running after {len(rounds)} rounds"
    assert task.cancelled()
    assert len(rounds) == 1


async def test_it_says_whether_the_event_came_or_the_time_ran_out() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 10) is True


def _calls_wait_for(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "wait_for"
            and isinstance(node.value, ast.Name)
            and node.value.id == "asyncio"
        ):
            return True
    return False


def test_the_product_never_waits_with_asyncio_wait_for() -> None:
    files = [ROOT / "worker.py"] + [p for d in PRODUCT for p in sorted((ROOT / d).rglob("*.py"))]
    assert [str(p.relative_to(ROOT)) for p in files if _calls_wait_for(p)] == []
