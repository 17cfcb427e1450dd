"""A tiny receiver for CC's notifications, to see them arrive and to check their signatures.

    python -m scripts.receiver --secret whsec_... --port 8099

Each POST is verified with the ``standardwebhooks`` library (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``): a good one prints one line (type, call id,
state) and gets 204; a bad or missing signature gets 400. ``--tls-cert``/``--tls-key`` serve
https instead. The standard library only, no framework.

CC's egress policy (``core/egress.py``) sends to a loopback address, and over plain http, only
where ``CC_EGRESS_ALLOW`` allows it: ``make run`` allows 127.0.0.1 and ::1, so this receiver
on 127.0.0.1 works there; a production CC needs an https receiver on a public address.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

# (headers, event) -> the status to answer; None: 204
Received = Callable[[dict[str, str], dict[str, Any]], int | None]
MAX_BODY = 1 << 20


def print_event(headers: dict[str, str], event: dict[str, Any]) -> int | None:
    call = event.get("call") or {}
    print(
        f"{event.get('type')} call={call.get('id')} state={call.get('state')} "
        f"webhook-id={headers.get('webhook-id')}",
        flush=True,
    )
    return None


def make_server(
    secret: str, port: int, host: str = "127.0.0.1", on_event: Received = print_event
) -> ThreadingHTTPServer:
    webhook = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(min(length, MAX_BODY))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                event = webhook.verify(body, headers)
            except Exception as exc:  # noqa: BLE001 - any bad header or signature: refused
                print(f"refused: {exc.__class__.__name__}: {exc}", file=sys.stderr, flush=True)
                self._answer(400, b'{"error": "bad signature"}')
                return
            self._answer(on_event(headers, event) or 204, b"")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            if body:
                self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # one line per event is printed instead

    server = _Server((host, port), Handler)
    server.daemon_threads = True
    return server


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        print(f"connection failed: {exc.__class__.__name__}: {exc}", file=sys.stderr, flush=True)


def serve_tls(server: ThreadingHTTPServer, cert: str, key: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", required=True, help="the whsec_... PUT /v1/notifications gave")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tls-cert", help="serve https with this certificate (PEM)")
    parser.add_argument("--tls-key", help="and this private key (PEM)")
    args = parser.parse_args(argv)
    server = make_server(args.secret, args.port, args.host)
    if args.tls_cert:
        serve_tls(server, args.tls_cert, args.tls_key or args.tls_cert)
    scheme = "https" if args.tls_cert else "http"
    print(f"receiving on {scheme}://{args.host}:{args.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
