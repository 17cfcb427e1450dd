"""Domain errors → RFC 9457 problem+json, in one place. No traces, SQL or secrets leak."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from store.quotas import QuotaExceeded

log = logging.getLogger("cc.api")

PROBLEM = "application/problem+json"


class Problem(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.errors = errors
        self.headers = headers


def invalid_field(field: str, message: str, detail: str, code: str = "validation_error") -> Problem:
    """A 422 naming the one bad field."""
    return Problem(422, code, detail, [{"field": field, "message": message}])


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem_response(problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://cc.example/problems/{problem.code}",
        "title": _TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
        "code": problem.code,
    }
    if problem.errors is not None:
        body["errors"] = problem.errors
    return JSONResponse(
        body, status_code=problem.status, media_type=PROBLEM, headers=problem.headers
    )


# Seconds a client (app or vendor) should wait before retrying a 503.
RETRY_AFTER_S = 5


def unavailable(code: str, detail: str) -> Problem:
    """A 503 with ``Retry-After``: a passing outage, worth retrying (vendors retry 5xx)."""
    return Problem(503, code, detail, headers={"Retry-After": str(RETRY_AFTER_S)})


def quota_exceeded(exc: QuotaExceeded) -> Problem:
    """A 429 with ``Retry-After``: the tenant is over one of its quotas (store.quotas)."""
    detail = f"over the tenant's quota of {exc.what} ({exc.limit}); ask the operator for more"
    return Problem(429, "quota_exceeded", detail, headers={"Retry-After": str(exc.retry_after_s)})


def store_unavailable(exc: BaseException) -> bool:
    """Whether a database error means "the store cannot be reached or used right now"
    (connection refused or lost, pool exhausted, database locked, deadlock, serialization
    failure): the request may succeed when retried. Integrity, data and programming errors
    are bugs, not outages, and stay 500s."""
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError)


def _validation_problem(exc: RequestValidationError) -> Problem:
    errors = [
        {"field": ".".join(str(p) for p in err["loc"] if p != "body"), "message": err["msg"]}
        for err in exc.errors()
    ]
    fields = ", ".join(e["field"] for e in errors)
    return Problem(422, "validation_error", f"invalid fields: {fields}", errors)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(_validation_problem(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem_response(Problem(exc.status_code, code, str(exc.detail)))

    @app.exception_handler(sa_exc.SQLAlchemyError)
    async def _store(_: Request, exc: sa_exc.SQLAlchemyError) -> JSONResponse:
        if not store_unavailable(exc):
            log.error("store error", exc_info=exc)
            return problem_response(Problem(500, "internal_error", "internal error"))
        # The class names only: a driver's message may quote SQL and its parameters.
        cause = exc.orig.__class__.__name__ if isinstance(exc, sa_exc.DBAPIError) else ""
        log.warning("store unavailable: %s %s", exc.__class__.__name__, cause)
        return problem_response(unavailable("store_unavailable", "the database is unavailable"))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(Problem(500, "internal_error", "internal error"))
