"""The FastAPI application factory: ``uvicorn api.app:create_app --factory``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.codec import codec_app
from api.deps import AppState
from api.errors import install_error_handlers
from api.limits import BodyLimit
from api.openapi import DESCRIPTION, publish
from api.routes import (
    calls,
    channels,
    extensions,
    lines,
    notifications,
    ops,
    provisioning,
    recordings,
    stats,
    webhooks,
)
from api.routes import settings as settings_routes
from channels.registry import Settings, build_channels, get_settings
from contracts.client import connect_temporal
from contracts.config import redelivery_config
from core.logs import configure_logging
from intake.delivery import DeliveryPolicy, Dispatcher
from storage import build_store
from store.db import make_engine
from store.seats import SqlSessions

log = logging.getLogger("cc.api")


async def _keep_connecting(state: AppState) -> None:
    """The API serves (and stores webhooks) even while Temporal is still coming up."""
    delay = 0.5
    while state.temporal is None:
        try:
            state.temporal = await connect_temporal(state.settings)
            log.info("connected to Temporal at %s", state.settings.temporal_address)
        except Exception as exc:  # noqa: BLE001
            log.warning("Temporal not reachable yet (%s); retrying", exc.__class__.__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Time, level, logger, message, at settings.log_level; phone numbers (national ones read
    # as CC_DEFAULT_REGION's) redacted in every record (uvicorn's access lines carry query
    # strings, ?called=...).
    configure_logging(settings.log_level, settings.default_region)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        state = AppState(
            settings=settings,
            engine=engine,
            channels=build_channels(settings, SqlSessions(engine)),
            recordings=build_store(settings),
            dispatcher=Dispatcher(engine, DeliveryPolicy.of(redelivery_config(settings))),
        )
        app.state.cc = state
        # Inbox redelivery is not here: one workflow on the worker does it, whatever the
        # number of API processes.
        connecting = asyncio.create_task(_keep_connecting(state))
        try:
            yield
        finally:
            connecting.cancel()
            await state.dispatcher.drain()  # what was stored is signalled (or left to redeliver)
            for channel in state.channels.values():
                await channel.aclose()
            state.engine.dispose()

    # Swagger UI and ReDoc from fastapi-offline's own copies (/static-offline-docs): the docs
    # load with no network. The document itself: api/openapi.py.
    app = FastAPIOffline(
        title="CC call-center API",
        version="0.1.0",
        lifespan=lifespan,
        description=DESCRIPTION,
        # No badge from validator.swagger.io: the page asks nothing of the internet.
        swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
    )
    install_error_handlers(app)
    publish(app)
    # Outside the routes (webhooks included, before their signature checks): an oversized
    # body is refused before it is read.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.include_router(calls.router)
    app.include_router(recordings.router)
    app.include_router(lines.router)
    app.include_router(extensions.router)
    app.include_router(channels.router)
    app.include_router(provisioning.router)
    app.include_router(notifications.router)
    app.include_router(settings_routes.router)
    app.include_router(stats.router)
    app.include_router(webhooks.router)
    app.include_router(ops.router)
    # Temporal's codec-server protocol, for the Temporal UI (the operator's, api/codec.py).
    app.mount("/codec", codec_app(settings))
    return app
