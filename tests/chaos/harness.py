"""The chaos suite's harness: the whole stack as real processes, a load driver, the figures.

Everything a scenario may kill runs as its own process (Temporal dev server, API under
uvicorn, worker, each simulator), so a SIGKILL is a real crash. All traffic stays on
127.0.0.1. Every wait has a deadline.

The figures of one scenario (one row of the report) are defined in ``Row`` and computed by
``measure``; docs/reliability.md explains them for readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from sqlalchemy import text
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from channels.registry import CHANNELS, Settings
from contracts.ids import SEARCH_ATTRIBUTES, workflow_id
from core.codec import data_converter
from core.types import ResourceKind
from scripts.inprocess import temporal_cli
from simulators.registry import SIMULATORS
from store.db import make_engine, session_scope
from store.lines import ensure_line
from store.migrate import upgrade
from store.provisions import provision
from store.tenants import add_api_key, ensure_tenant
from tests.stack import MAIN_NUMBERS, PAYLOAD_KEYS, line_id
from tests.support import free_port, settings_env
from workflows.placing import VENDOR_LIMIT_MARGIN_S

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "var" / "chaos-report.md"
TENANT = "chaos"
API_KEY = "chaos-key-tenant"
TIMESTAMPS = ("a_call_time", "a_offhook_time", "b_call_time", "b_offhook_time", "conn_time",
              "close_time")  # fmt: skip
EVERY = frozenset(TIMESTAMPS)
A_ONLY = frozenset({"a_call_time", "close_time"})
A_ANSWERED = frozenset({"a_call_time", "a_offhook_time", "b_call_time", "close_time"})
NOTHING = frozenset({"close_time"})


# -- what a call should end as ---------------------------------------------------------------
@dataclass(frozen=True)
class Fate:
    """A simulator scenario (picked by the numbers' last two digits) and its right record."""

    name: str
    caller: str
    called: str
    close_type: int
    stamps: frozenset[str]


FATES = {
    f.name: f
    for f in (
        Fate("normal", "+8613800000001", "+8613900000002", 0, EVERY),
        Fate("a_busy", "+8613800000081", "+8613900000002", 3, A_ONLY),
        Fate("a_no_answer", "+8613800000082", "+8613900000002", 1, A_ONLY),
        Fate("a_unreachable", "+8613800000083", "+8613900000002", 1, A_ONLY),
        Fate("b_busy", "+8613800000001", "+8613900000081", 4, A_ANSWERED),
        Fate("b_no_answer", "+8613800000001", "+8613900000082", 2, A_ANSWERED),
        Fate("b_unreachable", "+8613800000001", "+8613900000083", 2, A_ANSWERED),
        Fate("b_rejects", "+8613800000001", "+8613900000084", 4, A_ANSWERED),
        # talks until max_duration (the placing body must carry max_duration)
        Fate("max_duration", "+8613800000001", "+8613900000085", 5, EVERY),
    )
}


def mix(n: int, long_every: int = 10) -> list[Fate]:
    """A load of ``n`` calls: mostly normal, with every other fate sprinkled in."""
    others = [f for f in FATES.values() if f.name not in ("normal", "max_duration")]
    fates = []
    for i in range(n):
        if i % long_every == long_every - 1:
            fates.append(FATES["max_duration"])
        elif i % 5 == 4:
            fates.append(others[(i // 5) % len(others)])
        else:
            fates.append(FATES["normal"])
    return fates


def stamps_of(view: dict[str, Any]) -> frozenset[str]:
    return frozenset(name for name in TIMESTAMPS if view.get(name) is not None)


def consistent(view: dict[str, Any]) -> bool:
    """Timestamps in order, duration = ceil(close - conn)."""
    times = [view[name] for name in TIMESTAMPS if view.get(name) is not None]
    if times != sorted(times):
        return False
    conn, close = view.get("conn_time"), view.get("close_time")
    expected = 0 if conn is None or close is None else math.ceil((close - conn) / 1000)
    return bool(view.get("duration") == expected)


@dataclass
class Placed:
    """One call the driver placed, and what its final record must look like."""

    id: str
    fate: Fate
    channel: str | None  # the channel asked for (None: CC routes)
    max_duration: int | None = None
    # channels the call may legitimately end on (failover); None: the one asked for
    allowed_channels: frozenset[str] | None = None
    # overrides of the fate's expectation (place-fault scenarios)
    close_types: frozenset[int] | None = None
    stamps: frozenset[str] | None = None
    # the record of the same call in a clean run (delivery chaos): must match it
    baseline: dict[str, Any] | None = None
    # False when CC could not hang up in time (Temporal down at the cut): the record must then
    # tell the real talk time, at least max_duration
    exact_max: bool = True
    # moments the vendor dropped (hw: queued events lost with a session) that nothing later
    # proved: the record may lack them, and must have every other
    may_miss: frozenset[str] = frozenset()

    def correct(self, view: dict[str, Any] | None) -> bool:
        if view is None or view.get("state") != "close":
            return False
        close_types = self.close_types or frozenset({self.fate.close_type})
        if view.get("close_type") not in close_types:
            return False
        expected = self.stamps if self.stamps is not None else self.fate.stamps
        stamps = stamps_of(view)
        if (self.stamps is not None or self.close_types is None) and not (
            expected - self.may_miss <= stamps <= expected
        ):
            return False
        long_call = self.fate.name == "max_duration" and self.close_types is None
        if long_call and self.max_duration is not None:
            # CC cuts the call at max_duration on a timer; the vendor's own limit, set
            # VENDOR_LIMIT_MARGIN_S above, is the backstop for a cut that comes late (a worker
            # restarting and replaying under load): the record must tell the real talk time.
            duration = int(view.get("duration") or 0)
            latest = self.max_duration + (VENDOR_LIMIT_MARGIN_S if self.exact_max else 10**6)
            if not self.max_duration <= duration <= latest:
                return False
        allowed = self.allowed_channels or (
            frozenset({self.channel}) if self.channel else frozenset(CHANNELS)
        )
        exact = self.exact_max or not long_call
        if self.baseline is not None and not same_outcome(view, self.baseline, exact):
            return False
        return view.get("channel") in allowed and consistent(view)


def same_outcome(view: dict[str, Any], baseline: dict[str, Any], exact: bool = True) -> bool:
    """Same state, close_type and set timestamps; duration within a second (``exact``)."""
    duration_gap = abs(int(view.get("duration") or 0) - int(baseline.get("duration") or 0))
    return (
        view.get("state") == baseline.get("state")
        and view.get("close_type") == baseline.get("close_type")
        and stamps_of(view) == stamps_of(baseline)
        and (duration_gap <= 1 or not exact)
    )


# -- processes -------------------------------------------------------------------------------
class Proc:
    """One child process of the stack; its output goes to ``<logs>/<name>.log``."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.argv, self.env, self.logs = name, argv, env, logs
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Proc:
        assert not self.alive, f"{self.name} is already running"
        self.starts += 1
        log = open(self.logs / f"{self.name}.log", "ab")  # noqa: SIM115 - the child owns it
        log.write(f"\n=== start #{self.starts} at {time.strftime('%H:%M:%S')} ===\n".encode())
        log.flush()
        self.popen = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, the crash: no clean-up runs in the child."""
        if self.popen is not None and self.alive:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self, within: float = 10.0) -> None:
        if self.popen is None or not self.alive:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = 30) -> str:
        path = self.logs / f"{self.name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# Short timers so that every scenario ends in seconds, not minutes.
CHAOS_SETTINGS: dict[str, Any] = {
    "sim_retry_scale": 0.05,
    "watchdog_grace_s": 20,
    "watchdog_hangup_wait_s": 3,
    "late_event_window_s": 2,
    "inbox_redeliver_after_s": 1.0,
    "inbox_redeliver_every_s": 1.0,
    "inbox_retry_initial_s": 0.5,
    "inbox_retry_max_s": 3.0,
    "webhook_signal_budget_s": 1.0,
    "vendor_timeout_s": 2.0,
    "place_deadline_s": 120.0,
    "place_unknown_wait_s": 6.0,
    "setup_silence_s": 6.0,
    "connected_check_s": 10.0,
    "health_interval_s": 1.0,
    "health_cooldown_s": 5.0,
    "health_successes_to_close": 1,
    "lease_reconcile_interval_s": 2.0,
    "lease_min_age_s": 60.0,
    "recording_deadline_s": 5,
    "recording_retry_initial_s": 0.3,
    "recording_retry_max_s": 1.0,
    "egress_allow": ["127.0.0.1"],  # the simulators' recordings, the tests' receivers
    "log_level": "INFO",
}
SIM_TIMING = {"ring_ms": 300, "talk_ms": 1500, "no_answer_ms": 600, "recording_delay_ms": 300}


class ChaosStack:
    """Temporal, the simulators, a worker and the API, each a process this object owns."""

    def __init__(
        self,
        workdir: Path,
        *,
        lines_per_channel: int = 12,
        database_url: str | None = None,
        **overrides: Any,
    ) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.lines_per_channel = lines_per_channel
        api_port = free_port()
        self.temporal_port = free_port()
        values: dict[str, Any] = {
            **CHAOS_SETTINGS,
            **{f"{name}_base_url": f"http://127.0.0.1:{free_port()}" for name in CHANNELS},
            "database_url": database_url or f"sqlite:///{workdir / 'cc.db'}",
            "temporal_address": f"127.0.0.1:{self.temporal_port}",
            "task_queue": "cc-chaos",
            "api_host": "127.0.0.1",
            "api_port": api_port,
            "public_base_url": f"http://127.0.0.1:{api_port}",
            "storage_dir": str(workdir / "recordings"),
            "payload_keys": PAYLOAD_KEYS,  # sealed payloads, as make run's
            **overrides,
        }
        self.settings = Settings(**values)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
        self.env = {**env, **settings_env(self.settings), "PYTHONUNBUFFERED": "1"}
        python = sys.executable
        temporal = [
            temporal_cli(), "server", "start-dev", "--ip", "127.0.0.1",
            "--port", str(self.temporal_port), "--headless",
            "--db-filename", str(workdir / "temporal.db"),
            "--sqlite-pragma", "journal_mode=wal", "--log-level", "error",
        ]  # fmt: skip
        for key in SEARCH_ATTRIBUTES:
            temporal += ["--search-attribute", f"{key.name}=Keyword"]
        self.temporal = Proc("temporal", temporal, self.env, self.logs)
        self.sim_procs = {
            name: Proc(f"sim-{name}", [python, "-m", SIMULATORS[name]], self.env, self.logs)
            for name in CHANNELS
        }
        self.worker = Proc("worker", [python, "worker.py"], self.env, self.logs)
        self.api_proc = Proc(
            "api",
            [python, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(api_port), "--log-level", "warning", "--no-access-log"],
            self.env,
            self.logs,
        )  # fmt: skip
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.sims = {
            name: httpx.AsyncClient(base_url=spec.base_url(self.settings), timeout=10)
            for name, spec in CHANNELS.items()
        }
        self.client: Client | None = None

    @property
    def procs(self) -> list[Proc]:
        return [self.temporal, *self.sim_procs.values(), self.worker, self.api_proc]

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self, timing: dict[str, int] | None = None) -> ChaosStack:
        self.seed()
        self.temporal.start()
        for proc in self.sim_procs.values():
            proc.start()
        self.client = await self.wait_temporal()
        for name, sim in self.sims.items():
            await self.wait_http(sim, "/_sim/calls", self.sim_procs[name])
            await sim.put("/_sim/timing", json=timing or SIM_TIMING)
        self.worker.start()
        await self.start_api()
        return self

    def seed(self) -> None:
        upgrade(self.settings.database_url)
        engine = make_engine(self.settings.database_url)
        with session_scope(engine) as s:
            ensure_tenant(s, TENANT)
            add_api_key(s, TENANT, API_KEY, scope="admin")
            for c, channel in enumerate(CHANNELS):
                for i in range(self.lines_per_channel):
                    provision(s, TENANT, ResourceKind.LINE, channel, line_id(channel, i))
                    ensure_line(s, TENANT, channel, line_id(channel, i), f"+86108{c}8{i:04d}")
            for main_num in MAIN_NUMBERS:
                provision(s, TENANT, ResourceKind.MAIN_NUM, "", main_num)
        engine.dispose()

    async def wait_temporal(self, within: float = 60.0) -> Client:
        deadline = time.monotonic() + within
        while True:
            if not self.temporal.alive:
                raise RuntimeError(f"temporal exited:\n{self.temporal.tail()}")
            try:
                return await asyncio.wait_for(
                    Client.connect(self.settings.temporal_address,
                                   data_converter=data_converter(self.settings.payload_keys)),
                    timeout=5,
                )  # fmt: skip
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)

    async def wait_http(
        self, client: httpx.AsyncClient, path: str, proc: Proc, within: float = 60.0
    ) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not proc.alive:
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(path, timeout=2)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{proc.name} not ready at {path} within {within}s:\n{proc.tail()}")

    async def start_api(self) -> None:
        self.api_proc.start()
        async with httpx.AsyncClient(base_url=self.api_url) as probe:
            await self.wait_http(probe, "/healthz", self.api_proc)

    async def start_temporal(self) -> None:
        self.temporal.start()
        self.client = await self.wait_temporal()

    async def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        for sim in self.sims.values():
            await sim.aclose()

    def api(self, timeout: float = 10.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=timeout,
        )

    def check_alive(self) -> None:
        dead = [p.name for p in self.procs if p.starts and not p.alive]
        if dead:
            raise RuntimeError(f"processes died unexpectedly: {dead}; logs in {self.logs}")


@contextlib.asynccontextmanager
async def running(
    workdir: Path, timing: dict[str, int] | None = None, **kwargs: Any
) -> AsyncIterator[ChaosStack]:
    """A started ChaosStack, stopped (every process) whatever happens."""
    stack = ChaosStack(workdir, **kwargs)
    try:
        await stack.start(timing)
        yield stack
    except BaseException:
        print(f"chaos stack logs: {stack.logs}")
        for proc in stack.procs:
            print(f"--- {proc.name} (last lines) ---\n{proc.tail(15)}")
        raise
    finally:
        await stack.stop()


# -- PostgreSQL of the suite's own -------------------------------------------------------------
class OwnPostgres:
    """A throw-away PostgreSQL cluster (initdb + pg_ctl) on a spare port, in a temp dir.

    The machine's shared server (5432) is never touched. As root, the cluster belongs to the
    ``postgres`` user and every command runs through ``runuser``.
    """

    def __init__(self) -> None:
        self.bindir = self.find_bindir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="cc-chaos-pg-"))
        self.data = self.dir / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RuntimeError("running as root and runuser is missing")
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = [runuser, "-u", "postgres", "--"]
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def find_bindir() -> Path:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not found:
            raise RuntimeError("initdb not found under /usr/lib/postgresql/*/bin")
        return found[-1].parent

    def run(self, *argv: str, timeout: float = 60) -> None:
        command = [*self.as_user, *argv]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def init(self) -> OwnPostgres:
        self.run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                 "postgres", "--no-sync")  # fmt: skip
        self.start()
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                 "-l", str(self.dir / "postgres.log"), "-w", "-t", "60", "start")  # fmt: skip

    def stop(self) -> None:
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                 "-w", "-t", "60", "stop")  # fmt: skip

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- the load driver -------------------------------------------------------------------------
class Driver:
    """Places calls and reads records like an app would, counting every answer it gets."""

    def __init__(
        self, stack: ChaosStack, long_max_duration: int = 6, exact_max: bool = True
    ) -> None:
        self.stack = stack
        self.exact_max = exact_max
        self.long_max_duration = long_max_duration  # max_duration of the "max_duration" fate
        self.http = stack.api()
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.placed: list[Placed] = []
        self.refused: list[tuple[str, int]] = []  # (fate, status) placings given up
        # The worker is killed while calls may still be placed (a loaded machine): a request
        # it had out has an unknown outcome (VENDORS.md: never placed again, closed 7).
        self.kills_placements = False

    async def close(self) -> None:
        await self.http.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.errors[exc.__class__.__name__] += 1
            return None
        self.statuses[response.status_code] += 1
        return response

    async def place(
        self,
        fate: Fate,
        channel: str | None = None,
        within: float = 60.0,
        **extra: Any,
    ) -> Placed | None:
        """POST /v1/calls, retried with the same Idempotency-Key while the API is away."""
        body: dict[str, Any] = {"caller": fate.caller, "called": fate.called, **extra}
        if channel is not None:
            body["channel"] = channel
        if fate.name == "max_duration":
            body.setdefault("max_duration", self.long_max_duration)
        key = uuid.uuid4().hex
        deadline = time.monotonic() + within
        status = 0
        while time.monotonic() < deadline:
            response = await self.request(
                "POST", "/v1/calls", json=body, headers={"Idempotency-Key": key}
            )
            if response is not None and response.status_code in (200, 201):
                placed = Placed(response.json()["id"], fate, channel, body.get("max_duration"))
                placed.exact_max = self.exact_max
                self.placed.append(placed)
                return placed
            if response is not None:
                status = response.status_code
                if response.status_code < 500 and response.status_code != 429:
                    break  # a refusal (409 line busy, 422): not retried
            await asyncio.sleep(0.5)
        self.refused.append((fate.name, status))
        return None

    async def place_many(
        self,
        fates: list[Fate],
        channels: list[str | None],
        concurrency: int = 4,
        per_second: float = 8.0,
        **extra: Any,
    ) -> list[Placed]:
        """Place ``fates[i]`` on ``channels[i % len]``, paced (jy allows 20 calls/s)."""
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int, fate: Fate) -> Placed | None:
            await asyncio.sleep(i / per_second)
            async with gate:
                return await self.place(fate, channels[i % len(channels)], **extra)

        results = await asyncio.gather(*(one(i, f) for i, f in enumerate(fates)))
        return [p for p in results if p is not None]

    async def view(self, call_id: str) -> dict[str, Any] | None:
        response = await self.request("GET", f"/v1/calls/{call_id}")
        if response is None or response.status_code != 200:
            return None
        view: dict[str, Any] = response.json()
        return view

    async def views(self, ids: Iterable[str]) -> dict[str, dict[str, Any] | None]:
        gate = asyncio.Semaphore(8)

        async def one(call_id: str) -> tuple[str, dict[str, Any] | None]:
            async with gate:
                return call_id, await self.view(call_id)

        return dict(await asyncio.gather(*(one(i) for i in ids)))

    async def wait_closed(self, within: float) -> dict[str, dict[str, Any] | None]:
        """Until every placed call is closed (or the deadline); returns the last views."""
        deadline = time.monotonic() + within
        views: dict[str, dict[str, Any] | None] = {}
        open_ids = [p.id for p in self.placed]
        while open_ids and time.monotonic() < deadline:
            views.update(await self.views(open_ids))
            open_ids = [i for i in open_ids if (views.get(i) or {}).get("state") != "close"]
            if open_ids:
                await asyncio.sleep(1.0)
        return views

    async def live(self) -> int:
        """How many placed calls are not closed yet."""
        views = await self.views(p.id for p in self.placed)
        return sum(1 for v in views.values() if v is None or v.get("state") != "close")

    async def wait_state(self, state: str, within: float, at_least: int | None = None) -> int:
        """Until ``at_least`` placed calls (default: all) have reached ``state`` or later."""
        order = {"init": 0, "conn": 1, "close": 2}
        wanted = len(self.placed) if at_least is None else at_least
        deadline = time.monotonic() + within
        reached = 0
        while time.monotonic() < deadline:
            views = await self.views(p.id for p in self.placed)
            reached = sum(
                1
                for v in views.values()
                if v is not None and order.get(v.get("state", ""), -1) >= order[state]
            )
            if reached >= wanted:
                break
            await asyncio.sleep(0.5)
        return reached


# -- the figures -----------------------------------------------------------------------------
@dataclass
class Row:
    """One scenario's figures; see docs/reliability.md for each column's definition.

    placed: calls the API accepted (201/200 with an id).
    closed_ok: of those, calls whose final record is right: state ``close``, the expected
        close_type, the expected set of timestamps (in order, duration = ceil(close-conn)),
        on an allowed channel.
    dialled_twice: CC call ids a vendor accepted a place request for (listed in a
        simulator's ``/_sim/calls``) more than once, counted across every simulator.
    lines_busy: agent lines still holding a lease once every call closed plus a grace.
    events_lost: vendor events a simulator delivered with a 2xx answer, that the inbox does
        not hold as applied (e9: by eventId; jy: by CallSid+SequenceNumber), plus polled (hw)
        inbox rows of the scenario's calls never applied.
    five_xx: answers >= 500 the API gave, to the simulators' webhook deliveries and to the
        load driver; a 503 counts only when the scenario has no deliberate outage (during an
        outage 503 is the designed "retry later" answer; those are listed in notes).
    """

    scenario: str
    placed: int = 0
    closed_ok: int = 0
    dialled_twice: int = 0
    lines_busy: int = 0
    events_lost: int = 0
    five_xx: int = 0
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    calls: bool = True  # False: a scenario that places no calls of its own (API fuzzing)

    def cells(self) -> list[str]:
        notes = ", ".join(f"{k}={v}" for k, v in self.notes.items())
        figures = [self.placed, self.closed_ok, self.dialled_twice, self.lines_busy,
                   self.events_lost]  # fmt: skip
        shown = [str(n) if self.calls else "n/a" for n in figures]
        return [self.scenario, *shown, str(self.five_xx), f"{self.seconds:.0f}", notes]

    def problems(self) -> list[str]:
        """What is not zero (or not all) that must be."""
        found = list(self.failures)
        if not self.calls:
            return found + ([f"five_xx = {self.five_xx}"] if self.five_xx else [])
        if self.placed == 0:
            found.append("no call was placed")
        if self.closed_ok != self.placed:
            found.append(f"closed correctly {self.closed_ok} of {self.placed}")
        for name in ("dialled_twice", "lines_busy", "events_lost", "five_xx"):
            if getattr(self, name):
                found.append(f"{name} = {getattr(self, name)}")
        return found


HEADER = ["scenario", "calls placed", "closed correctly", "dialled twice", "lines left busy",
          "events lost", "5xx seen", "seconds", "notes"]  # fmt: skip
ROWS: list[Row] = []


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def write_report(rows: list[Row]) -> str:
    failed = [f"- {r.scenario}: {'; '.join(r.problems())}" for r in rows if r.problems()]
    text_ = "\n".join(
        [
            "# Chaos run",
            "",
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}; column definitions: docs/reliability.md",
            "",
            table(rows),
            "",
            *(["Not zero:", *failed] if failed else ["Every figure is as it must be."]),
            "",
        ]
    )
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(text_)
    return text_


def vendor_accepted(sim_calls: dict[str, list[dict[str, Any]]]) -> Counter[str]:
    """CC call id → how many calls the vendors accepted for it, across every simulator."""
    counts: Counter[str] = Counter()
    for channel, calls in sim_calls.items():
        for call in calls:
            cc_id = call.get({"jy": "tag", "hw": "callappdata"}.get(channel, "userData"))
            if cc_id:
                counts[str(cc_id)] += 1
    return counts


def _event_identity(channel: str, body: str) -> tuple[str | None, str | None]:
    """(CC call id, dedupe prefix) of a delivered webhook body."""
    try:
        if channel == "e9":
            payload = json.loads(body)
            return payload.get("userData") or None, str(payload["eventId"])
        form = dict(parse_qsl(body, keep_blank_values=True))
        return form.get("Tag") or None, f"{form['CallSid']}:{form['SequenceNumber']}:"
    except (ValueError, KeyError, TypeError):
        return None, None


async def sim_logs(stack: ChaosStack) -> dict[str, dict[str, list[dict[str, Any]]]]:
    logs = {}
    for name, sim in stack.sims.items():
        logs[name] = (await sim.get("/_sim/log")).json()
    return logs


# channel -> (method, path ending, body field with CC's call id) of its place request
PLACE_REQUESTS = {
    "e9": ("POST", "/Calls/Callback", "userData"),
    "hw": ("PUT", "/callout", "callappdata"),
    "jy": ("POST", "/Calls.json", "Tag"),
}


def place_requests(logs: dict[str, dict[str, list[dict[str, Any]]]]) -> Counter[tuple[str, str]]:
    """(CC call id, channel) → place requests the simulator received (accepted or not)."""
    counts: Counter[tuple[str, str]] = Counter()
    for channel, log in logs.items():
        method, path, field = PLACE_REQUESTS[channel]
        for request in log["requests"]:
            if request["method"] != method or not request["path"].endswith(path):
                continue
            body = str(request.get("body") or "")
            cc_id: Any = None
            if channel == "jy":
                cc_id = dict(parse_qsl(body)).get(field)
            else:
                with contextlib.suppress(ValueError, AttributeError):
                    cc_id = json.loads(body).get(field)
            if cc_id:
                counts[(str(cc_id), channel)] += 1
    return counts


async def sim_calls(stack: ChaosStack) -> dict[str, list[dict[str, Any]]]:
    return {name: (await sim.get("/_sim/calls")).json() for name, sim in stack.sims.items()}


def busy_lines(stack: ChaosStack) -> list[tuple[str, str, str]]:
    engine = make_engine(stack.settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT channel, agent, lease_call_id FROM agent_line "
                     "WHERE lease_call_id IS NOT NULL")
            ).all()  # fmt: skip
        return [(str(a), str(b), str(c)) for a, b, c in rows]
    finally:
        engine.dispose()


def table_rows(stack: ChaosStack, table: str, *columns: str) -> list[dict[str, Any]]:
    """Every row of one of the stack's tables, as dicts of ``columns``."""
    engine = make_engine(stack.settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(f"SELECT {', '.join(columns)} FROM {table}")).all()
        return [dict(zip(columns, row, strict=True)) for row in rows]
    finally:
        engine.dispose()


def inbox_rows(stack: ChaosStack) -> list[dict[str, Any]]:
    rows = table_rows(stack, "vendor_event", "channel", "dedupe_key", "cc_call_id", "applied",
                      "note", "kind")  # fmt: skip
    return [{**row, "applied": bool(row["applied"])} for row in rows]


async def signals_per_call(stack: ChaosStack, ids: list[str]) -> dict[str, int]:
    """How many WorkflowExecutionSignaled events each call's workflow history holds."""
    assert stack.client is not None
    client = stack.client
    counts: dict[str, int] = {}
    gate = asyncio.Semaphore(8)

    async def one(call_id: str) -> None:
        async with gate:
            handle = client.get_workflow_handle(workflow_id(call_id))
            try:
                history = await asyncio.wait_for(handle.fetch_history(), timeout=30)
            except Exception:  # noqa: BLE001 - a call without a workflow has no signals
                counts[call_id] = 0
                return
            signaled = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            counts[call_id] = sum(1 for e in history.events if e.event_type == signaled)

    await asyncio.gather(*(one(i) for i in ids))
    return counts


async def wait_workflows(stack: ChaosStack, ids: list[str], within: float) -> int:
    """Until every call's workflow has completed (late events folded in); returns how many
    are still running at the deadline."""
    assert stack.client is not None
    client = stack.client
    deadline = time.monotonic() + within

    async def one(call_id: str) -> bool:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            await asyncio.wait_for(
                client.get_workflow_handle(workflow_id(call_id)).result(), remaining
            )
        except TimeoutError:
            return False
        except Exception:  # noqa: BLE001 - failed or gone: not "still running"
            return True
        return True

    done = await asyncio.gather(*(one(i) for i in ids))
    return sum(1 for d in done if not d)


def describe(placed: Placed, view: dict[str, Any] | None) -> str:
    """A wrong call, briefly: id, fate, and what its record says."""
    if view is None:
        return f"{placed.id}:{placed.fate.name}->no record"
    stamps = stamps_of(view)
    missing = placed.stamps or placed.fate.stamps
    return (
        f"{placed.id}:{placed.fate.name}@{view.get('channel')}->{view.get('state')}"
        f"/ct={view.get('close_type')}/dur={view.get('duration')}"
        f"/missing={','.join(sorted(missing - stamps)) or '-'}"
        f"/extra={','.join(sorted(stamps - missing)) or '-'}"
        f"{'' if consistent(view) else '/inconsistent'}"
    )


# hw busy fates, and what their failure closes as when the gateway gives no cause for it.
_UNANNOUNCED = {3: 1, 4: 2}  # A busy → A unreachable, B busy → B unreachable


async def allow_unannounced_causes(
    stack: ChaosStack, driver: Driver, views: dict[str, dict[str, Any] | None]
) -> None:
    """VENDORS.md, hw: ``OUTBOUND_DETECT_EVENT`` *may* precede a failure with its cause (the
    simulator sends it on three failures of four). Without it a busy leg is indistinguishable
    from an unreachable one: such a call may close as the same leg unreachable."""
    log = (await stack.sims["hw"].get("/_sim/log")).json()["events"]
    announced = set()
    for entry in log:
        event = json.loads(entry["body"])
        if event.get("eventType") == "OUTBOUND_DETECT_EVENT":
            announced.add(str((event.get("content") or {}).get("callId")))
    for placed in driver.placed:
        view, fate = views.get(placed.id) or {}, placed.fate
        busy_on_hw = view.get("channel") == "hw" and fate.close_type in _UNANNOUNCED
        if busy_on_hw and placed.close_types is None and view.get("call_id") not in announced:
            placed.close_types = frozenset({fate.close_type, _UNANNOUNCED[fate.close_type]})
            placed.stamps = placed.stamps or fate.stamps


def allow_unknown_outcomes(
    driver: Driver, views: dict[str, dict[str, Any] | None], accepted: Counter[str]
) -> int:
    """A call whose place request the killed worker had out, and that no vendor accepted,
    closes 7 with no time but its close (VENDORS.md: an unknown outcome is never placed
    again): right, for such a call. How many there were."""
    unknown = 0
    for placed in driver.placed:
        view = views.get(placed.id) or {}
        if accepted[placed.id] == 0 and view.get("close_type") == 7:
            placed.close_types, placed.stamps = frozenset({7}), NOTHING
            unknown += 1
    return unknown


async def measure(
    scenario: str,
    stack: ChaosStack,
    driver: Driver,
    *,
    started: float,
    close_within: float = 120.0,
    grace: float = 20.0,
    allow_503: bool = False,
    signal_slack: int | None = None,
    webhooks_must_answer: bool = False,
    notes: dict[str, Any] | None = None,
) -> Row:
    """Wait for every call to close, then compute the scenario's row (and record it)."""
    row = Row(scenario, notes=dict(notes or {}))
    ids = [p.id for p in driver.placed]
    row.placed = len(ids)
    views = await driver.wait_closed(close_within)
    still_running = await wait_workflows(stack, ids, within=30)
    views = await driver.views(ids)  # after late events
    await allow_unannounced_causes(stack, driver, views)
    accepted = vendor_accepted(await sim_calls(stack))
    if driver.kills_placements:
        row.notes["unknown_at_kill"] = allow_unknown_outcomes(driver, views, accepted)
    row.closed_ok = sum(1 for p in driver.placed if p.correct(views.get(p.id)))
    wrong = [describe(p, views.get(p.id)) for p in driver.placed if not p.correct(views.get(p.id))]
    if wrong:
        row.notes["wrong"] = " ".join(wrong[:5]) + (" …" if len(wrong) > 5 else "")
    if still_running:
        row.notes["workflows_running"] = still_running

    # dialled twice
    row.dialled_twice = sum(1 for n in accepted.values() if n > 1)
    row.notes["never_dialled"] = sum(1 for i in ids if accepted[i] == 0)

    # lines left busy, after a grace
    deadline = time.monotonic() + grace
    busy = busy_lines(stack)
    while busy and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        busy = busy_lines(stack)
    row.lines_busy = len(busy)

    # events lost: an event stored while the store or the worker was down is applied by the
    # inbox redelivery a little later (a late event, once its call has closed): what is still
    # unapplied after the grace is lost.
    deadline = time.monotonic() + grace
    while True:
        logs = await sim_logs(stack)
        rows = inbox_rows(stack)
        applied = {(r["channel"], r["dedupe_key"]) for r in rows if r["applied"]}
        applied_prefixes = {(r["channel"], r["dedupe_key"].rsplit(":", 1)[0] + ":")
                            for r in rows if r["applied"]}  # fmt: skip
        ours = set(ids)
        lost: set[tuple[str, str]] = set()
        webhook_5xx = webhook_503 = webhook_bad = 0
        for channel in ("e9", "jy"):
            for event in logs[channel]["events"]:
                status = event["status"]
                if isinstance(status, int) and status >= 500:
                    if status == 503:
                        webhook_503 += 1
                    else:
                        webhook_5xx += 1
                if not (isinstance(status, int) and 200 <= status < 300):
                    if status != "dropped":
                        webhook_bad += 1
                    continue
                cc_id, key = _event_identity(channel, event["body"])
                if cc_id not in ours or key is None:
                    continue
                known = (
                    (channel, key) in applied
                    if channel == "e9"
                    else (channel, key) in (applied_prefixes)
                )
                if not known:
                    lost.add((channel, key))
        polled_unapplied = [
            r for r in rows if r["channel"] == "hw" and r["cc_call_id"] in ours and not r["applied"]
        ]
        if not (lost or polled_unapplied) or time.monotonic() >= deadline:
            break
        await asyncio.sleep(1.0)
    row.events_lost = len(lost) + len(polled_unapplied)
    if lost or polled_unapplied:
        by_key = {(r["channel"], r["dedupe_key"]): r for r in rows}
        sample = []
        for channel, key in sorted(lost)[:3]:
            found = by_key.get((channel, key)) or next(
                (r for (c, k), r in by_key.items() if c == channel and k.startswith(key)), None
            )
            state = (
                "no inbox row"
                if found is None
                else f"{found['kind']} unapplied note={found['note']}"
            )
            sample.append(f"{channel}:{key[:24]}:{state}")
        sample += [
            f"hw:{r['dedupe_key'][:24]}:{r['kind']} unapplied note={r['note']}"
            for r in polled_unapplied[:3]
        ]
        row.notes["lost_sample"] = " ".join(sample)
    row.notes["webhook_non2xx_attempts"] = webhook_bad
    # One poll per seat, whichever worker runs it, across kills and restarts: the gateway
    # refuses a second concurrent poll of a seat (000-007) and counts it.
    gateway = (await stack.sims["hw"].get("/_sim/gateway")).json()
    row.notes["hw_polls_refused"] = refused = gateway["concurrent_polls_refused"]
    if refused:
        row.failures.append(f"hw_polls_refused = {refused}")

    # 5xx
    driver_5xx = sum(n for s, n in driver.statuses.items() if s >= 500 and s != 503)
    driver_503 = driver.statuses.get(503, 0)
    row.five_xx = webhook_5xx + driver_5xx
    if allow_503:
        row.notes["503s"] = webhook_503 + driver_503
    else:
        row.five_xx += webhook_503 + driver_503
    if driver.errors:
        row.notes["driver_conn_errors"] = sum(driver.errors.values())
    if driver.refused:
        row.notes["placing_refused"] = len(driver.refused)

    if webhooks_must_answer and webhook_bad:
        row.failures.append(f"{webhook_bad} webhook deliveries not answered 2xx within 3 s")

    if signal_slack is not None:
        signals = await signals_per_call(stack, ids)
        per_call = Counter(r["cc_call_id"] for r in rows if r["cc_call_id"] in ours)
        over = {i: signals[i] - per_call[i] for i in ids if signals[i] > per_call[i] + signal_slack}
        row.notes["max_signals_minus_events"] = max(
            (signals[i] - per_call[i] for i in ids), default=0
        )
        if over:
            row.failures.append(f"{len(over)} calls got more than events+{signal_slack} signals")

    row.seconds = time.monotonic() - started
    ROWS.append(row)
    return row
