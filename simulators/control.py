"""A vendor simulator's app: the vendor's routes, the shared request log and the control API
(``/_sim/...``), and ``python -m simulators.<vendor>`` serving it.

The control API is mounted only when a module runs as a simulator; it is how demos, load
tests and chaos drills steer the fake vendor (faults, timing, the log, its calls and, for a
vendor that hosts 400 numbers, a customer calling one: ``simulators/inbound.py``).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import httpx
import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, Field

from channels.registry import Settings, get_settings
from core.config import SERVER_KEEP_ALIVE_S
from simulators.common import Faults, SimState, now_ms
from simulators.inbound import InboundSimulator, inbound_router
from simulators.scenario import Timing


class TimingUpdate(BaseModel):
    ring_ms: int | None = Field(default=None, ge=0)
    talk_ms: int | None = Field(default=None, ge=0)
    no_answer_ms: int | None = Field(default=None, ge=0)
    recording_delay_ms: int | None = Field(default=None, ge=0)
    recording_ttl_ms: int | None = Field(default=None, ge=0)


def control_router(state: SimState, calls: Callable[[], list[dict[str, Any]]]) -> APIRouter:
    router = APIRouter(prefix="/_sim", tags=["simulator control"])

    @router.put("/faults")
    async def put_faults(faults: Faults) -> Faults:
        state.faults = faults
        state.release_held()
        if faults.seed is not None:
            state.rng.seed(faults.seed)
        return state.faults

    @router.put("/timing")
    async def put_timing(update: TimingUpdate) -> Timing:
        state.timing = state.timing.model_copy(update=update.model_dump(exclude_none=True))
        return state.timing

    @router.get("/log")
    async def get_log() -> dict[str, list[dict[str, Any]]]:
        return {"requests": list(state.requests), "events": list(state.events)}

    @router.delete("/log", status_code=204)
    async def clear_log() -> None:
        state.requests.clear()
        state.events.clear()

    @router.get("/calls")
    async def list_calls() -> list[dict[str, Any]]:
        return calls()

    return router


def install_request_log(app: FastAPI, state: SimState) -> None:
    @app.middleware("http")
    async def record(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response
        if request.url.path.startswith("/_sim"):
            response = await call_next(request)
            return response
        body = await request.body()
        entry: dict[str, Any] = {
            "at": now_ms(),
            "method": request.method,
            "path": request.url.path,
            "query": str(request.url.query),
            "headers": dict(request.headers),
            "body": body.decode("utf-8", errors="replace"),
            "status": None,  # the answer's, once given
        }
        state.requests.append(entry)
        response = await call_next(request)
        entry["status"] = response.status_code
        return response


class VendorSimulator(Protocol):
    sim: SimState

    def router(self) -> APIRouter: ...

    def calls_view(self) -> list[dict[str, Any]]: ...


def simulator_app(title: str, simulator: VendorSimulator) -> FastAPI:
    """A vendor's routes plus the shared request log and control API."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        simulator.sim.http = httpx.AsyncClient()
        yield
        await simulator.sim.close()

    app = FastAPI(title=title, lifespan=lifespan)
    install_request_log(app, simulator.sim)
    # Control routes first: a vendor's catch-all route (OSS's /{bucket}/{key}) must not
    # swallow /_sim/....
    if isinstance(simulator, InboundSimulator):
        app.include_router(inbound_router(simulator.inbound))
    app.include_router(control_router(simulator.sim, simulator.calls_view))
    app.include_router(simulator.router())
    return app


def serve(
    create_app: Callable[[Settings], FastAPI], base_url: Callable[[Settings], str], doc: str
) -> None:
    """``python -m simulators.<vendor>``: serve on the port of the vendor's base URL."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    settings = get_settings()
    port = settings.port_of(base_url(settings))
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=port,
        log_level="warning",
        timeout_keep_alive=SERVER_KEEP_ALIVE_S,
    )
