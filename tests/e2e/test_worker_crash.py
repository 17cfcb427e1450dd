"""A worker killed with SIGKILL mid-call: the call still ends right, dialled exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from tests.e2e.calls import callback_requests, place, wait_closed, wait_state
from tests.stack import API_KEY, Stack
from tests.support import ServerThread, free_port, settings_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def crash_queue_api(stack: Stack) -> Iterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """An API on its own task queue, served by worker processes this test controls."""
    port = free_port()
    settings = stack.settings.model_copy(
        update={"task_queue": "cc-crash", "api_port": port,
                "public_base_url": f"http://127.0.0.1:{port}"}
    )  # fmt: skip
    server = ServerThread(create_app(settings), port).start()
    env = {**os.environ, **settings_env(settings)}
    yield httpx.AsyncClient(base_url=settings.public_base_url,
                            headers={"Authorization": f"Bearer {API_KEY}"}), env  # fmt: skip
    server.stop()


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env)


async def test_sigkill_mid_call(
    temporal_env: WorkflowEnvironment,
    stack: Stack,
    crash_queue_api: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    api, env = crash_queue_api
    first = start_worker(env)
    second: subprocess.Popen[bytes] | None = None
    try:
        # 85: the call talks until max_duration, long enough to kill the worker while conn
        call = await place(api, called="+8613900000085", max_duration=6)
        await wait_state(api, call["id"], "conn")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = start_worker(env)
        view = await wait_closed(api, call["id"], within=60)
        assert view["close_type"] == 5
        assert view["conn_time"] is not None and view["close_time"] is not None
        assert len(await callback_requests(stack.sim, call["id"])) == 1
    finally:
        await api.aclose()
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.kill()
                worker.wait(timeout=10)
