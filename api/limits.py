"""Request body cap: no body larger than ``settings.max_body_bytes`` is ever buffered.

A pure ASGI middleware, so it sits in front of every route, webhooks included (before their
signature checks, which read the whole body). A declared ``Content-Length`` over the cap is
answered 413 before a byte of the body is read; a body without one (chunked) is counted as
it is read and cut off at the cap: the app's own answer is discarded and 413 sent instead.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import Problem, problem_response


class _TooLarge(Exception):
    """Raised into the app from ``receive`` once the body passes the cap."""


def _too_large(limit: int) -> Problem:
    return Problem(
        413,
        "payload_too_large",
        f"request body larger than {limit} bytes",
        headers={"Connection": "close"},  # the rest of the body is not read
    )


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects these; counting still applies
    return None


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await problem_response(_too_large(self.max_bytes))(scope, receive, send)
            return

        received = 0
        overflowed = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, overflowed
            if overflowed:
                raise _TooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    overflowed = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if overflowed:
                return  # the app's answer to a body it never got in full: 413 goes instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not overflowed:
                raise
        if overflowed and not started:
            await problem_response(_too_large(self.max_bytes))(scope, receive, send)
