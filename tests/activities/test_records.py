"""activities/records.py through ``ActivityEnvironment`` on a migrated store: what each
activity writes, on its own, without a workflow or a worker around it (they are plain
functions the worker runs in its thread pool, so the environment runs them directly)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.testing import ActivityEnvironment

from activities.records import RecordActivities
from callflow.policy import CallingWindow
from callflow.record import apply_events
from channels.events import CallEvent
from contracts.call import (
    Attempt,
    LineLease,
    ReleaseLineInput,
    Routing,
    SaveRecordInput,
    TakeLineInput,
)
from core.types import CallState, CloseType, EventKind
from store import calls, inbox, lines
from store.db import now_ms, session_scope
from store.models import AgentLine, CallRecordRow, VendorEvent
from tests.notify.support import TENANT, new_call, sqlite_store

LINE = "e9-1"
T0 = 1_800_000_000_000


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return sqlite_store(tmp_path)


def leased(engine: Engine, cc_call_id: str) -> LineLease:
    """The call holds the tenant's e9 line, as the API left it."""
    with session_scope(engine) as session:
        lines.ensure_line(session, TENANT, "e9", LINE, "+861080000001")
        line = lines.lease_line(session, TENANT, "e9", cc_call_id)
        assert line is not None
        return lines.lease_of(line)


def event(cc_call_id: str, kind: EventKind, at: int, **fields: object) -> CallEvent:
    return CallEvent.model_validate(
        {"cc_call_id": cc_call_id, "vendor_call_id": "V1", "kind": kind, "at": at,
         "dedupe_key": f"{kind}-{at}", "channel": "e9", **fields}
    )  # fmt: skip


def stored(engine: Engine, *events: CallEvent) -> list[int]:
    """The events in the inbox, as intake stores them; their inbox ids."""
    with session_scope(engine) as session:
        return [inbox.store_event(session, "e9", e, b"{}", "application/json")[0] for e in events]


def row(engine: Engine, cc_call_id: str) -> CallRecordRow:
    with Session(engine) as session:
        found = calls.get_call_any_tenant(session, cc_call_id)
        assert found is not None
        return found


def line(engine: Engine) -> AgentLine:
    with Session(engine) as session:
        found = lines.find_line(session, "e9", LINE)
        assert found is not None
        return found


def inbox_row(engine: Engine, inbox_id: int) -> VendorEvent:
    with Session(engine) as session:
        found = session.get(VendorEvent, inbox_id)
        assert found is not None
        return found


def test_a_closing_save_writes_the_record_settles_its_events_and_frees_the_line(
    engine: Engine,
) -> None:
    new_call(engine, "c1")
    lease = leased(engine, "c1")
    bridged = event("c1", EventKind.BRIDGED, T0)
    hangup = event("c1", EventKind.HANGUP, T0 + 3_000, close_type=CloseType.NORMAL)
    stray = event("c1", EventKind.HANGUP, T0 + 1, vendor_call_id="V2", close_type=CloseType.A_BUSY)
    applied, hung_up, strayed = stored(engine, bridged, hangup, stray)
    record = apply_events(calls.record_of(row(engine, "c1")), [bridged, hangup])
    save = SaveRecordInput(
        record=record,
        attempts=[Attempt(channel="e9", agent=LINE, at=T0, outcome="placed")],
        applied_inbox_ids=[applied, hung_up],
        noted_inbox_ids={strayed: "stray_vendor_call"},
        release_line=lease,
        state_changed=True,
    )
    ActivityEnvironment().run(RecordActivities(engine).save_record, save)
    saved = row(engine, "c1")
    assert (saved.state, saved.close_type, saved.duration) == ("close", "0", 3)
    assert saved.vendor_call_id == "V1" and '"outcome": "placed"' in (saved.attempts or "")
    assert inbox_row(engine, applied).applied and inbox_row(engine, hung_up).applied
    assert (inbox_row(engine, strayed).applied, inbox_row(engine, strayed).note) == (
        False,
        "stray_vendor_call",
    )
    assert line(engine).lease_call_id is None  # freed with the close, in one transaction


def test_a_release_with_a_stale_token_keeps_the_line_leased(engine: Engine) -> None:
    new_call(engine, "c1")
    lease = leased(engine, "c1")
    stale = lease.model_copy(update={"token": lease.token - 1})
    activities = RecordActivities(engine)
    env = ActivityEnvironment()
    assert not env.run(activities.release_line, ReleaseLineInput(cc_call_id="c1", line=stale))
    assert line(engine).lease_call_id == "c1"
    assert env.run(activities.release_line, ReleaseLineInput(cc_call_id="c1", line=lease))
    assert line(engine).lease_call_id is None


def test_late_events_of_an_unknown_call_are_noted_and_write_nothing(engine: Engine) -> None:
    late = event("nobody", EventKind.HANGUP, T0, close_type=CloseType.NORMAL)
    [inbox_id] = stored(engine, late)
    late = late.model_copy(update={"inbox_id": inbox_id})
    result = ActivityEnvironment().run(RecordActivities(engine).apply_late_events, [late])
    assert not result.found and result.to_copy is None
    assert (inbox_row(engine, inbox_id).applied, inbox_row(engine, inbox_id).note) == (
        False,
        "unknown_call",
    )


def test_a_late_recording_of_a_bridged_call_that_wants_one_goes_to_the_copy(
    engine: Engine,
) -> None:
    new_call(engine, "c1")
    closed = apply_events(
        calls.record_of(row(engine, "c1")),
        [
            event("c1", EventKind.BRIDGED, T0),
            event("c1", EventKind.HANGUP, T0 + 2_000, close_type=CloseType.NORMAL),
        ],
    )
    with session_scope(engine) as session:
        calls.save_record(session, closed, [])
    late = event("c1", EventKind.RECORDING_READY, T0 + 9_000, recording_url="https://v/r.wav")
    [inbox_id] = stored(engine, late)
    late = late.model_copy(update={"inbox_id": inbox_id})
    result = ActivityEnvironment().run(RecordActivities(engine).apply_late_events, [late])
    assert result.found and result.to_copy is not None
    assert (result.to_copy.cc_call_id, result.to_copy.url) == ("c1", "https://v/r.wav")
    assert row(engine, "c1").ch_audio_url == "https://v/r.wav"
    assert row(engine, "c1").state == CallState.CLOSE.value  # close is final
    assert inbox_row(engine, inbox_id).applied


def test_the_vendor_id_a_lost_place_answer_wrote_down_is_found(engine: Engine) -> None:
    new_call(engine, "c1")
    activities = RecordActivities(engine)
    env = ActivityEnvironment()
    assert env.run(activities.placed_call_id, "c1") is None
    with session_scope(engine) as session:
        calls.note_vendor_call(session, "c1", "V7")
    assert env.run(activities.placed_call_id, "c1") == "V7"


def hours(open_now: bool) -> CallingWindow:
    """Calling hours (UTC, every day) open now, or the hour after next only."""
    if open_now:
        return CallingWindow.model_validate({"tz": "UTC", "days": list(range(1, 8)),
                                             "from": "00:00", "to": "24:00"})  # fmt: skip
    start = (datetime.now(UTC).hour + 2) % 24
    end = f"{start + 1:02d}:00" if start < 23 else "24:00"
    return CallingWindow.model_validate(
        {"tz": "UTC", "days": list(range(1, 8)), "from": f"{start:02d}:00", "to": end}
    )


def test_a_due_call_outside_its_calling_hours_waits_for_their_opening_holding_no_line(
    engine: Engine,
) -> None:
    """Issue 24: a due call that waited (no line free) until its calling hours closed is not
    placed then: the line is not taken and the call is told when the hours open."""
    new_call(engine, "c1")
    with session_scope(engine) as session:
        lines.ensure_line(session, TENANT, "e9", LINE, "+861080000001")
    take = ActivityEnvironment().run
    routing = Routing(channel="e9", priority=["e9"])
    window = hours(open_now=False)
    asked = now_ms()
    ask = TakeLineInput(tenant=TENANT, cc_call_id="c1", routing=routing, window=window)
    waits = take(RecordActivities(engine).take_due_line, ask)

    assert (waits.line, waits.wait_reason) == (None, "window")
    assert waits.due_at is not None and waits.due_at > asked
    assert window.contains(waits.due_at) and not window.contains(waits.due_at - 60_000)
    assert line(engine).lease_call_id is None  # no line held while it waits
    ask = ask.model_copy(update={"window": hours(open_now=True)})
    taken = take(RecordActivities(engine).take_due_line, ask)
    assert taken.line is not None and taken.line.agent == LINE and taken.due_at is None


def test_the_calls_events_stored_and_never_applied_are_found(engine: Engine) -> None:
    """An unknown outcome's last look: what CC stored of the call that its workflow never got
    (oldest first); not an applied one, not a noted one, not another call's."""
    new_call(engine, "c1")
    new_call(engine, "c2")
    ringing, answered, applied, noted = (
        event("c1", EventKind.A_DIALING, T0 + 2_000),
        event("c1", EventKind.A_ANSWERED, T0 + 3_000),
        event("c1", EventKind.B_DIALING, T0 + 1_000),
        event("c1", EventKind.B_ANSWERED, T0 + 500),
    )
    ids = stored(engine, answered, ringing, applied, noted, event("c2", EventKind.A_DIALING, T0))
    with session_scope(engine) as session:
        inbox.mark_applied(session, [ids[2]])
        inbox.note_unapplied(session, ids[3], "stray_vendor_call")
    found = ActivityEnvironment().run(RecordActivities(engine).unapplied_events, "c1")
    assert [(e.kind, e.inbox_id) for e in found] == [
        (EventKind.A_DIALING, ids[1]),
        (EventKind.A_ANSWERED, ids[0]),
    ]
