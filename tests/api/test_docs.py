"""The API's own documentation: /docs and /redoc load with nothing from the internet, and the
OpenAPI document says, for every operation, what it does, who may call it (the bearer scheme
behind the docs' Authorize button) and each error it can answer, as problem+json."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.api.conftest import Harness
from tests.api.conftest import harness as harness  # the fixture

EXTERNAL = re.compile(r"""(?:src|href|url)\s*[=:(]\s*["']?(?:https?:)?//""", re.IGNORECASE)
METHODS = {"get", "put", "post", "patch", "delete"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_load_with_no_network(harness: Harness, page: str) -> None:
    html = (await harness.api.get(page)).text
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert any(a.endswith(".js") for a in assets)
    for asset in assets:
        answer = await harness.api.get(asset)
        assert answer.status_code == 200, asset
        if asset.endswith(".css"):  # no web font or image fetched from elsewhere
            assert not re.search(r"url\(\s*[\"']?(?:https?:)?//", answer.text)
    if page == "/docs":
        assert '"validatorUrl": null' in html  # no badge from validator.swagger.io


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method in METHODS
    ]


async def test_every_operation_is_described_with_its_errors(harness: Harness) -> None:
    spec = (await harness.api.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    assert len(operations(spec)) >= 40
    for method, path, op in operations(spec):
        where = f"{method} {path}"
        assert op.get("description", "").strip(), f"{where} has no description"
        errors = {int(s): r for s, r in op["responses"].items() if int(s) >= 400}
        for status, response in errors.items():
            assert response["content"] == problem, f"{where} {status} is not problem+json"
            assert response["description"] not in ("", "error", "Validation Error"), where
        if op.get("security"):
            assert 401 in errors, f"{where} needs a key but lists no 401"
        if "{" in path:
            assert 404 in errors, f"{where} names something but lists no 404"
        if op.get("requestBody") or op.get("parameters"):
            assert 422 in errors, f"{where} takes input but lists no 422"
        if path.startswith("/v1/"):
            assert op.get("security") == [{"HTTPBearer": []}], f"{where} declares no key"
            assert 503 in errors, where
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "code" in schemas["Problem"]["required"]


async def test_the_call_views_codes_are_described(harness: Harness) -> None:
    spec = (await harness.api.get("/openapi.json")).json()
    view = spec["components"]["schemas"]["CallPublic"]["properties"]
    assert view["close_type"]["enum"] == [0, 1, 2, 3, 4, 5, 6, 7, 255, None]
    assert "4 leg B busy" in view["close_type"]["description"]
    assert view["state"]["enum"] == ["scheduled", "init", "conn", "close"]
    assert view["direction"]["enum"] == ["out", "in"]
    assert view["display"]["enum"] == ["passthrough", "platform"]
    for name in ("state", "direction", "display"):
        assert view[name]["description"]
    post = spec["paths"]["/v1/calls"]["post"]["responses"]
    assert "line_busy" in post["409"]["description"]
    assert "no_channel" in post["503"]["description"]
