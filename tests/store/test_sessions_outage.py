"""store/seats.py ``SqlSessions`` through a store outage (chaos scenario 4, issue 19): an hw seat
signed in while the database is down keeps its session (guid) and its login in this process,
and the session reaches the store once it is back; a key never seen here still fails loudly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from store.db import make_engine, session_scope
from store.lines import ensure_line
from store.migrate import upgrade
from store.seats import SqlSessions
from store.tenants import ensure_tenant


class Outage:
    def __init__(self) -> None:
        self.down = False

    @staticmethod
    def down_now(*_: Any) -> Any:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    def wrap(self, real: Any) -> Any:
        def call(*args: Any) -> Any:
            if self.down:
                raise OperationalError("SELECT", {}, Exception("connection refused"))
            return real(*args)

        return call


async def test_a_session_saved_while_the_store_is_down_is_kept_then_written_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'cc.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions, outage = SqlSessions(engine), Outage()
    monkeypatch.setattr(sessions, "_load", outage.wrap(sessions._load))
    monkeypatch.setattr(sessions, "_save", outage.wrap(sessions._save))
    await sessions.save("hw", "seat:10001", "guid-1")
    outage.down = True
    await sessions.save("hw", "seat:10001", "guid-2")  # a sign-in during the outage
    assert await sessions.load("hw", "seat:10001") == "guid-2"
    with pytest.raises(OperationalError):
        await sessions.load("hw", "seat:10002")  # nothing known of it here
    outage.down = False
    elsewhere = SqlSessions(engine)  # another process, once the store is back
    assert await sessions.load("hw", "seat:10001") == "guid-2"
    assert await elsewhere.load("hw", "seat:10001") == "guid-2"
    engine.dispose()


async def test_a_seat_login_read_once_serves_while_the_store_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'cc.db'}"
    upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        ensure_tenant(session, "t1")
        ensure_line(session, "t1", "hw", "10001", "+861088000001")
    sessions = SqlSessions(engine)
    first = await sessions.seat_login("hw", "10001", "+8613800000001")
    monkeypatch.setattr("store.seats.seat_login", Outage().down_now)
    again = await sessions.seat_login("hw", "10001", "+8613800000002")
    assert again == first.model_copy(update={"phonenum": "+8613800000002"})
    with pytest.raises(OperationalError):
        await sessions.seat_login("hw", "10002", "+8613800000001")  # never read here
    engine.dispose()
