"""Every HTTP server CC runs keeps an idle connection well past the 5 s after which clients
(httpx's default) stop reusing one: a client then never sends on a connection the server is
closing (seen under load as a ReadError on a simulator's control call; for a place request,
an unknown outcome and a call closed 7 without dialling)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI

from core.config import SERVER_KEEP_ALIVE_S
from scripts.inprocess import ServerThread, free_port

ROOT = Path(__file__).resolve().parents[2]
HTTPX_KEEPALIVE_EXPIRY_S = 5.0


def test_the_keep_alive_outlasts_a_clients_by_far() -> None:
    assert SERVER_KEEP_ALIVE_S >= 10 * HTTPX_KEEPALIVE_EXPIRY_S


def test_in_process_servers_keep_idle_connections() -> None:
    server = ServerThread(FastAPI(), free_port())
    assert server.server.config.timeout_keep_alive == SERVER_KEEP_ALIVE_S


def test_every_uvicorn_command_sets_the_keep_alive() -> None:
    commands = [
        line
        for name in ("Dockerfile", "docker-compose.yml", "scripts/run.py", "bench/stack.py")
        for line in [(ROOT / name).read_text()]
        if "uvicorn" in line
    ]
    assert len(commands) == 4
    for text in commands:
        assert re.search(r"timeout[-_]keep[-_]alive", text), text[:80]
    for name in ("Dockerfile", "docker-compose.yml"):
        assert f'"--timeout-keep-alive", "{SERVER_KEEP_ALIVE_S}"' in (ROOT / name).read_text()
