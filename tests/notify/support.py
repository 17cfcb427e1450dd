"""Helpers for the notification tests: a store with a subscribed tenant, calls moved through
the real save activity, a receiver that verifies signatures (scripts/receiver.py) in a thread,
and a self-signed certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from activities.records import RecordActivities
from contracts.call import SaveRecordInput
from contracts.notify import NotifyConfig
from core.config import CoreSettings
from core.egress import IPAddress, Resolver
from core.secrets import seal
from core.types import CallState, CloseType
from scripts.receiver import make_server, serve_tls
from store import calls, notifications
from store.db import make_engine, now_ms, session_scope
from store.migrate import upgrade
from store.models import CallRecordRow, EventType, NotificationDelivery
from store.tenants import ensure_tenant
from store.views import call_view_json

SECRET_KEY = Fernet.generate_key().decode()
SECRET = notifications.new_secret()
TENANT = "nt"
CUSTOMER = "+8613900000002"
FAST = NotifyConfig(poll_s=0.05, timeout_s=3, retry_initial_s=0.1, retry_max_s=0.3,
                    give_up_s=120, concurrency=8, run_s=120)  # fmt: skip
ALL_EVENTS = list(EventType)


def sqlite_store(tmp_path: Path) -> Engine:
    """A migrated SQLite store, with no subscriptions cached from another test's."""
    url = f"sqlite:///{tmp_path / 'cc.db'}"
    upgrade(url)
    notifications.forget_subscriptions()
    return make_engine(url)


def settings() -> CoreSettings:
    """The receivers of these tests listen on 127.0.0.1 (over http): the egress policy allows
    it here, as `make run` does; by default it is refused."""
    return CoreSettings(secret_key=SECRET_KEY, egress_allow=["127.0.0.1"])


def resolver(names: dict[str, str]) -> Resolver:
    """A DNS that knows ``names`` (host → address) and nothing else."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(names[host])]

    return resolve


view = call_view_json


def subscribe(
    engine: Engine, url: str, events: list[EventType] | None = None, masked: bool = False,
    tenant: str = TENANT,
) -> None:  # fmt: skip
    with session_scope(engine) as session:
        ensure_tenant(session, tenant)
        notifications.put_subscription(session, tenant, url, events or ALL_EVENTS, masked,
                                       seal(SECRET, SECRET_KEY))  # fmt: skip


def new_call(engine: Engine, cc_call_id: str, tenant: str = TENANT) -> CallRecordRow:
    """A call row, written with its ``call.state`` init as the API writes it."""
    now = now_ms()
    row = CallRecordRow(cc_call_id=cc_call_id, tenant=tenant, agent="e9-1", caller="+8613800000001",
                        called=CUSTOMER, channel="e9", display="platform", created=now,
                        updated=now)  # fmt: skip
    with session_scope(engine) as session:
        ensure_tenant(session, tenant)
        session.add(row)
        session.flush()
        notifications.enqueue_created(session, row)
    return row


def save(engine: Engine, cc_call_id: str, state: CallState | None = None, **changes: Any) -> None:
    """What CallWorkflow's save does: the record moved to ``state`` (or its recording landed)."""
    with Session(engine) as session:
        row = calls.get_call_any_tenant(session, cc_call_id)
        assert row is not None
        record = calls.record_of(row)
    now = now_ms()
    if state is CallState.CONN:
        changes |= {"conn_time": now}
    if state is CallState.CLOSE:
        changes |= {"close_time": now, "close_type": CloseType.NORMAL}
    update = {**changes, **({"state": state} if state else {})}
    inp = SaveRecordInput(record=record.model_copy(update=update), attempts=[],
                          state_changed=state is not None,
                          recording_copied="audio_url" in changes)  # fmt: skip
    RecordActivities(engine).save_record(inp)


def run_call(engine: Engine, cc_call_id: str) -> None:
    """A whole call: init, conn, close, then its recording (5 events)."""
    new_call(engine, cc_call_id)
    save(engine, cc_call_id, CallState.CONN)
    save(engine, cc_call_id, CallState.CLOSE)
    save(engine, cc_call_id, None, audio_url=f"local:{cc_call_id}.wav")


EXPECTED = ["call.state:init", "call.state:conn", "call.state:close", "call.closed:close",
            "call.recording:close"]  # fmt: skip


def deliveries(engine: Engine, cc_call_id: str | None = None) -> list[NotificationDelivery]:
    with Session(engine) as session:
        query = select(NotificationDelivery).order_by(col(NotificationDelivery.id))
        if cc_call_id is not None:
            query = query.where(NotificationDelivery.cc_call_id == cc_call_id)
        return list(session.exec(query).all())


@dataclass
class Received:
    headers: dict[str, str]
    event: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.event['type']}:{self.event['call']['state']}"

    @property
    def call_id(self) -> str:
        return str(self.event["call"]["id"])


@dataclass
class Receiver:
    """scripts/receiver.py's server in a thread: every verified event is kept, in arrival
    order; ``answer`` may choose the status (None: the receiver's own 204)."""

    port: int
    tls: tuple[Path, Path] | None = None
    answer: Callable[[Received], int | None] = lambda _: None
    secret: str = SECRET
    events: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        def on_event(headers: dict[str, str], event: dict[str, Any]) -> int | None:
            got = Received(headers, event)
            status = self.answer(got)
            if status is None or status < 300:
                with self._lock:
                    self.events.append(got)
            return status

        self.server = make_server(self.secret, self.port, on_event=on_event)
        if self.tls is not None:
            serve_tls(self.server, str(self.tls[0]), str(self.tls[1]))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of_call(self, cc_call_id: str) -> list[str]:
        with self._lock:
            return [e.label for e in self.events if e.call_id == cc_call_id]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/hooks/cc"


def slow_init(delay_s: float) -> Callable[[Received], int | None]:
    """Answer a call's first event late: a sender that did not wait for it would get the
    call's next event in first."""

    def answer(got: Received) -> int | None:
        if got.label == "call.state:init":
            time.sleep(delay_s)
        return None

    return answer


def self_signed(tmp: Path, dns_name: str | None = None) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, or for ``dns_name``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name or "127.0.0.1")])
    alt: x509.GeneralName = (
        x509.DNSName(dns_name) if dns_name else x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp / f"{dns_name or 'ip'}-cert.pem", tmp / f"{dns_name or 'ip'}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path
