"""Issue 21 part 2: CC's codec endpoint for the Temporal UI speaks Temporal's codec-server
protocol, only to the platform operator (bearer key, or the codec session a browser holds),
masks every phone number in what it opens, and lets only the UI's origins read it."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from api.app import create_app
from api.codec import SESSION_COOKIE, SESSION_S, session_token
from core.codec import data_converter, new_key_entry
from tests.api.conftest import OPERATOR_KEY, asgi_client, unit_settings

KEYS = [new_key_entry("k1")]
RECORD = {"caller": "+8613712345601", "called": "+8613912345602", "biz_data": "order-42",
          "created": 1796000000123}  # fmt: skip
UI = "http://127.0.0.1:8233"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(unit_settings(tmp_path, payload_keys=KEYS))
    async with asgi_client(app) as client:
        yield client


async def sealed_body(value: object) -> str:
    payloads = await data_converter(KEYS).encode([value])
    return json_format.MessageToJson(Payloads(payloads=payloads))


def values_of(answer: httpx.Response) -> list[object]:
    payloads = json_format.Parse(answer.text, Payloads()).payloads
    return [json.loads(p.data) for p in payloads]


def session(token: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={token}"}


def as_operator() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR_KEY}", "X-Namespace": "default"}


async def test_without_the_operators_credential_nothing_opens(api: httpx.AsyncClient) -> None:
    body = await sealed_body(RECORD)
    for headers in ({}, {"Authorization": "Bearer test-key-unit"}, {"Authorization": "Basic x"}):
        answer = await api.post("/codec/decode", content=body, headers=headers)
        assert answer.status_code == 401 and "+86139" not in answer.text
    assert (await api.post("/codec/encode", content=body)).status_code == 401


async def test_the_operator_reads_values_with_numbers_masked(api: httpx.AsyncClient) -> None:
    answer = await api.post(
        "/codec/decode", content=await sealed_body(RECORD), headers=as_operator()
    )
    assert answer.status_code == 200, answer.text
    [value] = values_of(answer)
    assert isinstance(value, dict)
    assert value["biz_data"] == "order-42" and value["created"] == 1796000000123
    for field in ("caller", "called"):
        assert value[field] != RECORD[field] and value[field][-4:] == RECORD[field][-4:]
        assert "*" in value[field]


async def test_encode_then_decode_is_the_protocols_round_trip(api: httpx.AsyncClient) -> None:
    plain = Payloads(payloads=data_converter([]).payload_converter.to_payloads(["hello"]))
    sealed = await api.post(
        "/codec/encode", content=json_format.MessageToJson(plain), headers=as_operator()
    )
    assert sealed.status_code == 200
    [payload] = json_format.Parse(sealed.text, Payloads()).payloads
    assert payload.metadata["encoding"] == b"binary/encrypted" and b"hello" not in payload.data
    opened = await api.post("/codec/decode", content=sealed.text, headers=as_operator())
    assert values_of(opened) == ["hello"]


async def test_a_payload_not_sealed_passes_and_garbage_is_a_400(api: httpx.AsyncClient) -> None:
    plain = Payloads(payloads=[Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    answer = await api.post(
        "/codec/decode", content=json_format.MessageToJson(plain), headers=as_operator()
    )
    assert values_of(answer) == ["x"]
    garbage = await api.post("/codec/decode", content=b"\xff{not json", headers=as_operator())
    assert garbage.status_code == 400 and garbage.json()["code"] == "invalid_request"


async def test_a_browser_session_opens_with_the_operator_key_only(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    body = await sealed_body(RECORD)
    assert "Operator key" in (await api.get("/codec/session")).text
    wrong = await api.post("/codec/session", data={"key": "test-key-unit"})
    assert wrong.status_code == 403 and SESSION_COOKIE not in wrong.cookies

    opened = await api.post("/codec/session", data={"key": OPERATOR_KEY})
    assert opened.status_code == 200
    cookie = opened.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/codec" in cookie
    token = opened.cookies[SESSION_COOKIE]
    api.cookies.clear()  # each request below carries its own cookie, or none
    with_session = await api.post("/codec/decode", content=body, headers=session(token))
    assert with_session.status_code == 200

    settings = unit_settings(tmp_path, payload_keys=KEYS)
    stale = session_token(settings, time.time() - SESSION_S - 1)
    forged = token.split(".")[0] + "." + "0" * 64
    for bad in (stale, forged, "garbage"):
        answer = await api.post("/codec/decode", content=body, headers=session(bad))
        assert answer.status_code == 401

    rotated = create_app(unit_settings(tmp_path, payload_keys=KEYS, operator_key="new-key"))
    async with asgi_client(rotated) as after:  # a new operator key ends every session
        answer = await after.post("/codec/decode", content=body, headers=session(token))
        assert answer.status_code == 401


async def test_only_the_uis_origin_may_read_across_origins(api: httpx.AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,x-namespace"}  # fmt: skip
    ui = await api.options("/codec/decode", headers={"Origin": UI, **preflight})
    assert ui.headers["access-control-allow-origin"] == UI
    assert ui.headers["access-control-allow-credentials"] == "true"
    evil = await api.options("/codec/decode", headers={"Origin": "http://evil.test", **preflight})
    assert "access-control-allow-origin" not in evil.headers
    tenant_route = await api.options("/v1/calls", headers={"Origin": UI, **preflight})
    assert "access-control-allow-origin" not in tenant_route.headers  # CORS is the codec's only
