"""CC's codec endpoint for the Temporal UI (``/codec``): Temporal's codec-server protocol
(``POST /codec/decode`` and ``/codec/encode``, ``Payloads`` as protobuf JSON; see the
samples-go ``codec-server/protocol.md``), so that the UI shows what CC sealed (core/codec.py)
to the platform operator and ciphertext to anyone else.

Who may: the operator, by ``Authorization: Bearer $CC_OPERATOR_KEY`` (a script, the CLI) or
by a codec session a browser holds: ``GET /codec/session`` is a form for the operator key;
once given, an HttpOnly cookie (``SameSite=Strict``, path ``/codec``, 8 h, signed with the
operator key, so changing the key ends every session) comes with the UI's requests when its
"Include cross-origin credentials" is on (docker-compose.yml sets it; with ``make run``'s dev
server the operator overrides the endpoint in the UI's codec settings and turns it on: the
dev server's own setting sends no credentials). The UI's origins
(``CC_CODEC_ORIGINS``) are the only cross-origin callers CORS lets read.

What the operator sees: values as CC sealed them, with every phone number masked
(``core.logs.redact``, as in CC's logs). Full numbers are a tenant's to read through the API
with a ``full`` key, never through Temporal's UI.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload, Payloads

from api.deps import is_operator_key
from core.codec import EncryptionCodec, PayloadKeyError, codec_of
from core.config import CoreSettings as Settings
from core.logs import redact

SESSION_COOKIE = "cc_codec"
SESSION_S = 8 * 3600
JSON_ENCODINGS = {b"json/plain", b"json/protobuf"}

_FORM = """<!doctype html><meta charset="utf-8"><title>CC codec session</title>
<h1>CC codec session</h1><p>{message}</p>
<form method="post" action="session"><label>Operator key
<input name="key" type="password" autocomplete="off" required></label>
<button>Open a session</button></form>
<form method="post" action="session/end"><button>End the session</button></form>
<p>Then, in the Temporal UI's codec server settings, override the endpoint with this
page's address without "/session", turn on "Include cross-origin credentials" and reload.</p>"""


def _signature(settings: Settings, expires: int) -> str:
    mac = hmac.new(settings.operator_key.encode(), f"cc-codec:{expires}".encode(), hashlib.sha256)
    return mac.hexdigest()


def session_token(settings: Settings, now: float) -> str:
    expires = int(now) + SESSION_S
    return f"{expires}.{_signature(settings, expires)}"


def _session_valid(settings: Settings, token: str, now: float) -> bool:
    expires_text, _, signature = token.partition(".")
    if not settings.operator_key or not expires_text.isdigit() or int(expires_text) < now:
        return False
    return hmac.compare_digest(signature, _signature(settings, int(expires_text)))


def allowed(settings: Settings, request: Request) -> bool:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and is_operator_key(settings, key.strip()):
        return True
    return _session_valid(settings, request.cookies.get(SESSION_COOKIE, ""), time.time())


def _problem(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _masked(payload: Payload) -> Payload:
    """A decoded JSON payload with every phone number in it masked."""
    if payload.metadata.get("encoding") not in JSON_ENCODINGS:
        return payload
    text = payload.data.decode("utf-8", errors="replace")
    return Payload(metadata=dict(payload.metadata), data=redact(text).encode())


async def _payloads(request: Request) -> Payloads:
    body = await request.body()
    try:
        return json_format.Parse(body, Payloads(), ignore_unknown_fields=True)
    except (json_format.ParseError, DecodeError, UnicodeDecodeError) as exc:
        raise ValueError("the body is not Temporal Payloads as protobuf JSON") from exc


def _answer(payloads: list[Payload]) -> Response:
    return Response(
        json_format.MessageToJson(Payloads(payloads=payloads)), media_type="application/json"
    )


def codec_app(settings: Settings) -> FastAPI:
    """The ``/codec`` sub-application (mounted by api.app)."""
    codec: EncryptionCodec | None = codec_of(settings.payload_keys)
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.codec_origins),
        allow_credentials=True,
        allow_methods=["POST"],
        allow_headers=["Content-Type", "X-Namespace", "Authorization"],
        max_age=600,
    )

    async def _through(request: Request, seal: bool) -> Response:
        if not allowed(settings, request):
            return _problem(401, "unauthorized", "this needs the platform operator's credential")
        try:
            payloads = list((await _payloads(request)).payloads)
        except ValueError as exc:
            return _problem(400, "invalid_request", str(exc))
        if codec is None:  # CC_PAYLOAD_KEYS unset: nothing was sealed
            return _answer(payloads if seal else [_masked(p) for p in payloads])
        if seal:
            return _answer(await codec.encode(payloads))
        try:
            opened = await codec.decode(payloads)
        except PayloadKeyError as exc:
            return _problem(422, "unknown_key", str(exc))
        except Exception:  # noqa: BLE001 - a tampered payload: InvalidTag carries no message
            return _problem(422, "undecodable", "a payload does not open with CC's keys")
        return _answer([_masked(p) for p in opened])

    @app.post("/decode")
    async def decode(request: Request) -> Response:
        return await _through(request, seal=False)

    @app.post("/encode")
    async def encode(request: Request) -> Response:
        return await _through(request, seal=True)

    @app.get("/session")
    async def session_form(request: Request) -> HTMLResponse:
        state = "open" if allowed(settings, request) else "not open"
        return HTMLResponse(
            _FORM.format(message=html.escape(f"This browser's session is {state}."))
        )

    @app.post("/session")
    async def open_session(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        if not is_operator_key(settings, (form.get("key") or [""])[0]):
            message = "That is not the operator key."
            return HTMLResponse(_FORM.format(message=message), status_code=403)
        page = HTMLResponse(_FORM.format(message="This browser's session is open (8 h)."))
        page.set_cookie(
            SESSION_COOKIE,
            session_token(settings, time.time()),
            max_age=SESSION_S,
            path="/codec",
            httponly=True,
            samesite="strict",
            secure=settings.public_base_url.startswith("https://"),
        )
        return page

    @app.post("/session/end")
    async def end_session() -> HTMLResponse:
        page = HTMLResponse(_FORM.format(message="This browser's session is ended."))
        page.delete_cookie(SESSION_COOKIE, path="/codec")
        return page

    return app
