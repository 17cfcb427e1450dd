"""The stack as ``make run`` starts it, every part a process of its own, for the benchmarks.

It runs in a fresh directory, on free ports, with the demo tenant seeded. It can have several
worker processes and API processes (uvicorn ``--workers``, all on one port), and SQLite or
PostgreSQL as its store. It reads the CPU time and memory of each part from ``/proc``.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from unittest import mock

import httpx
import sqlalchemy as sa

from channels.registry import CHANNELS, Settings
from core.config import SERVER_KEEP_ALIVE_S
from scripts.demo import seed_demo
from scripts.inprocess import free_port
from scripts.ports import simulators
from scripts.processes import Child, StopSignals, start, stop_all, wait_http
from scripts.run import temporal_command, wait_temporal
from store.migrate import upgrade

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _postgres_admin(*statements: str) -> None:
    engine = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


def fresh_postgres(name: str) -> str:
    """A new, empty PostgreSQL database ``name`` (dropped first if it exists); its URL."""
    _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres(name: str) -> None:
    _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class StackOptions:
    database: str = "sqlite"  # "sqlite" or "postgres"
    workers: int = 1
    api_processes: int = 1
    env: dict[str, str] = field(default_factory=dict)  # more CC_ settings for every part


def _group_stats(pgid: int) -> tuple[float, int]:
    """CPU seconds (user + system) and resident bytes of every process in group ``pgid``."""
    cpu, rss = 0.0, 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) != pgid:  # field 5 (pgrp), counted after the command name
            continue
        cpu += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
        rss += int(fields[21]) * PAGE
    return cpu, rss


class BenchStack:
    """``with BenchStack(options) as stack:`` the stack is up and ready for calls."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.dir = Path(tempfile.mkdtemp(prefix="cc-bench-"))
        self.children: list[Child] = []
        self.api_key = "bench-" + secrets.token_urlsafe(16)
        self.operator_key = "bench-operator-" + secrets.token_urlsafe(16)
        database_url = f"sqlite:///{self.dir / 'cc.db'}"
        if self.options.database == "postgres":
            database_url = fresh_postgres(f"ccbench_{self.dir.name.replace('-', '_')}")
        api_port = free_port()
        self.env = {
            "CC_DATABASE_URL": database_url,
            "CC_API_PORT": str(api_port),
            "CC_PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
            "CC_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "CC_TEMPORAL_UI_PORT": str(free_port()),
            "CC_STORAGE_DIR": str(self.dir / "recordings"),
            "CC_DEMO_API_KEY": self.api_key,
            "CC_OPERATOR_KEY": self.operator_key,
            # The load is the point: the demo tenant's quotas do not cap it.
            "CC_TENANT_MAX_LINES": "100000",
            "CC_TENANT_MAX_LIVE_CALLS": "100000",
            "CC_TENANT_CALLS_PER_MINUTE": "1000000",
            "CC_LOG_LEVEL": "WARNING",
            "CC_EGRESS_ALLOW": json.dumps(["127.0.0.1"]),  # the simulators, the receivers
            **{
                f"CC_{name.upper()}_BASE_URL": f"http://127.0.0.1:{free_port()}"
                for name in CHANNELS
            },
            **self.options.env,
        }
        # The settings as the children read them: this environment over the inherited one,
        # through pydantic-settings (JSON for list settings, as in any environment).
        with mock.patch.dict(os.environ, self.env):
            self.settings = Settings()

    @property
    def api_url(self) -> str:
        return self.settings.public_base_url

    def sim_url(self, channel: str) -> str:
        return CHANNELS[channel].base_url(self.settings)

    def __enter__(self) -> BenchStack:
        os.environ.update(self.env)  # the children inherit it
        upgrade(self.settings.database_url)
        seed_demo(self.settings)
        stop = StopSignals()
        try:
            self._start(stop)
        except BaseException:
            stop_all(self.children)
            raise
        return self

    def _start(self, stop: StopSignals) -> None:
        python = sys.executable
        start("temporal", temporal_command(self.settings, self.dir), self.children, self.dir)
        asyncio.run(wait_temporal(self.settings, stop))
        for sim in simulators(self.settings):
            start(sim.name, [python, "-m", sim.module], self.children, self.dir)
        for n in range(self.options.workers):
            start(f"worker-{n}", [python, "worker.py"], self.children, self.dir)
        start(
            "api",
            [
                python,
                "-m",
                "uvicorn",
                "api.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.settings.api_port),
                "--workers",
                str(self.options.api_processes),
                "--timeout-keep-alive",
                str(SERVER_KEEP_ALIVE_S),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            self.children,
            self.dir,
        )
        wait_http(f"{self.api_url}/readyz", "the API", self.children, stop, self.dir)
        for sim in simulators(self.settings):
            wait_http(f"{sim.base_url}/_sim/calls", sim.name, self.children, stop, self.dir)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stop_all(self.children)
        if kind is not None:
            print(f"the stack's logs are in {self.dir}", file=sys.stderr)
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.options.database == "postgres":
            drop_postgres(self.settings.database_url.rsplit("/", 1)[1])

    def stats(self) -> dict[str, tuple[float, int]]:
        """Per part (temporal, api, worker-0, sim-e9, …): CPU seconds so far, resident bytes."""
        return {name: _group_stats(child.pid) for name, child in self.children}

    def wait_quiet(self, seconds: float = 1.0) -> None:
        """Let the stack settle (start-up work done) before a measurement starts."""
        time.sleep(seconds)


def api_client(stack: BenchStack, operator: bool = False, **kwargs: object) -> httpx.AsyncClient:
    """The demo tenant's client, or the platform operator's."""
    headers = {"Authorization": f"Bearer {stack.operator_key if operator else stack.api_key}"}
    return httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


def report(text: str, out: Path | None) -> None:
    """Print a benchmark's table, and write it to ``out`` as well if given."""
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


async def post_once(api: httpx.AsyncClient, body: dict[str, object]) -> httpx.Response:
    """POST /v1/calls, tried again on a broken connection under the same Idempotency-Key
    (the API then returns the call it already made: never two calls)."""
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    for attempt in range(3):
        try:
            return await api.post("/v1/calls", json=body, headers=headers)
        except httpx.TransportError:
            if attempt == 2:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")
