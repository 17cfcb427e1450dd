"""The whole stack on real sockets: Temporal dev server, API, every simulator, a worker.

Session fixtures, shared by tests/e2e and tests/contract (registered in tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from callflow.circuit import CircuitState
from channels.registry import CHANNELS, Settings
from contracts.ids import HEALTH_WORKFLOW_ID
from core.codec import data_converter
from core.types import ResourceKind
from scripts.inprocess import free_port, start_servers
from store.db import make_engine, now_ms, session_scope
from store.lines import ensure_line
from store.migrate import upgrade
from store.provisions import provision
from store.tenants import add_api_key, ensure_tenant
from tests.support import wait_for
from tests.workflows.servers import dev_server_env
from worker import build_worker, ensure_service_workflows
from workflows.health import ChannelHealthWorkflow

API_KEY = "test-key-tenant-a"
ADMIN_KEY = "test-key-tenant-a-admin"  # tenant-a, scope admin
OPERATOR_KEY = "test-operator-key"  # the platform operator (routing overrides, provisioning)
SOLO_KEY = "test-key-tenant-solo"  # a tenant with a single line on each channel
# The e2e stack seals what it hands Temporal (core/codec.py), as make run does: the API, the
# worker and the tests' client share these keys.
PAYLOAD_KEYS = ["test-k1:" + base64.b64encode(bytes(range(32))).decode()]
JY_CPS = 5.0  # jy's calls per second in the e2e stack (tests/e2e/test_burst.py)
FAST_TIMING = {"ring_ms": 300, "talk_ms": 1500, "no_answer_ms": 600, "recording_delay_ms": 300}


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await dev_server_env(data_converter(PAYLOAD_KEYS))
    yield env
    await env.shutdown()


def make_settings(tmp: Path, temporal_address: str, task_queue: str) -> Settings:
    api_port = free_port()
    base_urls = {f"{name}_base_url": f"http://127.0.0.1:{free_port()}" for name in CHANNELS}
    return Settings(
        **base_urls,
        database_url=f"sqlite:///{tmp / 'cc.db'}",
        temporal_address=temporal_address,
        task_queue=task_queue,
        api_port=api_port,
        public_base_url=f"http://127.0.0.1:{api_port}",
        hw_seat_idle_s=4.0,
        sim_retry_scale=0.02,
        watchdog_grace_s=8,
        watchdog_hangup_wait_s=2,
        late_event_window_s=1,
        inbox_redeliver_after_s=1.0,
        inbox_redeliver_every_s=0.5,
        inbox_retry_initial_s=0.5,
        inbox_retry_max_s=2.0,
        place_unknown_wait_s=3.0,
        setup_silence_s=3.0,
        connected_check_s=5.0,
        vendor_timeout_s=2.0,
        health_interval_s=0.5,
        health_cooldown_s=8.0,
        health_successes_to_close=1,
        lease_reconcile_interval_s=2.0,
        lease_min_age_s=30.0,  # a terminated workflow is freed at once; a missing one after this
        storage_dir=str(tmp / "recordings"),
        recording_deadline_s=8,
        recording_retry_initial_s=0.2,
        recording_retry_max_s=1.0,
        operator_key=OPERATOR_KEY,
        egress_allow=["127.0.0.1"],  # the simulators' recordings, the tests' receivers
        payload_keys=PAYLOAD_KEYS,
        jy_cps=JY_CPS,  # CC's pace on jy: the jy simulator's limit
        sim_jy_cps=JY_CPS,
    )


def line_id(channel: str, i: int) -> str:
    """A test line's id: hw lines are CC-Gateway seats (10001, ...; the simulator has
    10001-10099), others ``<channel>-<i>``."""
    return str(10001 + i) if channel == "hw" else f"{channel}-{i}"


# The 400 numbers provisioned to tenant-a (the inbound tests bind extensions on them).
MAIN_NUMBERS = ("+864008001001", "+864008002002", "+864008003003", "+864001234567")
SOLO_LINE = {"hw": "10099"}  # the solo tenant's one line per channel (else <channel>-solo)


def seed(settings: Settings) -> None:
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        ensure_tenant(s, "tenant-a")
        ensure_tenant(s, "solo")
        add_api_key(s, "tenant-a", API_KEY)
        add_api_key(s, "tenant-a", ADMIN_KEY, scope="admin")
        for c, channel in enumerate(CHANNELS):
            for i in range(6):
                number = f"+86108{c}8000{i:02d}"
                provision(s, "tenant-a", ResourceKind.LINE, channel, line_id(channel, i))
                ensure_line(s, "tenant-a", channel, line_id(channel, i), number)
            solo = SOLO_LINE.get(channel, f"{channel}-solo")
            provision(s, "solo", ResourceKind.LINE, channel, solo)
            ensure_line(s, "solo", channel, solo, f"+86108{c}809999")
        add_api_key(s, "solo", SOLO_KEY)
        for main_num in MAIN_NUMBERS:
            provision(s, "tenant-a", ResourceKind.MAIN_NUM, "", main_num)
    engine.dispose()


@dataclass
class Stack:
    settings: Settings
    api: httpx.AsyncClient
    sim: httpx.AsyncClient  # the e9 simulator's control API
    client: Client
    sims: dict[str, httpx.AsyncClient]  # every channel's simulator, by channel

    def as_tenant(self, key: str, timeout: float = 5.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=str(self.api.base_url),
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout,
        )


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
async def stack(temporal_env: WorkflowEnvironment, stack_dir: Path) -> AsyncIterator[Stack]:
    address = temporal_env.client.service_client.config.target_host
    settings = make_settings(stack_dir, address, "cc-e2e")
    seed(settings)
    servers = start_servers(settings, create_app(settings))
    with ThreadPoolExecutor(16) as executor:
        worker = build_worker(temporal_env.client, settings, executor)
        worker_task = asyncio.create_task(worker.run())
        await ensure_service_workflows(temporal_env.client, settings)
        api = httpx.AsyncClient(
            base_url=settings.public_base_url, headers={"Authorization": f"Bearer {API_KEY}"}
        )
        sims = {
            name: httpx.AsyncClient(base_url=spec.base_url(settings))
            for name, spec in CHANNELS.items()
        }
        for sim in sims.values():
            await sim.put("/_sim/timing", json=FAST_TIMING)
        try:
            yield Stack(settings, api, sims["e9"], temporal_env.client, sims)
        finally:
            await api.aclose()
            for sim in sims.values():
                await sim.aclose()
            await worker.shutdown()
            worker_task.cancel()
            for server in servers:
                server.stop()


async def wait_all_channels_healthy(stack: Stack) -> None:
    """Until a probe round that started now has passed and every circuit is closed: a round
    still in flight from before cannot open a circuit in the next test's face."""
    health = stack.client.get_workflow_handle(HEALTH_WORKFLOW_ID)
    since = now_ms()

    async def settled() -> bool:
        if await health.query(ChannelHealthWorkflow.last_probe_round) < since:
            return False
        circuits = await health.query(ChannelHealthWorkflow.health)
        return all(c.state is CircuitState.CLOSED for c in circuits.values())

    await wait_for(settled, 60, "every channel back in routing")


@pytest.fixture
async def sim_faults(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The simulator's control API; faults are cleared when the test ends, and the next test
    starts only once health has put every channel back in routing."""
    yield stack.sim
    for sim in stack.sims.values():
        await sim.put("/_sim/faults", json={})
    await wait_all_channels_healthy(stack)
