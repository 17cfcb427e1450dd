"""The store on SQLite, PostgreSQL and MariaDB: migrations, leases, inbox, records."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, inspect

from callflow.record import CallRecord, apply_event
from channels.events import CallEvent
from core.types import CallState, CloseType, DisplayPolicy, EventKind
from store import calls, inbox, tenants
from store.db import now_ms, session_scope
from store.lines import ensure_line, lease_line, release_line
from store.models import CallRecordRow

RECORD_COLUMNS = {
    "id", "tenant", "main_num", "ext_num", "agent", "call_id", "caller", "called", "biz_data",
    "channel", "ch_state", "state", "a_call_time", "b_call_time", "a_offhook_time",
    "b_offhook_time", "conn_time", "close_time", "duration", "ch_audio_url", "audio_url",
    "ivr_url", "ivr_text", "close_type", "updated", "created",
}  # fmt: skip


def seed(engine: Engine, lines: int = 1) -> None:
    with session_scope(engine) as s:
        tenants.ensure_tenant(s, "t1")
        for i in range(lines):
            ensure_line(s, "t1", "e9", f"+86108000000{i}", f"+86108000000{i}")


def test_migrated_schema_has_every_record_column(db_engine: Engine) -> None:
    columns = {c["name"] for c in inspect(db_engine).get_columns("call_record")}
    assert columns >= RECORD_COLUMNS
    assert {"vendor_event", "agent_line", "tenant", "api_key"} <= set(
        inspect(db_engine).get_table_names()
    )


def test_api_key_is_stored_hashed(db_engine: Engine) -> None:
    with session_scope(db_engine) as s:
        tenants.ensure_tenant(s, "t1")
        tenants.add_api_key(s, "t1", "secret-key")
    with session_scope(db_engine) as s:
        key = tenants.key_for(s, "secret-key")
        assert key is not None and key.tenant == "t1"
        assert key.key_hash != "secret-key"
        assert tenants.key_for(s, "other") is None


def test_line_lease_is_exclusive_under_concurrency(db_engine: Engine) -> None:
    seed(db_engine, lines=2)

    def grab(i: int) -> str | None:
        with session_scope(db_engine) as s:
            line = lease_line(s, "t1", "e9", f"call{i}")
            return None if line is None else line.agent

    with ThreadPoolExecutor(8) as pool:
        winners = [a for a in pool.map(grab, range(12)) if a is not None]
    assert len(winners) == 2
    assert len(set(winners)) == 2


def test_release_needs_the_current_fencing_token(db_engine: Engine) -> None:
    seed(db_engine)
    with session_scope(db_engine) as s:
        line = lease_line(s, "t1", "e9", "c1")
        assert line is not None
        agent, token = line.agent, line.lease_token
    with session_scope(db_engine) as s:
        assert not release_line(s, "e9", agent, "c1", token - 1)
        assert not release_line(s, "e9", agent, "other", token)
        assert lease_line(s, "t1", "e9", "c2") is None
    with session_scope(db_engine) as s:
        assert release_line(s, "e9", agent, "c1", token)
    with session_scope(db_engine) as s:
        again = lease_line(s, "t1", "e9", "c2")
        assert again is not None and again.lease_token == token + 1


def event(kind: EventKind, at: int, key: str, **extra: object) -> CallEvent:
    return CallEvent(cc_call_id="c1", vendor_call_id="V", kind=kind, at=at, dedupe_key=key,
                     **extra)  # type: ignore[arg-type]  # fmt: skip


def test_inbox_dedupes_and_tracks_applied(db_engine: Engine) -> None:
    e = event(EventKind.BRIDGED, 1000, "ev-1")
    with session_scope(db_engine) as s:
        first, dup1 = inbox.store_event(s, "e9", e, b'{"raw": 1}', "application/json")
    with session_scope(db_engine) as s:
        second, dup2 = inbox.store_event(s, "e9", e, b'{"raw": 1}', "application/json")
    assert (dup1, dup2) == (False, True)
    assert first == second
    with session_scope(db_engine) as s:
        pending = inbox.due_for_redelivery(s, now_ms(), unsent_before=now_ms() + 1)
        assert [p.inbox_id for p in pending] == [first]
        assert pending[0].kind is EventKind.BRIDGED
        inbox.mark_applied(s, [first])
    with session_scope(db_engine) as s:
        assert inbox.due_for_redelivery(s, now_ms(), unsent_before=now_ms() + 1) == []
        stored = inbox.events_for_call(s, "c1")
        assert stored[0].body == '{"raw": 1}' and stored[0].applied


def test_redelivery_retries_only_failed_signals_after_their_back_off(db_engine: Engine) -> None:
    with session_scope(db_engine) as s:
        sent, _ = inbox.store_event(s, "e9", event(EventKind.BRIDGED, 1, "a"), b"{}", "json")
        failed, _ = inbox.store_event(s, "e9", event(EventKind.HANGUP, 2, "b"), b"{}", "json")
        inbox.mark_signalled(s, [sent], at=1_000)
        inbox.mark_signal_failed(s, [failed], at=1_000, initial_s=5, max_s=60)
    with session_scope(db_engine) as s:
        # A signalled event is never signalled again; a failed one waits for its back-off.
        assert inbox.due_for_redelivery(s, now=5_999, unsent_before=10**15) == []
        due = inbox.due_for_redelivery(s, now=6_000, unsent_before=10**15)
        assert [e.inbox_id for e in due] == [failed]
        inbox.mark_signal_failed(s, [failed], at=6_000, initial_s=5, max_s=60)
    with session_scope(db_engine) as s:
        assert inbox.due_for_redelivery(s, now=15_999, unsent_before=10**15) == []
        assert len(inbox.due_for_redelivery(s, now=16_000, unsent_before=10**15)) == 1
    assert inbox.retry_delay_ms(10, 5, 300) == 300_000


def new_row(cc_call_id: str, key: str | None) -> CallRecordRow:
    now = now_ms()
    return CallRecordRow(
        tenant="t1", agent="+861080000000", caller="+8613800000001", called="+8613800000002",
        channel="e9", display="passthrough", cc_call_id=cc_call_id, idempotency_key=key,
        created=now, updated=now,
    )  # fmt: skip


def test_idempotency_key_is_unique_per_tenant(db_engine: Engine) -> None:
    seed(db_engine)
    with session_scope(db_engine) as s:
        calls.insert_call(s, new_row("c1", "k1"))
        calls.insert_call(s, new_row("c2", None))
        calls.insert_call(s, new_row("c3", None))
    with session_scope(db_engine) as s, pytest.raises(calls.IdempotencyClash):
        calls.insert_call(s, new_row("c4", "k1"))
    with session_scope(db_engine) as s:
        found = calls.find_by_idempotency_key(s, "t1", "k1")
        assert found is not None and found.cc_call_id == "c1"


def live_record() -> CallRecord:
    return CallRecord(
        cc_call_id="c1", tenant="t1", channel="e9", agent="+861080000000",
        caller="+8613800000001", called="+8613800000002", display=DisplayPolicy.PASSTHROUGH,
        created=1,
    )  # fmt: skip


def test_save_record_writes_the_live_record(db_engine: Engine) -> None:
    seed(db_engine)
    with session_scope(db_engine) as s:
        calls.insert_call(s, new_row("c1", None))
    rec = live_record()
    rec = apply_event(rec, event(EventKind.BRIDGED, 1_000, "b"))
    rec = apply_event(
        rec, event(EventKind.HANGUP, 3_500, "h").model_copy(update={"close_type": CloseType.B_BUSY})
    )
    with session_scope(db_engine) as s:
        assert calls.save_record(s, rec, [{"channel": "e9", "outcome": "placed"}])
    with session_scope(db_engine) as s:
        row = calls.get_call(s, "t1", "c1")
        assert row is not None
        assert (row.state, row.close_type, row.duration) == (CallState.CLOSE.value, "4", 3)
        assert (row.conn_time, row.close_time, row.vendor_call_id) == (1_000, 3_500, "V")
        assert json.loads(row.attempts) == [{"channel": "e9", "outcome": "placed"}]
        assert calls.get_call(s, "other-tenant", "c1") is None


def test_a_closed_row_never_goes_back_to_live(db_engine: Engine) -> None:
    """The lease reconciler may close a call whose workflow looked gone; a late save of the
    workflow's live record must not reopen it (close is final). Its facts fill what the
    stored record lacks (a bridge it saw), nothing set is overwritten."""
    seed(db_engine)
    with session_scope(db_engine) as s:
        row = new_row("c1", None)
        row.state, row.close_type, row.close_time = CallState.CLOSE.value, "255", 9_000
        calls.insert_call(s, row)
    live = live_record()
    live = apply_event(live, event(EventKind.BRIDGED, 1_000, "b"))
    with session_scope(db_engine) as s:
        assert calls.save_record(s, live, [])
    with session_scope(db_engine) as s:
        stored = calls.get_call(s, "t1", "c1")
        assert stored is not None
        assert (stored.state, stored.close_type, stored.conn_time) == ("close", "255", 1_000)
        assert (stored.close_time, stored.duration) == (9_000, 8)


def test_a_vendor_reason_replaces_the_reconcilers_255_and_nothing_else(db_engine: Engine) -> None:
    seed(db_engine)
    with session_scope(db_engine) as s:
        row = new_row("c1", None)
        row.state, row.close_type, row.close_time, row.conn_time = "close", "255", 9_000, 1_000
        calls.insert_call(s, row)
    live = apply_event(live_record(), event(EventKind.BRIDGED, 2_000, "b"))
    live = apply_event(live, event(EventKind.HANGUP, 12_000, "h", close_type=CloseType.B_BUSY))
    with session_scope(db_engine) as s:
        assert calls.save_record(s, live, [])
        stored = calls.get_call(s, "t1", "c1")
        assert stored is not None
        assert (stored.state, stored.close_type, stored.close_time) == ("close", "4", 12_000)
        assert (stored.conn_time, stored.duration) == (1_000, 11)


def test_late_events_fill_a_closed_record_through_the_state_machine(db_engine: Engine) -> None:
    seed(db_engine)
    with session_scope(db_engine) as s:
        row = new_row("c1", None)
        row.state, row.close_type, row.close_time = "close", "255", 9_000
        calls.insert_call(s, row)
    late = [event(EventKind.HANGUP, 8_000, "h", close_type=CloseType.NORMAL, duration_s=5,
                  recording_url="http://v/" + "x" * 600)]  # fmt: skip
    with session_scope(db_engine) as s:
        record = calls.apply_late_events(s, late)
        assert record is not None and record.ch_audio_url is not None
        stored = calls.get_call(s, "t1", "c1")
        assert stored is not None
        assert (stored.close_type, stored.close_time, stored.conn_time) == ("0", 8_000, 3_000)
        assert stored.ch_audio_url is None  # longer than its column: left out, never an error
    with session_scope(db_engine) as s:
        assert calls.apply_late_events(s, [event(EventKind.HANGUP, 1, "x")]) is not None
        unknown = event(EventKind.HANGUP, 1, "y").model_copy(update={"cc_call_id": "nope"})
        assert calls.apply_late_events(s, [unknown]) is None


def test_the_place_activity_notes_the_vendor_id_once(db_engine: Engine) -> None:
    seed(db_engine)
    with session_scope(db_engine) as s:
        calls.insert_call(s, new_row("c1", None))
    with session_scope(db_engine) as s:
        assert calls.placed_call_id(s, "c1") is None
        calls.note_vendor_call(s, "c1", "V1")
        calls.note_vendor_call(s, "c1", "V2")  # the first placement's id stands
        calls.note_vendor_call(s, "nope", "V3")  # no such call: nothing happens
    with session_scope(db_engine) as s:
        assert calls.placed_call_id(s, "c1") == "V1"
