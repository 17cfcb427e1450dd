"""The Call Query (``GET /v1/calls`` and its CSV export): a tenant's calls, filtered, in
keyset pages.

Pages are newest first, ordered by (created DESC, id DESC): every filter has an index
(tenant, <filter>, created, id) and (tenant, created, id) serves the rest, so a page is one
index range scan with no sort. The keyset cursor is the last row's (created, id): a call
placed while a client pages sorts before its first page, so pages never shift, repeat or
skip a row."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from store.models import FILTERED_COLUMNS, CallRecordRow


@dataclass(frozen=True)
class CallFilter:
    """``GET /v1/calls`` filters, numbers already in E.164; None means "any"."""

    tenant: str
    state: str | None = None
    channel: str | None = None
    agent: str | None = None
    user: str | None = None
    caller: str | None = None
    called: str | None = None
    close_type: str | None = None
    direction: str | None = None  # out: callbacks, in: calls to a 400 number
    main_num: str | None = None
    ext_num: str | None = None
    since: int | None = None  # created >= since (epoch ms)
    until: int | None = None  # created < until (epoch ms)


@dataclass(frozen=True)
class Keyset:
    """Where a page ended: the last row's (created, id)."""

    created: int
    id: int


@dataclass(frozen=True)
class CallPage:
    rows: list[CallRecordRow]
    next: Keyset | None  # None: this was the last page


_EQUALITY_FILTERS = FILTERED_COLUMNS


def _conditions(flt: CallFilter, after: Keyset | None) -> list[ColumnElement[bool]]:
    created, row_id = col(CallRecordRow.created), col(CallRecordRow.id)
    conds: list[ColumnElement[bool]] = [col(CallRecordRow.tenant) == flt.tenant]
    for name in _EQUALITY_FILTERS:
        if (value := getattr(flt, name)) is not None:
            conds.append(getattr(CallRecordRow, name) == value)
    if flt.since is not None:
        conds.append(created >= flt.since)
    if flt.until is not None:
        conds.append(created < flt.until)
    if after is not None:
        # Spelled out rather than a row-value comparison: ``created <= x`` bounds the index
        # range on every database (MySQL does not range-scan on row constructors).
        conds.append(created <= after.created)
        conds.append(or_(created < after.created, row_id < after.id))
    return conds


def page_statement(
    flt: CallFilter, after: Keyset | None, limit: int
) -> SelectOfScalar[CallRecordRow]:
    """The SELECT for one page plus one row (which tells whether another page follows)."""
    return (
        select(CallRecordRow)
        .where(*_conditions(flt, after))
        .order_by(col(CallRecordRow.created).desc(), col(CallRecordRow.id).desc())
        .limit(limit + 1)
    )


def query_calls(
    session: Session, flt: CallFilter, after: Keyset | None = None, limit: int = 50
) -> CallPage:
    """One page of a tenant's calls, newest first, strictly after ``after``."""
    rows = list(session.exec(page_statement(flt, after, limit)).all())
    if len(rows) <= limit:
        return CallPage(rows, None)
    rows = rows[:limit]
    last = rows[-1]
    assert last.id is not None
    return CallPage(rows, Keyset(last.created, last.id))


def iter_calls(engine: Engine, flt: CallFilter, page_size: int = 500) -> Iterator[CallRecordRow]:
    """Every matching call, newest first, one short session per page (for streaming)."""
    after: Keyset | None = None
    while True:
        with Session(engine, expire_on_commit=False) as session:
            page = query_calls(session, flt, after, page_size)
        yield from page.rows
        if page.next is None:
            return
        after = page.next
