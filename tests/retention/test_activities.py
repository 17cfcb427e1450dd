"""The retention sweep's activity on every database, at a controlled clock: batch after batch
(each heartbeated) until only what is inside its retention is left; recordings leave storage
before their rows forget them, so a storage failure loses nothing and the retry finishes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from activities.retention import RetentionActivities
from channels.registry import Settings
from contracts.retention import PurgePart
from storage import LocalStore, StorageError
from store.db import session_scope
from store.models import ChannelSession, VendorEvent
from tests.store.test_retention import DAY, NOW, add_call, add_event, row


def wavs(root: Path) -> list[str]:
    return sorted(p.stem for p in root.rglob("*.wav"))


OLD, RECENT = [f"old-{n}" for n in range(5)], ["recent-0", "recent-1"]


def settings(**overrides: Any) -> Settings:
    return Settings(
        **{"retention_days": 30, "retention_batch": 2, "retention_pause_s": 0, **overrides}
    )


def seed(engine: Engine, root: Path) -> LocalStore:
    store = LocalStore(root)
    for cc_call_id, age in [(c, 31) for c in OLD] + [(c, 29) for c in RECENT]:
        add_call(engine, "t1", cc_call_id, age)
        path = root / "t1" / f"{cc_call_id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF")
    with session_scope(engine) as s:
        add_event(s, "orphan-old", None, NOW - 31 * DAY)
        s.add(ChannelSession(channel="hw", key="seat:10001", value="{}", updated=NOW - 31 * DAY))
        s.add(ChannelSession(channel="hw", key="seat:10002", value="{}", updated=NOW - DAY))
    return store


def sweeper(engine: Engine, store: LocalStore) -> RetentionActivities:
    return RetentionActivities(engine, store, settings(), clock=lambda: NOW)


async def test_each_part_purges_only_what_is_past_retention_in_batches(
    db_engine: Engine, tmp_path: Path
) -> None:
    store = seed(db_engine, tmp_path)
    env, beats = ActivityEnvironment(), []
    env.on_heartbeat = lambda *details: beats.append(details)
    activities = sweeper(db_engine, store)

    calls = await env.run(activities.purge_expired, PurgePart.CALLS)
    orphans = await env.run(activities.purge_expired, PurgePart.ORPHAN_EVENTS)
    sessions = await env.run(activities.purge_expired, PurgePart.SEAT_SESSIONS)

    assert (calls.calls, calls.events, calls.recordings) == (5, 15, 5)
    assert calls.batches == 3 and len(beats) >= 3  # 2 + 2 + 1, each heartbeated
    assert (orphans.events, sessions.sessions) == (1, 1)
    assert wavs(tmp_path) == RECENT
    for cc_call_id in OLD:
        assert row(db_engine, cc_call_id).recording_error == "deleted after 30 days (retention)"
    with session_scope(db_engine) as s:
        left = {e.cc_call_id for e in s.exec(select(VendorEvent)).all()}
        seats = [x.key for x in s.exec(select(ChannelSession)).all()]
    assert left == set(RECENT) and seats == ["seat:10002"]
    again = await env.run(activities.purge_expired, PurgePart.CALLS)
    assert (again.calls, again.events, again.recordings) == (0, 0, 0)


class FailingStore(LocalStore):
    async def delete(self, key: str) -> None:
        raise StorageError("OSS did not answer")


async def test_a_storage_failure_forgets_nothing_and_the_retry_finishes(
    db_engine: Engine, tmp_path: Path
) -> None:
    seed(db_engine, tmp_path)
    broken = RetentionActivities(db_engine, FailingStore(tmp_path), settings(), lambda: NOW)
    with pytest.raises(StorageError):
        await ActivityEnvironment().run(broken.purge_expired, PurgePart.CALLS)
    assert all(row(db_engine, c).audio_url is not None for c in OLD)  # still pointed to
    assert len(wavs(tmp_path)) == 7
    done = await ActivityEnvironment().run(
        sweeper(db_engine, LocalStore(tmp_path)).purge_expired, PurgePart.CALLS
    )
    assert done.calls == 5 and wavs(tmp_path) == RECENT
