"""A light API harness: the real app (middleware, error handlers, routes) on a fresh SQLite
store, called in-process over ASGI, with a fake Temporal client the test can steer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from api.app import create_app
from api.deps import AppState
from channels.registry import Settings, build_channels
from core.types import ResourceKind
from intake.delivery import DeliveryPolicy, Dispatcher
from storage import build_store
from store.db import make_engine, session_scope
from store.lines import ensure_line
from store.migrate import upgrade
from store.provisions import provision
from store.tenants import add_api_key, ensure_tenant

UNIT_TENANT, UNIT_KEY = "unit-t", "test-key-unit-t"
UNIT_LINE = ("e9", "e9-unit-1")  # the tenant's one line
OPERATOR_KEY = "test-operator-key"  # the platform operator's credential (CC_OPERATOR_KEY)
UNIT_MAIN = "+864008001234"  # the 400 number provisioned to the tenant
MAX_BODY = 4096


def not_found() -> RPCError:
    return RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")


@dataclass
class FakeTemporal:
    """Just the client calls the API makes. ``start_error`` is raised by start_workflow
    (after starting when ``start_anyway``); ``describe_error`` by describe of a workflow
    that was not started; ``update_error`` by start_update (``update_errors``: for one workflow)."""

    started: list[str] = field(default_factory=list)
    start_error: BaseException | None = None
    start_anyway: bool = False
    describe_error: BaseException | None = None
    update_error: BaseException | None = None
    update_errors: dict[str, BaseException] = field(default_factory=dict)  # by workflow id
    updates: list[str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)
    on_update: Callable[[], None] | None = None  # runs before update_error is raised
    inputs: dict[str, Any] = field(default_factory=dict)  # each started workflow's input

    async def start_workflow(
        self,
        *args: Any,
        id: str,  # noqa: A002
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.FAIL,
        **__: Any,
    ) -> None:
        await asyncio.sleep(0)
        if id in self.started and id_conflict_policy is WorkflowIDConflictPolicy.USE_EXISTING:
            return  # as Temporal: the running workflow is the answer
        if self.start_error is not None and not self.start_anyway:
            raise self.start_error
        self.started.append(id)
        self.inputs[id] = args[1] if len(args) > 1 else None
        if self.start_error is not None:
            raise self.start_error

    def get_workflow_handle(self, workflow_id: str) -> FakeHandle:
        return FakeHandle(self, workflow_id)


@dataclass
class FakeHandle:
    temporal: FakeTemporal
    id: str

    async def describe(self, **_: Any) -> str:
        if self.id in self.temporal.started:
            return "running"
        raise self.temporal.describe_error or not_found()

    async def signal(self, *_: Any, **__: Any) -> None:
        self.temporal.signals.append(self.id)

    async def start_update(self, *_: Any, **__: Any) -> FakeUpdate:
        self.temporal.updates.append(self.id)
        if self.temporal.on_update is not None:
            self.temporal.on_update()
        error = self.temporal.update_errors.get(self.id, self.temporal.update_error)
        if error is not None:
            raise error
        return FakeUpdate()


@dataclass
class FakeUpdate:
    """An update the workflow accepted (its outcome not known yet)."""

    _known_outcome: None = None


@dataclass
class Harness:
    app: FastAPI
    state: AppState
    temporal: FakeTemporal
    api: httpx.AsyncClient  # authenticated as UNIT_KEY


def unit_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'cc.db'}",
        "temporal_address": "127.0.0.1:1",
        "task_queue": "cc-api-unit",
        "max_body_bytes": MAX_BODY,
        "storage_dir": str(tmp_path / "recordings"),
        "operator_key": OPERATOR_KEY,
    }
    return Settings(**{**values, **overrides})


def asgi_client(app: FastAPI, **kwargs: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://cc.test", **kwargs)


def provision_lines(
    harness: Harness, channel: str, *agents: str, tenant: str = UNIT_TENANT
) -> None:
    """The operator's part: line ids of ``channel`` provisioned to ``tenant``."""
    with session_scope(harness.state.engine) as session:
        for agent in agents:
            provision(session, tenant, ResourceKind.LINE, channel, agent)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    settings = unit_settings(tmp_path)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        ensure_tenant(session, UNIT_TENANT)
        add_api_key(session, UNIT_TENANT, UNIT_KEY)
        ensure_line(session, UNIT_TENANT, *UNIT_LINE, "+8610880000001")
        provision(session, UNIT_TENANT, ResourceKind.LINE, *UNIT_LINE)
        provision(session, UNIT_TENANT, ResourceKind.MAIN_NUM, "", UNIT_MAIN)
    app = create_app(settings)
    temporal = FakeTemporal()
    dispatcher = Dispatcher(engine, DeliveryPolicy())
    state = AppState(settings, engine, build_channels(settings), build_store(settings),
                     dispatcher)  # fmt: skip
    state.temporal = temporal  # type: ignore[assignment]
    app.state.cc = state
    async with asgi_client(app, headers={"Authorization": f"Bearer {UNIT_KEY}"}) as api:
        yield Harness(app, state, temporal, api)
    for channel in state.channels.values():
        await channel.aclose()
    engine.dispose()
