"""Operations: liveness, readiness (database and Temporal), Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.deps import StateDep
from api.errors import Problem

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: StateDep) -> dict[str, str]:
    try:
        await state.in_store(lambda s: s.execute(text("SELECT 1")))
    except Exception as exc:
        raise Problem(503, "not_ready", "database not reachable") from exc
    if state.temporal is None:
        raise Problem(503, "not_ready", "Temporal not reachable")
    try:
        await state.temporal.service_client.check_health()
    except Exception as exc:
        raise Problem(503, "not_ready", "Temporal not reachable") from exc
    return {"status": "ready"}


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
