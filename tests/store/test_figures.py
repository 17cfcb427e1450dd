"""store/figures.py on SQLite, PostgreSQL and MariaDB: the figures kept as calls close are
exactly what a rebuild from the records gives, through every way a closed call changes (it
closes, a late event changes it, a vendor's call id comes late, it is dropped), and two
closes of one tenant at the same moment both count (no lost update)."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
from alembic import command
from sqlalchemy import Engine, insert, select, text
from sqlmodel import Session, col

from callflow.record import CallRecord, apply_event
from channels.events import CallEvent
from core.types import CloseType, DisplayPolicy, EventKind
from store import calls, figures
from store.db import session_scope
from store.figures import HOUR_MS, MINUTE_MS
from store.histogram import Histogram, bucket, index_of, value_of
from store.migrate import alembic_config
from store.models import CallFigures, CallRecordRow
from store.stats import DAY_MS, cover
from store.tenants import ensure_tenant

T0 = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS + 5 * HOUR_MS + 7 * MINUTE_MS + 123


def kept(engine: Engine, tenant: str = "t1") -> dict[tuple[object, ...], tuple[object, ...]]:
    with Session(engine) as session:
        rows = session.execute(
            select(CallFigures).where(col(CallFigures.tenant) == tenant)
        ).scalars()
        return {
            (r.span, r.start, r.direction, r.dim, r.grp): (
                r.calls, r.placed, r.connected, r.talk_sum, values(r.talk), values(r.wait)
            )
            for r in rows
        }  # fmt: skip


def values(stored: bytes) -> dict[int, int]:
    histogram = Histogram()
    histogram.add_stored(stored)
    return histogram.values()


def rebuilt(engine: Engine, tenant: str = "t1") -> dict[tuple[object, ...], tuple[object, ...]]:
    """What a rebuild from the records gives (and leaves in place)."""
    with session_scope(engine) as session:
        figures.rebuild(session, tenant)
    return kept(engine, tenant)


def row(cc_call_id: str, created: int, **fields: object) -> CallRecordRow:
    values: dict[str, object] = {
        "tenant": "t1", "agent": "a1", "caller": "+8613800000001", "called": "+8613800000002",
        "channel": "e9", "display": "passthrough", "cc_call_id": cc_call_id,
        "created": created, "updated": created,
    }  # fmt: skip
    return CallRecordRow.model_validate({**values, **fields})


def record(cc_call_id: str, created: int) -> CallRecord:
    return CallRecord(
        cc_call_id=cc_call_id, tenant="t1", channel="e9", agent="a1",
        caller="+8613800000001", called="+8613800000002", display=DisplayPolicy.PASSTHROUGH,
        created=created, vendor_call_id=f"V{cc_call_id}",
    )  # fmt: skip


def event(kind: EventKind, at: int, key: str, **fields: object) -> CallEvent:
    return CallEvent.model_validate(
        {"cc_call_id": "c1", "kind": kind, "at": at, "dedupe_key": key, **fields}
    )


def closed(
    cc_call_id: str, created: int, waited_ms: int, talked_ms: int, how: CloseType = CloseType.NORMAL
) -> CallRecord:
    bridged = event(EventKind.BRIDGED, created + waited_ms, "b")
    hangup = event(EventKind.HANGUP, created + waited_ms + talked_ms, "h", close_type=how)
    live = record(cc_call_id, created)
    for happened in (bridged, hangup):
        live = apply_event(live, happened.model_copy(update={"cc_call_id": cc_call_id}))
    return live


def test_buckets_are_exact_under_100_and_1_percent_wide_above() -> None:
    assert [bucket(v) for v in (0, 7, 99, 100, 101, 1000, 7_250, 1_000_001)] == [
        0, 7, 99, 100, 101, 996, 7_194, 993_357,
    ]  # fmt: skip
    assert all(0.99 * v < bucket(v) <= v for v in range(1, 3_000_000, 7))
    assert all(index_of(v) <= index_of(v + 1) for v in range(0, 100_000))
    assert index_of(30_000) - index_of(2_000) < 300  # a row's answers: a few hundred buckets
    assert all(value_of(index_of(v)) == bucket(v) for v in range(0, 10**7, 997))


def test_a_histogram_is_stored_dense_or_sparse_whichever_is_shorter() -> None:
    close, far = Histogram(), Histogram()
    for value in range(2_000, 2_100):
        close.add(value)
    far.add(5)
    far.add(10**9)
    assert len(close.stored()) < 8 * 100 and len(far.stored()) == 4 + 2 * 8
    for histogram in (close, far):
        again = Histogram()
        again.add_stored(histogram.stored())
        assert again.values() == histogram.values()


def test_stored_histograms_add_up_to_the_values_they_were_made_of() -> None:
    rng = random.Random(3)
    parts = [[rng.choice([0, 5, 999, 1234, 7_250, 10**9]) for _ in range(20)] for _ in range(5)]
    merged, direct = Histogram(), Histogram()
    for values_of_part in parts:
        part = Histogram()
        for value in values_of_part:
            part.add(value)
            direct.add(value)
        merged.add_stored(part.stored())
    assert (
        merged.values()
        == direct.values()
        == dict(sorted(Counter(bucket(v) for p in parts for v in p).items()))
    )
    assert merged.percentile(50) == direct.percentile(50)
    assert Histogram().stored() == b"" and Histogram().percentile(50) is None


def test_cover_splits_a_range_into_whole_spans_and_the_ends_of_a_minute() -> None:
    since, until = T0, T0 + 2 * DAY_MS + 3 * HOUR_MS + 2 * MINUTE_MS + 17
    spans, raw = cover(since, until)
    pieces = sorted([(a, b) for size, a, b in spans] + raw)
    assert pieces[0][0] == since and pieces[-1][1] == until
    assert all(left[1] == right[0] for left, right in zip(pieces, pieces[1:], strict=False))
    assert all(a % size == 0 and b % size == 0 for size, a, b in spans)
    assert {size for size, _, _ in spans} == {DAY_MS, HOUR_MS, MINUTE_MS}
    assert all(b - a < MINUTE_MS for a, b in raw)
    assert cover(T0, T0 + 1) == ([], [(T0, T0 + 1)])


def test_each_way_a_closed_call_changes_keeps_the_figures_a_rebuild_gives(
    db_engine: Engine,
) -> None:
    with session_scope(db_engine) as s:
        ensure_tenant(s, "t1")
        for i in range(4):
            calls.insert_call(s, row(f"c{i}", T0 + i * HOUR_MS))
    assert kept(db_engine) == {}  # open calls are read from the records
    with session_scope(db_engine) as s:  # three close
        for i in range(3):
            how = CloseType.OTHER if i == 0 else CloseType.NORMAL  # c0: CC's own 255
            done = closed(f"c{i}", T0 + i * HOUR_MS, 2_500 + 10 * i, 4_000, how)
            assert calls.save_record(s, done, [])
    after_close = kept(db_engine)
    # by nothing, channel, agent, close type: a minute and an hour each; one day for all
    # three, where the close types are two (255 and 0)
    assert len(after_close) == 3 * 4 + 3 * 4 + 5
    assert after_close == rebuilt(db_engine)
    totals = after_close[(DAY_MS, T0 - T0 % DAY_MS, "out", "", "null")]
    assert totals == (3, 3, 3, 12, {4: 3}, {bucket(2500): 2, bucket(2520): 1})  # 1 % wide

    with session_scope(db_engine) as s:  # a late event: the vendor's reason replaces 255
        late = event(EventKind.HANGUP, T0 + 9_000, "late", close_type=CloseType.B_BUSY)
        assert calls.apply_late_events(s, [late.model_copy(update={"cc_call_id": "c0"})])
    assert kept(db_engine) != after_close
    assert kept(db_engine) == rebuilt(db_engine)

    with session_scope(db_engine) as s:  # closed by CC without a vendor id, which comes late
        unplaced = closed("c3", T0 + 3 * HOUR_MS, 1_000, 1_000)
        assert calls.save_record(s, unplaced.model_copy(update={"vendor_call_id": None}), [])
    before_id = kept(db_engine)
    with session_scope(db_engine) as s:
        calls.note_vendor_call(s, "c3", "V3")
    assert kept(db_engine) != before_id
    assert kept(db_engine) == rebuilt(db_engine)

    with session_scope(db_engine) as s:  # dropped, and one born closed
        stored = calls.get_call(s, "t1", "c1")
        assert stored is not None
        calls.drop_call(s, stored)
        calls.insert_call(s, row("c9", T0, state="close", close_type="2", duration=0))
    assert kept(db_engine) == rebuilt(db_engine)


@pytest.mark.parametrize("closes", [8])
def test_closes_of_one_tenant_at_the_same_moment_all_count(db_engine: Engine, closes: int) -> None:
    """Every close updates the same rows (one minute, one channel, one agent): each waits
    for the one before (the tenant's row), none overwrites another's count."""
    with session_scope(db_engine) as s:
        ensure_tenant(s, "t1")
        for i in range(closes):
            calls.insert_call(s, row(f"c{i}", T0 + i))
    barrier = threading.Barrier(closes)
    failures: list[BaseException] = []

    def close(i: int) -> None:
        try:
            barrier.wait()
            with session_scope(db_engine) as s:
                assert calls.save_record(s, closed(f"c{i}", T0 + i, 1_000, 2_000), [])
        except BaseException as exc:  # noqa: BLE001 - the test reads them
            failures.append(exc)

    threads = [threading.Thread(target=close, args=(i,)) for i in range(closes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    totals = kept(db_engine)[(MINUTE_MS, T0 - T0 % MINUTE_MS, "out", "", "null")]
    assert totals[:4] == (closes, closes, closes, 2 * closes)
    assert kept(db_engine) == rebuilt(db_engine)


def test_the_migration_counts_the_calls_closed_before_it(db_engine: Engine) -> None:
    """Downgraded to the revision before the kept figures, with calls closed and open, then
    upgraded: the new table holds what a rebuild gives, and only the closed calls."""
    url = db_engine.url.render_as_string(hide_password=False)
    command.downgrade(alembic_config(url), "0014")
    with db_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tenant (id, name, default_region, default_display, created)"
                " VALUES ('t1', 't1', 'CN', 'passthrough', 1)"
            )
        )
        for i, state in enumerate(["close", "close", "conn"]):
            conn.execute(
                insert(CallRecordRow.__table__).values(  # type: ignore[attr-defined]
                    tenant="t1", agent="a1", caller="+8613800000001", called="+8613800000002",
                    channel="e9", display="passthrough", cc_call_id=f"m{i}", state=state,
                    created=T0 + i, updated=T0 + i, conn_time=T0 + i + 3_000, duration=9,
                    close_type="0" if state == "close" else None, call_id=f"V{i}", attempts="[]",
                )
            )  # fmt: skip
    command.upgrade(alembic_config(url), "head")
    migrated = kept(db_engine)
    assert migrated[(DAY_MS, T0 - T0 % DAY_MS, "out", "", "null")][:4] == (2, 2, 2, 18)
    assert migrated == rebuilt(db_engine)
