"""Extensions in the store (issue 13), on SQLite, PostgreSQL and MariaDB: the lookups inbound
intake routes by, one owner per 400 number, pages by id, tenant scope."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from store import extensions
from store.db import now_ms, session_scope
from store.models import Extension
from store.tenants import ensure_tenant

MAIN, OTHER_MAIN = "+864008001234", "+864006001234"


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    with session_scope(db_engine) as s:
        ensure_tenant(s, "t1")
        ensure_tenant(s, "t2")
    return db_engine


def put(engine: Engine, tenant: str, main_num: str, ext_num: str, agent: str = "a1") -> Extension:
    with session_scope(engine) as s:
        return extensions.put_extension(s, tenant, main_num, ext_num, "e9", agent, "+8613800000011")


def test_find_extension_and_main_num_known_route_across_tenants(engine: Engine) -> None:
    put(engine, "t1", MAIN, "12", agent="+8613800000012")
    put(engine, "t2", OTHER_MAIN, "12", agent="+8613800000099")
    with session_scope(engine) as s:
        found = extensions.find_extension(s, MAIN, "12")
        assert found is not None
        assert (found.tenant, found.channel, found.agent) == ("t1", "e9", "+8613800000012")
        other = extensions.find_extension(s, OTHER_MAIN, "12")
        assert other is not None and other.tenant == "t2"
        assert extensions.find_extension(s, MAIN, "13") is None
        assert extensions.find_extension(s, MAIN, "1") is None  # a prefix is not the extension
        assert extensions.main_num_known(s, MAIN) == "t1"
        assert extensions.main_num_known(s, OTHER_MAIN) == "t2"
        assert extensions.main_num_known(s, "+864009999999") is None
    with session_scope(engine) as s:
        found = extensions.find_extension(s, MAIN, "12")
        assert found is not None
        extensions.delete_extension(s, found)
    with session_scope(engine) as s:
        assert extensions.find_extension(s, MAIN, "12") is None
        assert extensions.main_num_known(s, MAIN) is None


def test_put_moves_an_extension_of_the_same_tenant(engine: Engine) -> None:
    first = put(engine, "t1", MAIN, "7", agent="a1")
    moved = put(engine, "t1", MAIN, "7", agent="a2")
    assert moved.id == first.id and moved.agent == "a2" and moved.updated >= first.updated
    with session_scope(engine) as s:
        assert extensions.get_extension(s, "t1", MAIN, "7") is not None
        assert extensions.get_extension(s, "t2", MAIN, "7") is None  # another tenant's: none
        assert len(extensions.list_extensions(s, "t1", None, 0, 50)) == 1


def test_a_main_number_belongs_to_one_tenant(engine: Engine) -> None:
    put(engine, "t1", MAIN, "7")
    for ext_num in ("7", "8"):
        with pytest.raises(extensions.ExtensionTaken), session_scope(engine) as s:
            extensions.put_extension(s, "t2", MAIN, ext_num, "e9", "b1", "+8613800000012")
    with session_scope(engine) as s:
        found = extensions.find_extension(s, MAIN, "7")
        assert found is not None and (found.tenant, found.agent) == ("t1", "a1")
        assert extensions.find_extension(s, MAIN, "8") is None


def test_the_database_keeps_a_number_and_extension_unique(engine: Engine) -> None:
    put(engine, "t1", MAIN, "7")
    row = Extension(tenant="t2", main_num=MAIN, ext_num="7", channel="hw", agent="10001",
                    updated=now_ms())  # fmt: skip
    with pytest.raises(IntegrityError), session_scope(engine) as s:
        s.add(row)


def test_list_pages_by_id_per_tenant_and_main_number(engine: Engine) -> None:
    for i in range(7):
        put(engine, "t1", MAIN if i % 2 else OTHER_MAIN, str(100 + i))
    put(engine, "t2", "+864001110000", "1")
    with session_scope(engine) as s:
        pages, after = [], 0
        while page := extensions.list_extensions(s, "t1", None, after, 3):
            pages.append([e.ext_num for e in page])
            after = page[-1].id or 0
        of_main = extensions.list_extensions(s, "t1", MAIN, 0, 50)
        theirs = extensions.list_extensions(s, "t2", None, 0, 50)
    assert pages == [["100", "101", "102"], ["103", "104", "105"], ["106"]]
    assert [e.ext_num for e in of_main] == ["101", "103", "105"]
    assert [(e.tenant, e.ext_num) for e in theirs] == [("t2", "1")]
