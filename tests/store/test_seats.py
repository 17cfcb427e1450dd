"""store/seats.py on every database: the sessions every process shares, how a seat signs in
(its sealed password or the channel's default), and which call a seat's id-less event is."""

from __future__ import annotations

from cryptography.fernet import Fernet
from sqlalchemy import Engine

from core.secrets import seal
from store import seats
from store.db import now_ms, session_scope
from store.lines import ensure_line, lease_line
from store.models import CallRecordRow
from store.tenants import ensure_tenant

KEY = Fernet.generate_key().decode()


async def test_sessions_are_shared_and_updated_in_place(db_engine: Engine) -> None:
    one, other = seats.SqlSessions(db_engine), seats.SqlSessions(db_engine)  # two processes
    assert await one.load("hw", "seat:10001") is None
    await one.save("hw", "seat:10001", '{"guid": "g1"}')
    await other.save("hw", "seat:10001", '{"guid": "g2"}')  # the gateway rotated it
    assert await one.load("hw", "seat:10001") == '{"guid": "g2"}'
    assert await one.load("e9", "seat:10001") is None  # per channel


def test_a_seat_signs_in_with_its_sealed_password_or_the_default(db_engine: Engine) -> None:
    with session_scope(db_engine) as s:
        ensure_tenant(s, "t1")
        ensure_line(s, "t1", "hw", "10001", "+861088000001").secret = seal("pw-1", KEY)
        ensure_line(s, "t1", "hw", "10002", "+861088000002")
    with session_scope(db_engine) as s:
        own = seats.seat_login(s, "hw", "10001", "+8613800000001", KEY)
        default = seats.seat_login(s, "hw", "10002", "+8613800000001", KEY)
    assert (own.seat, own.password, own.phonenum) == ("10001", "pw-1", "+8613800000001")
    assert default.password == ""  # the adapter's CC_HW_SEAT_PASSWORD


def test_an_id_less_event_belongs_to_the_seats_lease_else_its_latest_call(
    db_engine: Engine,
) -> None:
    with session_scope(db_engine) as s:
        ensure_tenant(s, "t1")
        ensure_line(s, "t1", "hw", "10001", "+861088000001")
        for cc_call_id, created in (("c-old", 1_000), ("c-new", 2_000)):
            s.add(CallRecordRow(tenant="t1", agent="10001", caller="+8613800000001",
                                called="+8613900000002", channel="hw", display="passthrough",
                                cc_call_id=cc_call_id, state="close", created=created,
                                updated=now_ms()))  # fmt: skip
    with session_scope(db_engine) as s:
        assert seats.seat_call(s, "hw", "10001") == "c-new"  # line free: the latest call
        assert seats.seat_call(s, "hw", "10099") is None  # no such seat
    with session_scope(db_engine) as s:
        assert lease_line(s, "t1", "hw", "c-live") is not None
    with session_scope(db_engine) as s:
        assert seats.seat_call(s, "hw", "10001") == "c-live"  # the call holding the seat
