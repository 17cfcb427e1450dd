"""store/retention.py on every database: only what is past its tenant's retention goes (the
raw events and recording of a closed call, events of no call, stale seat sessions), call
records stay with their numbers, and a deleted recording never comes back, whatever a save or
a late event says afterwards."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from sqlmodel import SQLModel, select

from channels.events import CallEvent
from core.types import CallState, CloseType, EventKind
from store import calls, retention
from store.db import session_scope
from store.models import CallRecordRow, ChannelSession, VendorEvent
from store.tenants import ensure_tenant

DAY = retention.DAY_MS
NOW = 1_800_000_000_000  # the clock the tests run at
CALLER, CALLED = "+8613800000001", "+8613900000002"


def add_call(
    engine: Engine, tenant: str, cc_call_id: str, age_days: float, state: str = "close"
) -> None:
    created = NOW - int(age_days * DAY)
    with session_scope(engine) as s:
        ensure_tenant(s, tenant)
        s.add(CallRecordRow(tenant=tenant, agent="e9-1", caller=CALLER, called=CALLED,
                            channel="e9", display="passthrough", cc_call_id=cc_call_id,
                            state=state, created=created, updated=created,
                            ch_audio_url=f"https://vendor.example/{cc_call_id}.wav",
                            audio_url=f"local:{tenant}/{cc_call_id}.wav"))  # fmt: skip
        for n in range(3):
            add_event(s, f"{cc_call_id}-{n}", cc_call_id, created + n)


def add_event(s: object, dedupe: str, cc_call_id: str | None, received: int) -> None:
    s.add(VendorEvent(channel="e9", dedupe_key=dedupe, cc_call_id=cc_call_id, kind="hangup",  # type: ignore[attr-defined]
                      event_time=received, received=received, content_type="application/json",
                      body=f'{{"called": "{CALLED}"}}', event_json="{}"))  # fmt: skip


def events_of(engine: Engine, cc_call_id: str) -> int:
    with session_scope(engine) as s:
        rows = s.exec(select(VendorEvent).where(VendorEvent.cc_call_id == cc_call_id)).all()
    return len(rows)


def row(engine: Engine, cc_call_id: str) -> CallRecordRow:
    with session_scope(engine) as s:
        found = calls.get_call_any_tenant(s, cc_call_id)
    assert found is not None
    return found


def sweep_calls(engine: Engine, limit: int = 100) -> list[str]:
    """What the activity does, without storage: every tenant's expired calls, batch by batch."""
    purged: list[str] = []
    with session_scope(engine) as s:
        cutoffs = retention.tenant_cutoffs(s, NOW, default_days=90)
    for t in cutoffs:
        while True:
            with session_scope(engine) as s:
                batch = retention.expired_calls(s, t.tenant, t.cutoff, limit)
                retention.purge_calls(s, [c.cc_call_id for c in batch], NOW, "retention")
            purged += [c.cc_call_id for c in batch]
            if len(batch) < limit:
                break
    return purged


def test_only_calls_past_their_tenants_retention_lose_events_and_recording(
    db_engine: Engine,
) -> None:
    add_call(db_engine, "t1", "t1-old", 91)  # the platform's 90 days
    add_call(db_engine, "t1", "t1-recent", 89)
    add_call(db_engine, "t1", "t1-live", 120, state="init")  # never purged while not closed
    add_call(db_engine, "t2", "t2-old", 8)  # t2 keeps 7 days
    add_call(db_engine, "t2", "t2-recent", 6)
    with session_scope(db_engine) as s:
        ensure_tenant(s, "t2").retention_days = 7

    assert sorted(sweep_calls(db_engine, limit=1)) == ["t1-old", "t2-old"]  # batch by batch

    for gone in ("t1-old", "t2-old"):
        purged = row(db_engine, gone)
        assert events_of(db_engine, gone) == 0
        assert (purged.audio_url, purged.ch_audio_url) == (None, None)
        assert (purged.purged, purged.recording_deleted) == (NOW, NOW)
        assert purged.recording_error == "retention"
        assert (purged.caller, purged.called, purged.state) == (CALLER, CALLED, "close")
    for kept in ("t1-recent", "t1-live", "t2-recent"):
        assert events_of(db_engine, kept) == 3
        assert row(db_engine, kept).audio_url is not None
        assert row(db_engine, kept).purged is None
    assert sweep_calls(db_engine) == []  # a second sweep finds nothing


def test_events_of_no_call_or_a_purged_call_go_after_the_platforms_retention(
    db_engine: Engine,
) -> None:
    add_call(db_engine, "t1", "t1-old", 100)
    add_call(db_engine, "t1", "t1-kept", 100)
    with session_scope(db_engine) as s:
        ensure_tenant(s, "t1").retention_days = 365  # its calls' events are the tenant's
        add_event(s, "orphan-old", None, NOW - 91 * DAY)
        add_event(s, "unknown-old", "no-such-call", NOW - 91 * DAY)
        add_event(s, "orphan-new", None, NOW - 1 * DAY)
    with session_scope(db_engine) as s:  # t1-old was purged; a straggler came after
        retention.purge_calls(s, ["t1-old"], NOW - 10 * DAY, "retention")
        add_event(s, "straggler", "t1-old", NOW - 91 * DAY)
    before = retention.cutoff(NOW, 90)
    deleted = 0
    while True:
        with session_scope(db_engine) as s:
            batch = retention.delete_events(s, retention.orphan_events(s, before, 2))
        deleted += batch
        if batch < 2:
            break
    with session_scope(db_engine) as s:
        left = sorted(e.dedupe_key for e in s.exec(select(VendorEvent)).all())
    assert deleted == 3
    assert left == ["orphan-new", "t1-kept-0", "t1-kept-1", "t1-kept-2"]


def test_seat_sessions_not_written_for_the_retention_go(db_engine: Engine) -> None:
    with session_scope(db_engine) as s:
        for key, age in (("seat:10001", 91), ("call:v-1", 120), ("seat:10002", 1)):
            s.add(ChannelSession(channel="hw", key=key, value="{}", updated=NOW - age * DAY))
    before = retention.cutoff(NOW, 90)
    with session_scope(db_engine) as s:
        found = retention.expired_sessions(s, before, 10)
    with session_scope(db_engine) as s:  # the seat signed in again meanwhile
        s.get(ChannelSession, ("hw", "seat:10001")).updated = NOW  # type: ignore[union-attr]
    with session_scope(db_engine) as s:
        assert retention.delete_sessions(s, found, before) == 1
    with session_scope(db_engine) as s:
        left = sorted(x.key for x in s.exec(select(ChannelSession)).all())
    assert sorted(found) == [("hw", "call:v-1"), ("hw", "seat:10001")]
    assert left == ["seat:10001", "seat:10002"]


def test_a_deleted_recording_stays_deleted(db_engine: Engine) -> None:
    add_call(db_engine, "t1", "c1", 0, state="conn")
    with session_scope(db_engine) as s:
        assert retention.delete_recording(s, "t2", "c1", NOW, "by admin") is None  # not t2's
        deleted = retention.delete_recording(s, "t1", "c1", NOW, "by admin")
    assert deleted is not None and deleted.audio_url == "local:t1/c1.wav"
    with session_scope(db_engine) as s:
        again = retention.delete_recording(s, "t1", "c1", NOW + 1, "by someone else")
        assert retention.recording_deleted(s, "c1")
    assert again is not None and again.audio_url is None  # idempotent
    assert row(db_engine, "c1").recording_error == "by admin"

    live = calls.record_of(row(db_engine, "c1")).model_copy(  # the workflow's copy landed
        update={"audio_url": "local:t1/c1.wav", "ch_audio_url": "https://v.example/1.wav"}
    )
    with session_scope(db_engine) as s:
        assert calls.save_record(s, live, [])
    with session_scope(db_engine) as s:
        calls.set_recording(s, "c1", "local:t1/c1.wav", None)
    closed = live.model_copy(update={"state": CallState.CLOSE, "close_time": NOW,
                                     "close_type": CloseType.NORMAL})  # fmt: skip
    with session_scope(db_engine) as s:
        calls.save_record(s, closed, [])
    late = CallEvent(cc_call_id="c1", kind=EventKind.RECORDING_READY, at=NOW + 5,
                     recording_url="https://v.example/late.wav", dedupe_key="late")  # fmt: skip
    with session_scope(db_engine) as s:
        applied = calls.apply_late_events(s, [late])
    assert applied is not None and applied.ch_audio_url is None  # nothing to copy
    stored = row(db_engine, "c1")
    assert (stored.audio_url, stored.ch_audio_url) == (None, None)
    assert (stored.state, stored.recording_error) == ("close", "by admin")


def test_the_migration_matches_the_tables(db_engine: Engine) -> None:
    with db_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    mine = [d for d in diff if "retention" in repr(d) or "purged" in repr(d)
            or "recording_deleted" in repr(d) or "ix_vendor_event_received" in repr(d)]  # fmt: skip
    assert mine == []
