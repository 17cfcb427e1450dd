"""activities/seat_polling.py (issue 19): a seat's polled events survive a store outage, and a
poll activity retried while its earlier attempt still runs on this worker never polls the seat
beside it (the gateway refuses a second concurrent poll, 000-007)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities import seat_intake, seats
from activities.seat_polling import StoredContext
from activities.seats import SeatActivities
from channels.errors import PollInFlight, SeatSignedOut
from channels.events import CallEvent, SeatContext, SeatLogin, SeatPoll
from contracts.seat import PollSeatInput
from core.types import EventKind
from store.db import session_scope
from store.lines import lease_line
from store.models import VendorEvent
from store.seats import SqlSessions
from tests.activities.seat_support import FailingGateway, FakeTemporal, seat_store

SEAT, CALL = "10001", "call-1"


def event(n: int) -> CallEvent:
    return CallEvent(cc_call_id=None, vendor_call_id="v-1", kind=EventKind.A_RINGING,
                     at=1_000 + n, ch_state=f"e{n}", dedupe_key=f"k{n}")  # fmt: skip


@dataclasses.dataclass
class ScriptedGateway(FailingGateway):
    """Answers one event per poll (``events`` of them), each with the next context, then
    loses the session; ``before_poll`` runs first (to take the store down or up)."""

    events: int = 0
    before_poll: Any = None

    async def poll_seat(self, login: SeatLogin, context: SeatContext) -> SeatPoll:
        self.polls += 1
        if self.before_poll is not None:
            self.before_poll(self.polls)
        if self.polls > self.events:
            raise SeatSignedOut("100-006")
        return SeatPoll(events=[event(self.polls)], raw=b'{"event": {}}',
                        context=context.model_copy(update={"seq": self.polls}))  # fmt: skip


def stored_states(engine: Any) -> list[str]:
    with Session(engine) as session:
        rows = session.exec(select(VendorEvent).order_by(col(VendorEvent.id))).all()
        return [CallEvent.model_validate_json(row.event_json).ch_state or "" for row in rows]


async def test_events_polled_while_the_store_is_down_are_stored_in_order_once_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = seat_store(tmp_path, SEAT)
    with session_scope(engine) as session:
        lease_line(session, "t1", "hw", CALL)
    real_ingest, down = seat_intake.ingest, {"now": False}

    async def ingest(*args: Any, **kwargs: Any) -> Any:
        if down["now"]:
            raise OperationalError("INSERT", {}, Exception("the database is down"))
        return await real_ingest(*args, **kwargs)

    monkeypatch.setattr(seat_intake, "ingest", ingest)
    # Down for the answers of polls 2 to 4; back before poll 5.
    gateway = ScriptedGateway(failures=0, events=5,
                              before_poll=lambda n: down.update(now=2 <= n <= 4))  # fmt: skip
    activities = SeatActivities({"hw": cast(Any, gateway)}, engine, secret_key="")
    inp = PollSeatInput(channel="hw", seat=SEAT, phonenum="+8613800000001", run_s=600,
                        context=SeatContext())  # fmt: skip
    beats: list[Any] = []
    env = ActivityEnvironment(client=cast(Client, FakeTemporal()))
    env.on_heartbeat = lambda *details: beats.append(details)
    result = await env.run(activities.poll_seat, inp)
    assert result.signed_out and result.unstored == []
    assert stored_states(engine) == ["e1", "e2", "e3", "e4", "e5"]
    # While the store was down, what it had not taken rode on the heartbeat.
    assert max(len(details[1]) for details in beats) == 3
    engine.dispose()


async def test_a_poll_ending_with_the_store_down_hands_its_events_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = seat_store(tmp_path, SEAT)

    async def ingest(*_: Any, **__: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("the database is down"))

    monkeypatch.setattr(seat_intake, "ingest", ingest)
    gateway = ScriptedGateway(failures=0, events=2)
    activities = SeatActivities({"hw": cast(Any, gateway)}, engine, secret_key="")
    inp = PollSeatInput(channel="hw", seat=SEAT, phonenum="+8613800000001", run_s=600,
                        context=SeatContext())  # fmt: skip
    result = await ActivityEnvironment(client=cast(Client, FakeTemporal())).run(
        activities.poll_seat, inp
    )
    assert [poll.events[0].ch_state for poll in result.unstored] == ["e1", "e2"]
    assert result.context.seq == 2
    engine.dispose()


@dataclasses.dataclass
class OnePollAtATime(FailingGateway):
    """A gateway that counts polls in flight of the seat (the real one refuses a second)."""

    in_flight: int = 0
    most_in_flight: int = 0
    polled: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def poll_seat(self, login: SeatLogin, context: SeatContext) -> SeatPoll:
        self.polls += 1
        self.polled.set()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)  # the gateway holding the poll
        finally:
            self.in_flight -= 1
        return SeatPoll(events=[], context=context.model_copy(update={"seq": context.seq + 1}))


async def test_a_retried_poll_waits_for_the_earlier_attempt_still_running_here(
    tmp_path: Path,
) -> None:
    engine = seat_store(tmp_path, SEAT)
    gateway = OnePollAtATime(failures=0)
    activities = SeatActivities({"hw": cast(Any, gateway)}, engine, secret_key="")
    inp = PollSeatInput(channel="hw", seat=SEAT, phonenum="+8613800000001", run_s=0.3,
                        context=SeatContext())  # fmt: skip
    first, retry = (ActivityEnvironment(client=cast(Client, FakeTemporal())) for _ in range(2))
    retry.info = dataclasses.replace(retry.info, attempt=2)  # Temporal's retry of the same poll
    earlier = asyncio.ensure_future(first.run(activities.poll_seat, inp))
    await gateway.polled.wait()
    results = await asyncio.gather(earlier, retry.run(activities.poll_seat, inp))
    assert gateway.most_in_flight == 1
    # The retry went on from the earlier attempt's context, not from its stale input.
    assert results[1].context.seq == gateway.polls
    engine.dispose()


@dataclasses.dataclass
class RecordsContexts(ScriptedGateway):
    seen: list[int] = dataclasses.field(default_factory=list)

    async def poll_seat(self, login: SeatLogin, context: SeatContext) -> SeatPoll:
        self.seen.append(context.seq)
        return await super().poll_seat(login, context)


async def test_a_poll_retried_after_its_worker_died_goes_on_from_the_stored_context(
    tmp_path: Path,
) -> None:
    """Chaos scenario 1 (issue 19): Temporal keeps a heartbeat's details only every so often,
    so the attempt after a worker kill got a context from before leg A answered, and took B's
    failure for A's (an hw ``b_no_answer`` closed 1)."""
    engine = seat_store(tmp_path, SEAT)
    with session_scope(engine) as session:
        lease_line(session, "t1", "hw", CALL)
    inp = PollSeatInput(channel="hw", seat=SEAT, phonenum="+8613800000001", run_s=600,
                        context=SeatContext())  # fmt: skip
    dead = SeatActivities({"hw": cast(Any, ScriptedGateway(failures=0, events=3))}, engine, "")
    first = ActivityEnvironment(client=cast(Client, FakeTemporal()))
    await first.run(dead.poll_seat, inp)
    # The next attempt, in a new worker, with the heartbeat Temporal kept before any event.
    gateway = RecordsContexts(failures=0, events=0)
    retry = ActivityEnvironment(client=cast(Client, FakeTemporal()))
    stale = [SeatContext().model_dump(mode="json")]
    retry.info = dataclasses.replace(retry.info, attempt=2, heartbeat_details=stale)
    await retry.run(SeatActivities({"hw": cast(Any, gateway)}, engine, "").poll_seat, inp)
    assert gateway.seen == [3]
    # Another poll activity (a new lineage, e.g. after a sign-in) keeps its own context.
    gateway = RecordsContexts(failures=0, events=0)
    other = ActivityEnvironment(client=cast(Client, FakeTemporal()))
    other.info = dataclasses.replace(other.info, activity_id="another", attempt=2)
    await other.run(SeatActivities({"hw": cast(Any, gateway)}, engine, "").poll_seat, inp)
    assert gateway.seen == [0]
    engine.dispose()


@dataclasses.dataclass
class AnotherPollInFlight(FailingGateway):
    async def poll_seat(self, login: SeatLogin, context: SeatContext) -> SeatPoll:
        self.polls += 1
        if self.polls <= self.failures:
            raise PollInFlight("hw agentevent: 000-007 repeated call")
        raise SeatSignedOut("100-006")


async def test_a_poll_refused_for_another_in_flight_never_counts_against_health(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chaos scenario 2 (issue 19): after a Temporal outage every seat's retried poll met the
    earlier one's (000-007); counted as channel failures they opened hw's circuit, and hw
    calls not yet placed closed 6, never dialled."""
    monkeypatch.setattr(seats, "POLL_BACKOFF_INITIAL_S", 0.001)
    monkeypatch.setattr(seats, "POLL_BACKOFF_MAX_S", 0.002)
    engine = seat_store(tmp_path, SEAT)
    gateway, temporal = AnotherPollInFlight(failures=10), FakeTemporal()
    activities = SeatActivities({"hw": cast(Any, gateway)}, engine, secret_key="")
    inp = PollSeatInput(channel="hw", seat=SEAT, phonenum="+8613800000001", run_s=600,
                        context=SeatContext())  # fmt: skip
    result = await ActivityEnvironment(client=cast(Client, temporal)).run(activities.poll_seat, inp)
    assert result.signed_out and gateway.polls == 11
    assert temporal.signals == []  # nothing told to ChannelHealthWorkflow
    engine.dispose()


async def test_an_answer_s_context_is_stored_with_its_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chaos scenario 1 under load (issue 19): a worker killed after an answer's events were
    stored and before its context was left a retry with the context before them (an hw
    ``b_rejects`` closed 1). Both are written in one transaction."""
    engine = seat_store(tmp_path, SEAT)
    with session_scope(engine) as session:
        lease_line(session, "t1", "hw", CALL)

    async def dies_after_the_commit(*_: Any, **__: Any) -> None:
        raise RuntimeError("the worker died here")

    monkeypatch.setattr("intake.delivery.deliver", dies_after_the_commit)
    activities = SeatActivities({"hw": cast(Any, ScriptedGateway(0, events=1))}, engine, "")
    inp = PollSeatInput(channel="hw", seat=SEAT, phonenum="+8613800000001", run_s=600,
                        context=SeatContext())  # fmt: skip
    await ActivityEnvironment(client=cast(Client, FakeTemporal())).run(activities.poll_seat, inp)
    assert stored_states(engine)[:1] == ["e1"]
    stored = await SqlSessions(engine).load("hw", f"poll:{SEAT}")
    assert stored is not None and StoredContext.model_validate_json(stored).context.seq == 1
    engine.dispose()
