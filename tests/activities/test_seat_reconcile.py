"""activities/seats.py ``reconcile_seat``: what a seat shows after its session was lost
decides what becomes of its call (chaos scenario 8, issue 19); and a callout an hw seat could
not send for CC's store (scenario 4)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.channels import ChannelActivities
from activities.seats import SeatActivities
from channels.events import CallEvent, PlaceCallRequest, SeatStatus
from contracts.call import PlaceCallInput
from contracts.errors import STORE_UNAVAILABLE
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
    add_call(engine, vendor_call_id="1796524188-26", **columns)
    await reconcile(engine, status)
    assert stored(engine) == expected
    engine.dispose()


class SessionStoreDown(FailingGateway):
    async def place_call(self, *_: Any) -> Any:
        raise OperationalError("SELECT", {}, Exception("connection refused"))


async def test_a_callout_not_sent_for_the_store_is_told_apart(tmp_path: Path) -> None:
    """Chaos scenario 4 (issue 19): an adapter reads CC's store only before it sends (hw: the
    seat's session); that failing is ``StoreUnavailable``, not an unknown outcome."""
    engine = seat_store(tmp_path, SEAT)
    activities = ChannelActivities({"hw": cast(Any, SessionStoreDown(0))}, engine)
    shown = "+861088000001"
    request = PlaceCallRequest(
        cc_call_id=CALL, caller="+8613800000001", called="+8613900000002",
        display_to_a=shown, display_to_b=shown, agent=SEAT, max_duration_s=60,
    )  # fmt: skip
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(activities.place_call,
                                        PlaceCallInput(channel="hw", request=request))  # fmt: skip
    assert refused.value.type == STORE_UNAVAILABLE and refused.value.non_retryable
    engine.dispose()
