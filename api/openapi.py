"""The published OpenAPI document: every error an operation can answer, as problem+json.

Routes name the errors only they give (``responses=errors(403, 409)``); the ones that follow
from an operation's shape are added here, for every operation alike: 401 where a credential
is needed, 404 where the path names something, 413/422 where a request carries input, 503
where the database or Temporal is needed. Every 4xx and 5xx then points at one schema,
``Problem`` (RFC 9457, with CC's ``code``), under ``application/problem+json``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from api.errors import PROBLEM

DESCRIPTION = """Callback calls through cloud-telephony vendors (e9, hw, jy), one unified
call record, the customer's number kept private.

**Authorize** with a tenant API key (`make run` prints the demo's, an `admin` key) or, for the
operator's part, the platform operator's credential: the header is
`Authorization: Bearer <key>`. Times are epoch milliseconds (UTC); numbers E.164 or national
(the tenant's region). Errors are `application/problem+json` with a machine `code`.

What each credential may do:

- `masked`: read its tenant's calls (the customer's number masked everywhere, and not
  searchable), events, recordings, lines, bindings, extensions, settings and channels; place
  and hang up calls. Nothing that changes the tenant's set-up.
- `full`: what `masked` may, numbers in full; and the set-up: lines, bindings, extensions.
- `admin`: what `full` may; and notifications (the receiver, resending), settings, deleting
  a recording.
- the platform operator: no tenant's data; channel routing, tenants, their keys, quotas and
  retention, provisioning.

`close_type`: 0 normal hang-up · 1 leg A unreachable · 2 leg B unreachable · 3 leg A busy ·
4 leg B busy · 5 maximum duration reached · 6 channel server error · 7 channel network error ·
255 other error.
"""

WHY: dict[int, str] = {
    400: "the body is not what the vendor sends (`malformed`)",
    401: "no credential, or not one CC knows (`unauthorized`); the header is "
    "`Authorization: Bearer <key>`",
    403: "the credential may not do this (`forbidden`: a key's scope, or the platform "
    "operator's part; `not_provisioned`: a resource not given to the tenant)",
    404: "nothing of that name for this credential (`not_found`; another tenant's call too)",
    409: "the state does not allow it (see the operation)",
    413: "the body is larger than `CC_MAX_BODY_BYTES` (`payload_too_large`)",
    422: "a field is invalid (`validation_error`, `invalid_number`, ...): `errors` lists each",
    429: "over a quota (`quota_exceeded`), with `Retry-After`",
    503: "the database or Temporal cannot be reached now (`store_unavailable`, "
    "`temporal_unavailable`, ...), with `Retry-After`: try again",
}


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An error (RFC 9457 problem details) with CC's machine ``code``."""

    type: str = Field(examples=["https://cc.example/problems/line_busy"])
    title: str = Field(examples=["Conflict"])
    status: int = Field(examples=[409])
    detail: str = Field(examples=["the agent line e9/+8613700000010 is on a call"])
    code: str = Field(description="the machine code API.md names", examples=["line_busy"])
    errors: list[FieldError] | None = Field(default=None, description="each bad field (422)")


def errors(*statuses: int, **why: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the errors only it gives; ``why`` overrides a status's
    words (``errors(409, s409="already_closed: the call has ended")``)."""
    named = {*statuses, *(int(key[1:]) for key in why)}
    return {
        status: {"description": why.get(f"s{status}", WHY.get(status, "error"))}
        for status in sorted(named)
    }


def _implied(path: str, operation: dict[str, Any]) -> set[int]:
    implied: set[int] = set()
    if operation.get("security"):
        implied.add(401)
    if "{" in path:
        implied.add(404)
    if operation.get("requestBody"):
        implied |= {413, 422}
    if operation.get("parameters"):
        implied.add(422)
    if path.startswith(("/v1/", "/webhooks/")) or path == "/readyz":
        implied.add(503)
    return implied


def publish(app: FastAPI) -> None:
    """Give ``app`` the document above (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schemas["Problem"].pop("$defs", {}))
        problem = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, operations in spec.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status in _implied(path, operation):
                    responses.setdefault(str(status), {"description": WHY[status]})
                for status, response in responses.items():
                    if int(status) >= 400:
                        if response.get("description") in (None, "Validation Error"):
                            response["description"] = WHY.get(int(status), "error")
                        response["content"] = problem
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
