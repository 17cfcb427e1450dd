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
from api.openapi import errors

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: StateDep) -> dict[str, str]:
    """The database and Temporal are reachable (503 `not_ready` otherwise)."""
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


@router.get(
    "/metrics",
    responses=errors(401, s401="`unauthorized`: the metrics token is set and was not given"),
)
async def metrics(request: Request, state: StateDep) -> Response:
    """Prometheus metrics (text format); `Authorization: Bearer $CC_METRICS_TOKEN` once that
    is set."""
    if not metrics_allowed(state.settings.metrics_token, request.headers.get("authorization", "")):
        raise Problem(
            401,
            "unauthorized",
            "metrics need the metrics token (CC_METRICS_TOKEN) as a bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
