"""activities/seats.py ``reconcile_seat``: what a seat shows after its session was lost
decides what becomes of its call (chaos scenario 8, issue 19)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, cast

import pytest
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.seats import SeatActivities
from channels.base import CallEvent, SeatStatus
from contracts.seat import ReconcileSeatInput
from core.types import CloseType, EventKind
from store.db import now_ms, session_scope
from store.models import CallRecordRow, VendorEvent
from tests.activities.seat_support import FailingGateway, FakeTemporal, seat_store

SEAT, CALL = "10001", "call-1"


@dataclasses.dataclass
class SeatShows(FailingGateway):
    status: SeatStatus = SeatStatus.IDLE

    async def seat_status(self, seat: str) -> SeatStatus:
        return self.status


def add_call(engine: Any, **columns: Any) -> None:
    now = now_ms()
    row = CallRecordRow(cc_call_id=CALL, tenant="t1", agent=SEAT, channel="hw",
                        caller="+8613800000001", called="+8613900000002", display="platform",
                        created=now, updated=now, **columns)  # fmt: skip
    with session_scope(engine) as session:
        session.add(row)


def stored(engine: Any) -> list[tuple[EventKind, CloseType | None]]:
    with Session(engine) as session:
        rows = session.exec(select(VendorEvent).order_by(col(VendorEvent.id))).all()
    events = [CallEvent.model_validate_json(row.event_json) for row in rows]
    return [(e.kind, e.close_type) for e in events]


async def reconcile(engine: Any, status: SeatStatus) -> None:
    activities = SeatActivities({"hw": cast(Any, SeatShows(0, status=status))}, engine, "")
    env = ActivityEnvironment(client=cast(Client, FakeTemporal()))
    await env.run(activities.reconcile_seat,
                  ReconcileSeatInput(channel="hw", seat=SEAT, cc_call_id=CALL))  # fmt: skip


async def test_a_call_not_placed_yet_is_left_to_its_callout(tmp_path: Path) -> None:
    """The session was lost as the call claimed the seat, before its callout: the seat is
    idle, yet the call is still to be placed. It was closed 255 while it went on."""
    engine = seat_store(tmp_path, SEAT)
    add_call(engine)
    await reconcile(engine, SeatStatus.IDLE)
    assert stored(engine) == []
    engine.dispose()


@pytest.mark.parametrize(("status", "columns", "expected"), [
    (SeatStatus.IDLE, {}, [(EventKind.HANGUP, CloseType.OTHER)]),
    (SeatStatus.IDLE, {"conn_time": 1}, [(EventKind.HANGUP, CloseType.NORMAL)]),
    (SeatStatus.BUSY, {}, []),
    (SeatStatus.OFFHOOK, {}, [(EventKind.A_ANSWERED, None)]),
    (SeatStatus.OFFHOOK, {"a_offhook_time": 1}, []),
])  # fmt: skip
async def test_a_placed_call_is_reconciled_by_what_its_seat_shows(
    tmp_path: Path, status: SeatStatus, columns: dict[str, Any], expected: list[Any]
) -> None:
    engine = seat_store(tmp_path, SEAT)
    add_call(engine, call_id="1796524188-26", **columns)
    await reconcile(engine, status)
    assert stored(engine) == expected
    engine.dispose()
