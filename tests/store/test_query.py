"""Call Query in the store: keyset pages newest first, every filter, index use, tenant scope."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from store.call_query import CallFilter, Keyset, iter_calls, query_calls
from store.models import CallRecordRow
from tests.api.seed import bulk_insert, call_row, count_matching
from tests.store.plans import page_plan

BASE = 1_800_000_000_000
SINCE = BASE + 1_000


def _ids(engine: Engine, flt: CallFilter) -> set[int]:
    with Session(engine) as session:
        rows = query_calls(session, flt, None, 100_000).rows
    return {row.id for row in rows if row.id is not None}


def _page(engine: Engine, flt: CallFilter, after: Keyset | None, limit: int) -> Any:
    with Session(engine) as session:
        return query_calls(session, flt, after, limit)


def test_pages_through_10000_records_without_duplicates_or_gaps(db_engine: Engine) -> None:
    # 8 calls share each `created` value, so the id tie-break decides page edges.
    wanted = [call_row("t1", SINCE + 1 + i // 8) for i in range(10_000)]
    noise = (
        [call_row("t1", SINCE + i, state="conn") for i in range(300)]
        + [call_row("t1", SINCE + i, channel="e9") for i in range(300)]
        + [call_row("t2", SINCE + i) for i in range(300)]
        + [call_row("t1", BASE + i) for i in range(300)]  # before `since`
    )
    bulk_insert(db_engine, wanted + noise)
    flt = CallFilter(tenant="t1", state="close", channel="hw", since=SINCE)
    assert count_matching(db_engine, flt) == 10_000
    original = _ids(db_engine, flt)

    seen: list[tuple[int, int]] = []
    behind: set[int] = set()
    after: Keyset | None = None
    while True:
        page = _page(db_engine, flt, after, 500)
        seen += [(row.created, row.id) for row in page.rows]
        if page.next is None:
            break
        after = page.next
        # Calls arriving while the client pages: newer ones (and one sharing the cursor's
        # `created`) sort before the cursor and are not seen; an older one (created at
        # `since`, before every seeded call) is, once.
        bulk_insert(db_engine, [
            call_row("t1", BASE + 10**7), call_row("t1", after.created),
            call_row("t1", SINCE, cc_call_id=f"behind{after.id}"),
        ])  # fmt: skip
        with Session(db_engine) as session:
            row = session.exec(
                select(CallRecordRow).where(CallRecordRow.cc_call_id == f"behind{after.id}")
            ).one()
        assert row.id is not None
        behind.add(row.id)

    ids = [row_id for _, row_id in seen]
    assert len(ids) == len(set(ids)), "a call was returned twice"
    assert original <= set(ids), f"{len(original - set(ids))} calls were skipped"
    assert set(ids) - original == behind
    assert seen == sorted(seen, reverse=True)  # newest first, (created, id) strictly down


def test_every_filter_selects_exactly_its_calls(db_engine: Engine) -> None:
    other: dict[str, Any] = {
        "state": "conn", "channel": "e9", "agent": "hw-2", "user": "u2",
        "caller": "+8613800000009", "called": "+8613900000009", "close_type": "4",
    }  # fmt: skip
    rows = [call_row("t1", SINCE + i) for i in range(5)]
    for i, (name, value) in enumerate(other.items()):
        rows += [call_row("t1", SINCE + 10 + i * 3 + k, **{name: value}) for k in range(3)]
    bulk_insert(db_engine, rows)
    everything = _ids(db_engine, CallFilter(tenant="t1"))
    assert len(everything) == 5 + 3 * len(other)
    for name, value in other.items():
        flt = CallFilter(tenant="t1", **{name: value})
        with Session(db_engine) as session:
            found = query_calls(session, flt, None, 50).rows
        assert len(found) == 3 and all(getattr(r, name) == value for r in found), name
        assert len(_ids(db_engine, replace(flt, tenant="t2"))) == 0


def test_since_is_inclusive_until_exclusive_and_tenants_never_mix(db_engine: Engine) -> None:
    bulk_insert(db_engine, [call_row("t1", SINCE + i) for i in range(10)]
                + [call_row("t2", SINCE + i) for i in range(10)])  # fmt: skip
    window = CallFilter(tenant="t1", since=SINCE + 2, until=SINCE + 5)
    with Session(db_engine) as session:
        found = query_calls(session, window, None, 50).rows
    assert [r.created for r in found] == [SINCE + 4, SINCE + 3, SINCE + 2]
    assert {r.tenant for r in found} == {"t1"}


def test_export_iterates_every_page_in_order(db_engine: Engine) -> None:
    bulk_insert(db_engine, [call_row("t1", SINCE + i // 3) for i in range(25)])
    flt = CallFilter(tenant="t1")
    streamed = [(r.created, r.id) for r in iter_calls(db_engine, flt, page_size=4)]
    with Session(db_engine) as session:
        direct = session.exec(
            select(CallRecordRow.created, CallRecordRow.id)
            .where(CallRecordRow.tenant == "t1")
            .order_by(col(CallRecordRow.created).desc(), col(CallRecordRow.id).desc())
        ).all()
    assert streamed == [tuple(r) for r in direct] and len(streamed) == 25


@pytest.mark.parametrize(
    "name", ["state", "channel", "agent", "user", "caller", "called", "close_type", None]
)
def test_each_filter_pages_on_its_index_without_sorting(tmp_path: Path, name: str | None) -> None:
    changes: dict[str, Any] = {name: "x"} if name else {}
    flt = replace(CallFilter(tenant="t1", since=SINCE), **changes)
    plan = page_plan(tmp_path, flt, Keyset(SINCE + 50, 7))
    assert f"INDEX ix_call_record_tenant_{name or 'created'} " in plan, plan
    assert "TEMP B-TREE" not in plan, plan
