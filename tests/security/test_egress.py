"""Issue 20 rows 3, 4, 7 and part of 9: URLs a tenant or a vendor chooses, tried as an attacker
would. Each test failed before the egress policy (core/egress.py): internal addresses were
accepted as receivers and the deliveries' errors made a port scanner, DNS could answer a public
address to the check and a private one to the connection, a 200 MiB answer was read whole, a
trickling receiver was never cut off, and a vendor's recording URL could lead anywhere, be any
type and any size."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notify import ANSWER_MAX_BYTES, NotificationSender
from activities.recordings import UNAVAILABLE, RecordingActivities
from api.routes.notifications import receiver_policy
from channels import e9
from channels.http import RecordingSource
from channels.protocols import Channel
from contracts.call import CopyRecordingInput
from core.egress import EgressPolicy, Target, egress_client
from scripts import run
from storage import LocalStore
from store.db import session_scope
from store.models import NotificationDelivery
from store.tenants import add_api_key
from tests.api.conftest import UNIT_TENANT, Harness, asgi_client
from tests.api.conftest import harness as harness  # the fixture
from tests.notify.support import (
    FAST,
    Receiver,
    deliveries,
    new_call,
    resolver,
    self_signed,
    settings,
    sqlite_store,
    subscribe,
    view,
)
from tests.support import free_port, wait_for

ADMIN = "test-key-unit-admin"
PUBLIC = "93.184.216.34"
BODY = {"events": ["call.state"]}
MiB = 1024 * 1024
PUBLIC_DNS = EgressPolicy(resolver=resolver({"hooks.example": PUBLIC}))


@pytest.fixture
async def admin(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    harness.state.settings.secret_key = settings().secret_key
    with session_scope(harness.state.engine) as session:
        add_api_key(session, UNIT_TENANT, ADMIN, scope="admin")
    async with asgi_client(harness.app, headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        yield client


# -- at subscription time -------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # the issue's own list
        "http://100.100.100.200/latest/meta-data/",
        "http://[::1]:7233/",
        "http://0x7f000001:8233/",
        "http://localhost:5432/",
        "https://169.254.169.254/latest/meta-data/",  # and each class over https
        "https://100.100.100.200/",
        "https://100.64.0.1/",
        "https://[::1]:7233/",
        "https://127.0.0.1:8000/",
        "https://0x7f000001:8233/",
        "https://2130706433/",
        "https://127.1/",
        "https://0177.0.0.1/",
        "https://localhost:5432/",
        "https://10.0.0.5/",
        "https://172.16.0.1/",
        "https://192.168.1.1/",
        "https://[fd00::1]/",
        "https://[fe80::1]/",
        "https://224.0.0.1/",
        "https://[ff02::1]/",
        "https://0.0.0.0/",
        "https://[::]/",
        "https://240.0.0.1/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:169.254.169.254]/",
        "https://[64:ff9b::a9fe:a9fe]/",  # NAT64 of the metadata address
        "https://[2002:7f00:1::1]/",  # 6to4 of loopback
        "https://intranet.example/",  # a name the DNS answers privately
        f"http://{PUBLIC}/hooks",  # public, but plain http
    ],
)
async def test_an_internal_or_plain_http_receiver_is_refused_at_subscription(
    harness: Harness, admin: httpx.AsyncClient, url: str
) -> None:
    names = {"intranet.example": "10.1.2.3", "localhost": "127.0.0.1"}
    dns = EgressPolicy(resolver=resolver(names))
    harness.app.dependency_overrides[receiver_policy] = lambda: dns
    refused = await admin.put("/v1/notifications", json={**BODY, "url": url})
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "validation_error"
    assert [e["field"] for e in problem["errors"]] == ["url"]
    assert "refused by egress policy" in problem["errors"][0]["message"]
    assert (await admin.get("/v1/notifications")).status_code == 404


async def test_a_local_receiver_needs_the_operators_allowance(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    local = {**BODY, "url": "http://127.0.0.1:8099/hooks/cc"}  # the README's receiver
    assert (await admin.put("/v1/notifications", json=local)).status_code == 422
    harness.state.settings.egress_allow = ["127.0.0.1"]  # as `make run` and the test stacks
    assert (await admin.put("/v1/notifications", json=local)).status_code == 200


def test_make_run_allows_the_simulators_and_the_local_receiver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CC_EGRESS_ALLOW", "[]")  # restored after the test
    allowed = run.allow_local_egress(run.Settings(egress_allow=["10.0.0.0/8"]))
    assert allowed.egress_allow == ["10.0.0.0/8", "127.0.0.1", "::1"]
    assert json.loads(os.environ["CC_EGRESS_ALLOW"]) == allowed.egress_allow  # its children


# -- at send time ---------------------------------------------------------------------------
class Network(httpx.AsyncBaseTransport):
    """What lies below the egress policy: records each request it is asked to send, and
    answers with ``answer``."""

    def __init__(self, answer: Any = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer or (lambda request: httpx.Response(204))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.answer(request)
        return await response if asyncio.iscoroutine(response) else response


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return sqlite_store(tmp_path)


async def first_attempt(
    engine: Engine, dns: EgressPolicy, network: Network, timeout_s: float = 3.0
) -> NotificationDelivery:
    """Run the sender until the first delivery was tried once; that delivery."""
    config = FAST.model_copy(update={"timeout_s": timeout_s})
    sender = NotificationSender(engine, settings(), view, config, network, dns)
    task = asyncio.create_task(sender.run(120))
    try:
        return await wait_for(lambda: _tried(engine), 30, "a first attempt")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _tried(engine: Engine) -> NotificationDelivery | None:
    first = deliveries(engine)[0]
    return first if first.attempts else None


async def test_dns_that_turns_private_after_the_subscription_is_refused_at_send(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    names = {"hooks.example": PUBLIC}
    dns = EgressPolicy(resolver=resolver(names))
    harness.app.dependency_overrides[receiver_policy] = lambda: dns
    subscribed = await admin.put(
        "/v1/notifications", json={**BODY, "url": "https://hooks.example/"}
    )
    assert subscribed.status_code == 200, subscribed.text
    new_call(harness.state.engine, "c1", tenant=UNIT_TENANT)
    names["hooks.example"] = "169.254.169.254"  # rebinding: the metadata service now
    network = Network()
    tried = await first_attempt(harness.state.engine, dns, network)
    assert (tried.status, tried.last_status) == ("pending", None)
    assert tried.last_error == "refused by egress policy"
    assert network.requests == []  # no connection was made
    listed = (await admin.get("/v1/notifications/deliveries")).json()["items"]
    assert listed[0]["last_error"] == "refused by egress policy"


async def test_the_request_goes_to_the_address_that_was_checked(engine: Engine) -> None:
    subscribe(engine, "https://hooks.example/cc?token=1")
    new_call(engine, "c1")
    network = Network()
    await first_attempt(engine, PUBLIC_DNS, network)
    (sent,) = network.requests
    assert (sent.url.host, sent.url.path, sent.url.query) == (PUBLIC, "/cc", b"token=1")
    assert sent.headers["host"] == "hooks.example"
    assert sent.extensions["sni_hostname"] == "hooks.example"  # TLS: the real host's certificate


async def test_tls_is_checked_for_the_host_name_on_the_pinned_address(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "hooks.example")
    receiver = Receiver(free_port(), tls=(cert, key)).start()
    trusted = ssl.create_default_context(cafile=str(cert))
    names = {"hooks.example": "127.0.0.1", "other.example": "127.0.0.1"}
    dns = EgressPolicy(resolver=resolver(names)).allowing(["127.0.0.1"])
    try:
        async with egress_client(dns, require_https=True, timeout_s=5, verify=trusted) as http:
            good = await http.post(f"https://hooks.example:{receiver.port}/", content=b"{}")
            assert good.status_code == 400  # TLS held; the receiver refused the bad signature
            with pytest.raises(httpx.ConnectError, match="[Hh]ostname mismatch"):
                await http.post(f"https://other.example:{receiver.port}/", content=b"{}")
    finally:
        receiver.stop()


async def test_a_200_mib_answer_is_read_only_up_to_the_cap(engine: Engine) -> None:
    pulled = 0

    async def huge() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(200 * 16):  # 200 MiB in 64 KiB chunks
            pulled += 64 * 1024
            yield b"x" * (64 * 1024)

    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-length": str(200 * MiB)}, content=huge())

    subscribe(engine, "https://hooks.example/")
    new_call(engine, "c1")
    tried = await first_attempt(engine, PUBLIC_DNS, Network(answer))
    assert (tried.status, tried.last_status) == ("delivered", 200)  # a 2xx is what counts
    assert pulled <= ANSWER_MAX_BYTES + 64 * 1024  # then reading stopped


async def test_a_trickling_receiver_is_cut_off_by_the_whole_request_deadline(
    engine: Engine,
) -> None:
    never = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:
        yield b"{"  # a first byte at once, then nothing, ever
        await never.wait()

    subscribe(engine, "https://hooks.example/")
    new_call(engine, "c1")
    network = Network(lambda _: httpx.Response(200, content=trickle()))
    tried = await first_attempt(engine, PUBLIC_DNS, network, timeout_s=0.5)
    assert (tried.status, tried.last_error) == ("pending", "timeout: no answer within 0.5 s")


async def test_a_redirect_is_not_followed(engine: Engine) -> None:
    subscribe(engine, "https://hooks.example/")
    new_call(engine, "c1")
    moved = Network(lambda _: httpx.Response(307, headers={"location": "http://127.0.0.1:7233/"}))
    tried = await first_attempt(engine, PUBLIC_DNS.allowing(["127.0.0.1"]), moved)
    assert (tried.last_status, tried.last_error) == (307, "HTTP 307")
    assert len(moved.requests) == 1


async def test_a_receivers_own_words_never_reach_the_tenant(engine: Engine) -> None:
    subscribe(engine, "https://hooks.example/")
    new_call(engine, "c1")
    garbage = Network(lambda _: httpx.Response(500, content=b"secret internal banner"))
    tried = await first_attempt(engine, PUBLIC_DNS, garbage)
    assert tried.last_error == "HTTP 500"


# -- recordings a vendor reports ------------------------------------------------------------
AUDIO = b"RIFF" + bytes(96)
ANSWERS: dict[str, tuple[int, dict[str, str], bytes | None]] = {
    "/ok.wav": (200, {"content-type": "audio/wav"}, AUDIO),
    "/octet": (200, {"content-type": "application/octet-stream"}, AUDIO),
    "/untyped": (200, {}, AUDIO),
    "/page": (200, {"content-type": "text/html"}, b"<html>expired</html>"),
    "/big.wav": (200, {"content-type": "audio/wav"}, bytes(5000)),
    "/endless.wav": (200, {"content-type": "audio/wav"}, None),  # no length, never ends
    "/moved.wav": (302, {"location": "http://169.254.169.254/latest/meta-data/"}, b""),
}


class _Vendor(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
        status, headers, body = ANSWERS[self.path]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client stops reading: the end
            while body is None:
                self.wfile.write(bytes(4096))
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def vendor() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Vendor)
    server.daemon_threads = True
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


async def copy(channel: Channel, url: str, tmp_path: Path) -> str:
    """Copy the recording at ``url`` as the worker does: what was stored."""
    inp = CopyRecordingInput(channel="e9", tenant="t", cc_call_id="c1", created=0, url=url)
    activities = RecordingActivities({"e9": channel}, LocalStore(tmp_path))
    result = await ActivityEnvironment().run(activities.copy_recording, inp)
    return result.content_type


def e9_channel(base_url: str, **settings: Any) -> e9.E9Channel:
    allowed = e9.E9Settings(
        e9_base_url=base_url, egress_allow=["127.0.0.1"], recording_max_bytes=1000, **settings
    )
    return e9.build(allowed)


async def test_an_audio_recording_from_the_vendors_host_is_copied(
    vendor: str, tmp_path: Path
) -> None:
    channel = e9_channel(vendor)
    try:
        assert await copy(channel, f"{vendor}/ok.wav", tmp_path) == "audio/wav"
    finally:
        await channel.aclose()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("{vendor}/octet", "unsupported recording type 'application/octet-stream'"),
        ("{vendor}/untyped", "unsupported recording type ''"),
        ("{vendor}/page", "unsupported recording type 'text/html'"),
        ("{vendor}/big.wav", "answer too large (5000 B)"),
        ("{vendor}/endless.wav", "answer too large (over 1000 B)"),
        ("{vendor}/moved.wav", "HTTP 302"),  # not followed
        ("http://169.254.169.254/latest/meta-data/", "not a recording host of the channel"),
        ("http://127.0.0.1:7233/x.wav", "not a recording host of the channel"),
    ],
)
async def test_a_recording_that_is_no_audio_too_big_or_elsewhere_is_refused(
    vendor: str, tmp_path: Path, url: str, reason: str
) -> None:
    channel = e9_channel(vendor)
    try:
        with pytest.raises(ApplicationError) as refused:
            await copy(channel, url.format(vendor=vendor), tmp_path)
    finally:
        await channel.aclose()
    assert refused.value.type == UNAVAILABLE and refused.value.non_retryable
    assert reason in str(refused.value)
    stored = await asyncio.to_thread(lambda: [p for p in tmp_path.rglob("*") if p.is_file()])
    assert stored == []  # nothing stored


async def test_the_vendors_own_host_is_refused_where_it_resolves_privately(
    tmp_path: Path,
) -> None:
    base = "https://rec.e9.example"
    private = EgressPolicy(resolver=resolver({"rec.e9.example": "10.0.0.7"}))  # the vendor's DNS
    source = RecordingSource("e9", frozenset({Target.of(base)}), private)
    channel = e9.E9Channel(base, "sid", "token", "https://cc.example/webhooks/e9", 5.0, source)
    try:
        with pytest.raises(ApplicationError, match="refused by egress policy: a private address"):
            await copy(channel, "https://rec.e9.example/r/1.wav", tmp_path)
    finally:
        await channel.aclose()
