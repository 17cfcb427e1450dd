"""Seats of polled channels: their sessions (shared by every process) and their sign-in.

``SqlSessions`` is the ``channels.base.SessionStore`` every worker and API process uses, so a
callout from one worker and the long poll on another share the seat's latest guid.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from channels.base import SeatLogin
from core.secrets import unseal
from store.db import now_ms, session_scope
from store.lines import find_line
from store.models import CallRecordRow, ChannelSession


class SqlSessions:
    """The ``SessionStore`` of every process, and (given the key that unseals seat
    passwords) its ``SeatLogins``."""

    def __init__(self, engine: Engine, secret_key: str = "") -> None:
        self._engine, self._secret_key = engine, secret_key

    async def seat_login(self, channel: str, seat: str, phonenum: str) -> SeatLogin:
        return await asyncio.to_thread(self._seat_login, channel, seat, phonenum)

    def _seat_login(self, channel: str, seat: str, phonenum: str) -> SeatLogin:
        with session_scope(self._engine) as session:
            return seat_login(session, channel, seat, phonenum, self._secret_key)

    async def load(self, channel: str, key: str) -> str | None:
        return await asyncio.to_thread(self._load, channel, key)

    async def save(self, channel: str, key: str, value: str) -> None:
        await asyncio.to_thread(self._save, channel, key, value)

    def _load(self, channel: str, key: str) -> str | None:
        with session_scope(self._engine) as session:
            row = session.get(ChannelSession, (channel, key))
            return None if row is None else row.value

    def _save(self, channel: str, key: str, value: str) -> None:
        with session_scope(self._engine) as session:
            row = session.get(ChannelSession, (channel, key))
            if row is None:
                session.add(ChannelSession(channel=channel, key=key, value=value, updated=now_ms()))
            else:
                row.value, row.updated = value, now_ms()


def seat_login(
    session: Session, channel: str, seat: str, phonenum: str, secret_key: str
) -> SeatLogin:
    """How ``seat`` signs in: its own sealed password, or "" for the channel's default."""
    line = find_line(session, channel, seat)
    sealed = None if line is None else line.secret
    password = "" if sealed is None else unseal(sealed, secret_key)
    return SeatLogin(seat=seat, password=password, phonenum=phonenum)


def seat_call(session: Session, channel: str, seat: str) -> str | None:
    """The call an event without a call id belongs to: the one holding the seat's line now,
    else the seat's latest call (its line freed at close while its last events, a
    duplicate or a late one, were still on their way)."""
    line = find_line(session, channel, seat)
    if line is None:
        return None
    if line.lease_call_id is not None:
        return line.lease_call_id
    latest = session.exec(
        select(CallRecordRow.cc_call_id)
        .where(CallRecordRow.tenant == line.tenant, CallRecordRow.agent == seat,
               CallRecordRow.channel == channel)
        .order_by(col(CallRecordRow.created).desc())
        .limit(1)
    ).first()  # fmt: skip
    return latest


def call_of_vendor_id(session: Session, channel: str, vendor_call_id: str) -> str | None:
    """CC's call id of a vendor call (its line may already be free)."""
    row = session.exec(
        select(CallRecordRow.cc_call_id).where(
            CallRecordRow.channel == channel, CallRecordRow.call_id == vendor_call_id
        )
    ).first()
    return row
