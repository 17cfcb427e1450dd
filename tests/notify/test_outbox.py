"""The notification outbox on a real database: a delivery is written in the record's own
transaction (a rolled-back save tells nothing), once per event however often a save runs, a
snapshot of the call as it was; only the head of each call's queue is due; back-off and
giving up; and the migration matches the tables."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from sqlmodel import SQLModel

from core.secrets import unseal
from core.types import CallState
from store import calls, inbox, notifications
from store.db import now_ms, session_scope
from store.models import CallRecordRow, DeliveryStatus, EventType
from store.notification_sending import (
    Attempt,
    Backoff,
    InFlight,
    Outgoing,
    due_heads,
    prune,
    record_attempt,
)
from store.reconciler import close_by_reconciler
from tests.notify.support import (
    EXPECTED,
    SECRET,
    SECRET_KEY,
    deliveries,
    new_call,
    run_call,
    save,
    subscribe,
)

URL = "http://127.0.0.1:1/hooks"
NOTHING_IN_FLIGHT = InFlight({})


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    """SQLite, and PostgreSQL and MariaDB when reachable (tests/conftest.py)."""
    notifications.forget_subscriptions()
    return db_engine


def labels(engine: Engine, cc_call_id: str) -> list[str]:
    return [f"{d.event_type}:{json.loads(d.call_json)['state']}"
            for d in deliveries(engine, cc_call_id)]  # fmt: skip


def test_each_state_change_is_enqueued_with_the_call_as_it_was(engine: Engine) -> None:
    subscribe(engine, URL)
    run_call(engine, "c1")
    assert labels(engine, "c1") == EXPECTED  # init still says init, though the call closed
    assert {d.status for d in deliveries(engine)} == {DeliveryStatus.PENDING.value}
    assert len({d.webhook_id for d in deliveries(engine)}) == len(EXPECTED)


def test_a_snapshot_keeps_the_records_word_for_the_vendors_id(engine: Engine) -> None:
    """``call_id`` (RECORD.md), as before ``vendor_call_id`` was its name in code: a sender
    of the earlier release reads what this one enqueues, and this one reads both."""
    subscribe(engine, URL)
    new_call(engine, "c1")
    save(engine, "c1", CallState.CONN, vendor_call_id="V9")
    snapshots = [json.loads(d.call_json) for d in deliveries(engine, "c1")]
    assert snapshots[-1]["call_id"] == "V9" and "vendor_call_id" not in snapshots[-1]
    assert Outgoing(deliveries(engine, "c1")[-1], URL, "", False).call_row().vendor_call_id == "V9"


def test_a_rolled_back_save_enqueues_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscribe(engine, URL)
    new_call(engine, "c1")

    def store_down(*_: object) -> None:
        raise RuntimeError("the inbox write failed after the record's")

    monkeypatch.setattr(inbox, "mark_applied", store_down)
    with pytest.raises(RuntimeError):
        save(engine, "c1", CallState.CONN)
    assert labels(engine, "c1") == ["call.state:init"]  # the conn save never happened
    monkeypatch.undo()
    save(engine, "c1", CallState.CONN)  # the workflow's retry
    assert labels(engine, "c1") == ["call.state:init", "call.state:conn"]


def test_a_creation_rolled_back_enqueues_nothing(engine: Engine) -> None:
    subscribe(engine, URL)
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        row = CallRecordRow(cc_call_id="c9", tenant="nt", agent="a", caller="+8613800000001",
                            called="+8613900000002", channel="e9", display="platform",
                            created=now_ms(), updated=now_ms())  # fmt: skip
        session.add(row)
        notifications.enqueue_created(session, row)
        raise RuntimeError("the line lease failed")
    assert deliveries(engine) == []


def test_a_save_run_twice_enqueues_once(engine: Engine) -> None:
    subscribe(engine, URL)
    new_call(engine, "c1")
    save(engine, "c1", CallState.CONN)
    save(engine, "c1", CallState.CONN)  # a local activity retried after its commit
    assert labels(engine, "c1") == ["call.state:init", "call.state:conn"]


def test_nothing_without_a_subscription_or_for_unwanted_events(engine: Engine) -> None:
    run_call(engine, "c1")
    assert deliveries(engine) == []
    subscribe(engine, URL, events=[EventType.CLOSED])
    run_call(engine, "c2")
    assert labels(engine, "c2") == ["call.closed:close"]


def test_only_the_head_of_each_calls_queue_is_due(engine: Engine) -> None:
    subscribe(engine, URL)
    run_call(engine, "c1")
    run_call(engine, "c2")
    backoff = Backoff(initial_s=60, max_s=60, give_up_s=3600)

    def due() -> list[str]:
        with session_scope(engine) as session:
            heads = due_heads(session, now_ms(), 50, NOTHING_IN_FLIGHT, 2)
        return [f"{o.delivery.cc_call_id}:{o.delivery.event_type}" for o in heads]

    assert due() == ["c1:call.state", "c2:call.state"]
    first = deliveries(engine, "c1")[0]
    assert first.id is not None
    with session_scope(engine) as session:
        record_attempt(session, first.id, Attempt(500, "HTTP 500"), backoff)
    # c1's head waits for its back-off, and c1's next event waits for it.
    assert due() == ["c2:call.state"]
    with session_scope(engine) as session:
        heads = due_heads(session, now_ms() + 61_000, 50, NOTHING_IN_FLIGHT, 2)
    assert {h.delivery.id for h in heads} == {first.id, deliveries(engine, "c2")[0].id}


def test_back_off_doubles_then_a_delivery_is_given_up(engine: Engine) -> None:
    subscribe(engine, URL)
    new_call(engine, "c1")
    save(engine, "c1", CallState.CONN)
    head, second = deliveries(engine, "c1")
    assert head.id is not None
    backoff = Backoff(initial_s=1, max_s=3, give_up_s=3600)
    delays = []
    for _ in range(4):
        with session_scope(engine) as session:
            record_attempt(session, head.id, Attempt(None, "connection failed"),
                           backoff)  # fmt: skip
        row = deliveries(engine, "c1")[0]
        assert row.last_attempt_at is not None
        delays.append(round((row.next_attempt_at - row.last_attempt_at) / 1000))
    assert delays == [1, 2, 3, 3]
    with session_scope(engine) as session:
        record_attempt(session, head.id, Attempt(None, "connection failed"),
                       Backoff(1, 3, give_up_s=0))  # fmt: skip
    failed = deliveries(engine, "c1")[0]
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 5, "connection failed")
    with session_scope(engine) as session:  # given up: the call's next event goes ahead
        heads = due_heads(session, now_ms(), 50, NOTHING_IN_FLIGHT, 2)
    assert [h.delivery.id for h in heads] == [second.id]


def test_the_migration_matches_the_tables(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    mine = [d for d in diff if "notification" in repr(d)]
    assert mine == []


def test_the_secret_is_stored_sealed(engine: Engine) -> None:
    subscribe(engine, URL)
    with session_scope(engine) as session:
        sub = notifications.get_subscription(session, "nt")
    assert sub is not None and not sub.secret.startswith("whsec_")
    assert unseal(sub.secret, SECRET_KEY) == SECRET


def test_an_undone_call_is_never_told_and_old_deliveries_are_pruned(engine: Engine) -> None:
    subscribe(engine, URL)
    new_call(engine, "undone")
    new_call(engine, "kept")
    with session_scope(engine) as session:
        notifications.forget_call(session, "undone")
    assert [d.cc_call_id for d in deliveries(engine)] == ["kept"]
    (kept,) = deliveries(engine)
    assert kept.id is not None
    with session_scope(engine) as session:
        record_attempt(session, kept.id, Attempt(204, None), Backoff(1, 1, 60))
    with session_scope(engine) as session:
        assert prune(session, before=now_ms() - 60_000) == 0  # recent: kept
        assert prune(session, before=now_ms() + 1) == 1
    assert deliveries(engine) == []


def test_a_call_the_lease_reconciler_closes_is_told_too(engine: Engine) -> None:
    """Its workflow is gone (terminated by an operator): the reconciler's close (255) reaches
    the app like any other."""
    subscribe(engine, URL)
    row = new_call(engine, "c9")
    with session_scope(engine) as session:
        close_by_reconciler(session, row, now_ms())
    assert labels(engine, "c9") == ["call.state:init", "call.state:close", "call.closed:close"]
    [closed] = [d for d in deliveries(engine, "c9") if d.event_type == EventType.CLOSED.value]
    assert json.loads(closed.call_json)["close_type"] == "255"


def test_a_reconciler_close_of_a_row_its_session_holds_tells_the_close(engine: Engine) -> None:
    """As free_orphaned_lease does: the row is loaded, then closed in the same session (the
    close is a plain UPDATE); the app must hear the close, not the loaded copy's init."""
    subscribe(engine, URL)
    new_call(engine, "c10")
    with session_scope(engine) as session:
        row = calls.get_call_any_tenant(session, "c10")
        assert row is not None
        close_by_reconciler(session, row, now_ms())
    assert labels(engine, "c10") == ["call.state:init", "call.state:close", "call.closed:close"]
