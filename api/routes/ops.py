"""Operations: liveness, readiness (database and Temporal), Prometheus metrics (behind
``CC_METRICS_TOKEN`` when it is set)."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import APIRouter, Request, Response
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


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def metrics_allowed(expected: str, authorization: str) -> bool:
    """Whether an ``Authorization`` header carries the metrics token (always, while none is
    set). Compared in constant time, over digests: not even the token's length shows."""
    if not expected:
        return True
    scheme, _, token = authorization.partition(" ")
    presented = token.strip() if scheme.lower() == "bearer" else ""
    return hmac.compare_digest(_digest(presented), _digest(expected))


@router.get("/metrics")
async def metrics(request: Request, state: StateDep) -> Response:
    if not metrics_allowed(state.settings.metrics_token, request.headers.get("authorization", "")):
        raise Problem(
            401,
            "unauthorized",
            "metrics need the metrics token (CC_METRICS_TOKEN) as a bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
