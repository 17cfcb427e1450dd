"""Call Query over inbound records (issue 13): ``direction``, ``main_num`` and ``ext_num``
select exactly their calls on every database, each paging on its own index."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from store.call_query import CallFilter, Keyset, query_calls
from tests.api.seed import bulk_insert, call_row
from tests.store.plans import page_plan

SINCE = 1_800_000_000_000 + 1_000
MAIN, OTHER_MAIN = "+864008001234", "+864006001234"


def inbound(tenant: str, created: int, main_num: str = MAIN, ext_num: str = "12") -> dict[str, Any]:
    return call_row(tenant, created, direction="in", caller="+8613900000077",
                    called="+8613800000012", main_num=main_num, ext_num=ext_num)  # fmt: skip


def _found(engine: Engine, flt: CallFilter) -> list[tuple[str, str | None, str | None]]:
    with Session(engine) as session:
        rows = query_calls(session, flt, None, 1000).rows
    return [(row.direction, row.main_num, row.ext_num) for row in rows]


def test_direction_main_num_and_ext_num_select_exactly_their_calls(db_engine: Engine) -> None:
    bulk_insert(db_engine, [
        *(call_row("t1", SINCE + i) for i in range(4)),  # callbacks: direction "out"
        *(inbound("t1", SINCE + 10 + i) for i in range(3)),
        *(inbound("t1", SINCE + 20 + i, ext_num="13") for i in range(2)),
        *(inbound("t1", SINCE + 30 + i, main_num=OTHER_MAIN) for i in range(2)),
        *(inbound("t2", SINCE + 40 + i) for i in range(5)),
    ])  # fmt: skip
    t1 = CallFilter(tenant="t1")
    assert len(_found(db_engine, t1)) == 11
    assert _found(db_engine, replace(t1, direction="out")) == [("out", None, None)] * 4
    assert len(_found(db_engine, replace(t1, direction="in"))) == 7
    by_main = _found(db_engine, replace(t1, main_num=MAIN))
    assert by_main == [("in", MAIN, "13")] * 2 + [("in", MAIN, "12")] * 3  # newest first
    assert _found(db_engine, replace(t1, main_num=MAIN, ext_num="12")) == [("in", MAIN, "12")] * 3
    assert len(_found(db_engine, replace(t1, ext_num="12"))) == 5  # under either number
    assert _found(db_engine, replace(t1, main_num=MAIN, ext_num="1")) == []
    assert _found(db_engine, replace(t1, direction="in", tenant="t3")) == []
    assert len(_found(db_engine, CallFilter(tenant="t2", main_num=MAIN, ext_num="12"))) == 5


@pytest.mark.parametrize("name", ["direction", "main_num", "ext_num"])
def test_each_inbound_filter_pages_on_its_index_without_sorting(tmp_path: Path, name: str) -> None:
    flt = replace(CallFilter(tenant="t1", since=SINCE), **{name: "x"})
    plan = page_plan(tmp_path, flt, Keyset(SINCE + 50, 7))
    assert f"INDEX ix_call_record_tenant_{name} " in plan, plan
    assert "TEMP B-TREE" not in plan, plan
