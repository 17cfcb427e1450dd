"""Helpers for tests that run real servers: free ports, uvicorn in a thread, polling."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from channels.registry import Settings
from scripts.inprocess import ServerThread, free_port

__all__ = ["ServerThread", "free_port", "settings_env", "wait_for"]

T = TypeVar("T")


async def wait_for(
    probe: Callable[[], Awaitable[T | None]], within: float = 30.0, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def settings_env(settings: Settings) -> dict[str, str]:
    """The CC_* environment that reproduces ``settings`` in a child process."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if isinstance(value, list | dict):
            env[f"CC_{name.upper()}"] = json.dumps(value)  # complex settings are JSON
        elif value is not None:
            env[f"CC_{name.upper()}"] = str(value)
    return env
