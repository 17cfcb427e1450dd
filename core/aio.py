"""Waiting with a deadline in a way that a cancellation always ends.

``asyncio.wait_for`` on Python 3.11 swallows a cancellation that arrives in the same loop
turn as the awaited thing completes (CPython gh-86296, fixed by 3.12's rewrite): a task
cancelled just as its event was set keeps running. A notification sender cancelled that way
went on POSTing for its whole run. CC waits with ``asyncio.timeout`` instead, everywhere
(``tests/core/test_aio.py`` keeps ``asyncio.wait_for`` out of the product's code)."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Wait at most ``seconds`` for ``event``; whether it is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()
