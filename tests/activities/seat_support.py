"""Stand-ins for the seat activity tests: a polled channel whose polls fail, a Temporal client
that records signals, and a store with an hw line per seat."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from channels.errors import SeatSignedOut, VendorServerError
from channels.events import SeatContext, SeatLogin, SeatPoll, SeatStatus
from core.types import ChannelMode
from store.db import make_engine, session_scope
from store.lines import ensure_line
from store.migrate import upgrade
from store.tenants import ensure_tenant


@dataclass
class FailingGateway:
    """A polled channel whose polls fail ``failures`` times, then lose the session."""

    failures: int
    name: str = "hw"
    mode: ChannelMode = ChannelMode.POLL
    line_id_pattern: str = r"[0-9]{1,10}"  # a Channel says what its line ids look like
    polls: int = 0

    async def poll_seat(self, login: SeatLogin, context: SeatContext) -> SeatPoll:
        self.polls += 1
        if self.polls <= self.failures:
            raise VendorServerError("hw agentevent: HTTP 503")
        raise SeatSignedOut("100-006")

    # the rest of PolledChannel, unused here
    async def sign_in(self, login: SeatLogin) -> None: ...
    async def sign_out(self, seat: str) -> None: ...
    async def seat_status(self, seat: str) -> SeatStatus:
        return SeatStatus.IDLE

    async def place_call(self, *_: Any) -> Any: ...
    async def call_result(self, *_: Any) -> Any: ...
    async def hangup(self, *_: Any) -> None: ...
    async def probe(self) -> None: ...
    def open_recording(self, url: str) -> Any: ...
    async def aclose(self) -> None: ...


@dataclass
class FakeTemporal:
    signals: list[tuple[str, str, Any]] = field(default_factory=list)

    def get_workflow_handle(self, workflow_id: str) -> Any:
        temporal = self

        class Handle:
            async def signal(self, name: str, arg: Any) -> None:
                temporal.signals.append((workflow_id, name, arg))

        return Handle()


def seat_store(tmp_path: Path, *seats: str) -> Engine:
    """A migrated store whose tenant t1 has an hw line for each seat (10001 → …0001)."""
    url = f"sqlite:///{tmp_path / 'cc.db'}"
    upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as s:
        ensure_tenant(s, "t1")
        for seat in seats:
            ensure_line(s, "t1", "hw", seat, f"+86108800{seat[1:]}")
    return engine
