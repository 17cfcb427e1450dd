"""store/seats.py ``SqlSessions`` through a store outage (chaos scenario 4, issue 19): an hw seat
signed in while the database is down keeps its session (guid) in this process, and the
session reaches the store once it is back; a key never seen here still fails loudly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from store.db import make_engine
from store.migrate import upgrade
from store.seats import SqlSessions


class Outage:
    def __init__(self) -> None:
        self.down = False

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
