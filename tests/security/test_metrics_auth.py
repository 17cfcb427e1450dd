"""Row 9 of the security issue: ``/metrics`` behind an optional bearer token
(``CC_METRICS_TOKEN``), compared in constant time; open while none is set (``make run``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.errors import PROBLEM
from api.routes import ops
from tests.api.conftest import asgi_client, unit_settings

TOKEN = "metrics-scraper-token"


async def metrics_client(tmp_path: Path, token: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(unit_settings(tmp_path, metrics_token=token))
    async with app.router.lifespan_context(app), asgi_client(app) as client:
        yield client


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in metrics_client(tmp_path, TOKEN):
        yield client


@pytest.fixture
async def open_metrics(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in metrics_client(tmp_path, ""):
        yield client


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer ", TOKEN],
)
async def test_metrics_without_the_token_get_401(
    guarded: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await guarded.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == "unauthorized"
    assert "cc_calls_accepted" not in response.text and TOKEN not in response.text


async def test_metrics_with_the_token_get_200(guarded: httpx.AsyncClient) -> None:
    response = await guarded.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and "cc_calls_accepted" in response.text
    lower = await guarded.get("/metrics", headers={"Authorization": f"bearer  {TOKEN} "})
    assert lower.status_code == 200


async def test_only_metrics_are_guarded(guarded: httpx.AsyncClient) -> None:
    assert (await guarded.get("/healthz")).status_code == 200


async def test_metrics_stay_open_while_no_token_is_set(open_metrics: httpx.AsyncClient) -> None:
    response = await open_metrics.get("/metrics")
    assert response.status_code == 200 and "cc_calls_accepted" in response.text


async def test_the_token_is_compared_in_constant_time(
    guarded: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real: Callable[[bytes, bytes], bool] = ops.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(ops.hmac, "compare_digest", spy)
    await guarded.get("/metrics", headers={"Authorization": "Bearer x"})
    assert compared and all(len(a) == len(b) for a, b in compared)  # digests: equal lengths
