"""A retry series tells the app (issue 24): the next try is born like any call (its
``call.state`` scheduled) and the series says ``call.retry_scheduled`` with that try's view
(its ``not_before``, ``parent``, ``try``), once, however often the try is asked for."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import Session

from core.types import CallState
from store import calls
from store.db import session_scope
from store.series import record_next_try
from tests.notify.support import deliveries, new_call, save, sqlite_store, subscribe


def test_the_next_try_is_told_as_born_and_as_the_series_next(tmp_path: Path) -> None:
    engine = sqlite_store(tmp_path)
    subscribe(engine, "https://app.example/hooks")
    new_call(engine, "head")
    save(engine, "head", CallState.CLOSE)
    with Session(engine) as session:
        row = calls.get_call_any_tenant(session, "head")
        assert row is not None
        ended = calls.record_of(row)
    due = (ended.close_time or 0) + 60_000
    for _ in range(2):  # an activity retried: the same try, told once
        with session_scope(engine) as session:
            made = record_next_try(session, ended, due, "retry")
    assert made.cc_call_id == "head-2"
    told = [(d.event_type, json.loads(d.call_json)) for d in deliveries(engine, "head-2")]
    assert [t for t, _ in told] == ["call.state", "call.retry_scheduled"]
    view = told[1][1]
    assert (view["state"], view["not_before"], view["parent"], view["try"]) == (
        "scheduled", due, "head", 2)  # fmt: skip
    assert view["wait_reason"] == "retry" and view["called"] == row.called
