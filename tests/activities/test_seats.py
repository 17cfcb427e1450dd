"""activities/seats.py: polls of a seat that keep failing count as channel failures for
health (issue 11, item 5); a lost session ends the poll activity with ``signed_out``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import seats
from activities.seats import SESSION_FAILURES_PER_REPORT, SeatActivities
from channels.errors import SeatTaken
from channels.events import SeatContext, SeatLogin
from contracts.health import PlacementOutcome
from contracts.ids import HEALTH_WORKFLOW_ID, PLACEMENT_SIGNAL
from contracts.seat import SEAT_UNAVAILABLE, PollSeatInput, SignInInput
from store.db import session_scope
from store.lines import lease_line
from tests.activities.seat_support import FailingGateway, FakeTemporal, seat_store


async def test_polls_failing_in_a_row_are_reported_to_health(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seats, "POLL_BACKOFF_INITIAL_S", 0.01)
    monkeypatch.setattr(seats, "POLL_BACKOFF_MAX_S", 0.02)
    engine = seat_store(tmp_path, "10001")
    failures = 2 * SESSION_FAILURES_PER_REPORT + 1
    gateway, temporal = FailingGateway(failures), FakeTemporal()
    activities = SeatActivities({"hw": cast(Any, gateway)}, engine, secret_key="")
    inp = PollSeatInput(channel="hw", seat="10001", phonenum="+8613800000001", run_s=600,
                        context=SeatContext())  # fmt: skip
    env = ActivityEnvironment(client=cast(Client, temporal))
    result = await env.run(activities.poll_seat, inp)
    assert result.signed_out and gateway.polls == failures + 1
    reports = [arg for wf, name, arg in temporal.signals
               if (wf, name) == (HEALTH_WORKFLOW_ID, PLACEMENT_SIGNAL)]  # fmt: skip
    assert len(reports) == failures // SESSION_FAILURES_PER_REPORT == 2
    assert all(isinstance(r, PlacementOutcome) and r.channel == "hw" and not r.ok
               for r in reports)  # fmt: skip
    engine.dispose()


class TakenGateway(FailingGateway):
    """Every sign-in refused: the seat is signed in elsewhere (100-015)."""

    async def sign_in(self, login: SeatLogin) -> None:
        raise SeatTaken("100-015", "the agent has signed in elsewhere")


async def test_a_seat_taken_elsewhere_takes_only_its_line_out_of_service(
    tmp_path: Path,
) -> None:
    engine = seat_store(tmp_path, "10001", "10002")
    activities = SeatActivities({"hw": cast(Any, TakenGateway(0))}, engine, secret_key="")
    env = ActivityEnvironment(client=cast(Client, FakeTemporal()))
    inp = SignInInput(channel="hw", seat="10001", phonenum="+8613800000001")
    with pytest.raises(ApplicationError) as refused:
        await env.run(activities.sign_in_seat, inp)
    assert refused.value.type == SEAT_UNAVAILABLE and refused.value.non_retryable
    with session_scope(engine) as s:
        first = lease_line(s, "t1", "hw", "call-1")
        second = lease_line(s, "t1", "hw", "call-2")
    assert first is not None and first.agent == "10002"  # the other seat still takes calls
    assert second is None  # 10001 is out of service, 10002 busy
    engine.dispose()
