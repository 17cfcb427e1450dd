"""The baseline of ``bench/webhooks.py``: a bare FastAPI endpoint doing one insert per request.

    BENCH_INGEST_DB=sqlite:///… uvicorn bench.bare_ingest:create_app --factory

``POST /ingest`` stores the request body as one row (one transaction) off the event loop, as
CC's webhook stores its inbox row, and answers as e9 expects. The engine is CC's own
``store.db.make_engine``: SQLite gets the same pragmas (WAL, busy_timeout), PostgreSQL the
same pool. The bench creates the table (``create_table``) before it starts the server.
"""

from __future__ import annotations

import asyncio
import os

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from store.db import make_engine, now_ms

DB_ENV = "BENCH_INGEST_DB"
metadata = sa.MetaData()
EVENTS = sa.Table(
    "bare_event",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("received", sa.BigInteger(), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
)


def create_table(url: str) -> None:
    engine = make_engine(url)
    metadata.create_all(engine)
    engine.dispose()


def count_rows(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = int(conn.execute(sa.select(sa.func.count()).select_from(EVENTS)).scalar_one())
    engine.dispose()
    return rows


def create_app() -> FastAPI:
    engine = make_engine(os.environ[DB_ENV])
    app = FastAPI()

    def insert(body: bytes) -> None:
        with engine.begin() as conn:
            conn.execute(EVENTS.insert().values(received=now_ms(), body=body.decode()))

    @app.post("/ingest")
    async def ingest(request: Request) -> JSONResponse:
        await asyncio.to_thread(insert, await request.body())
        return JSONResponse({"statusCode": "000000"})

    return app
