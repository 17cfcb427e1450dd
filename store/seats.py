"""Seats of polled channels: their sessions (shared by every process) and their sign-in.

``SqlSessions`` is the ``channels.protocols.SessionStore`` every worker and API process uses, so a
callout from one worker and the long poll on another share the seat's latest guid.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import Session, col, select

from channels.events import SeatLogin
from core.secrets import unseal
from store.db import now_ms, session_scope
from store.lines import find_line
from store.models import CallRecordRow, ChannelSession

log = logging.getLogger("cc.store.seats")


class SqlSessions:
    """The ``SessionStore`` of every process, and (given the key that unseals seat
    passwords) its ``SeatLogins``.

    While the store is down a process goes on with what it last read or wrote of each key
    (the newest ``KNOWN_MAX``) and of each seat's login, and writes what it could not back
    once the store answers again: a seat signed in or polled during a database outage keeps
    its session.
    """

    KNOWN_MAX = 10_000

    def __init__(self, engine: Engine, secret_key: str = "") -> None:
        self._engine, self._secret_key = engine, secret_key
        self._known: OrderedDict[tuple[str, str], str | None] = OrderedDict()
        self._unsaved: dict[tuple[str, str], str] = {}
        self._logins: dict[tuple[str, str], SeatLogin] = {}  # one per seat this process used
        self._lock = threading.Lock()

    async def load(self, channel: str, key: str) -> str | None:
        return await asyncio.to_thread(self._load_or_known, channel, key)

    async def save(self, channel: str, key: str, value: str) -> None:
        await asyncio.to_thread(self._save_or_keep, channel, key, value)

    async def seat_login(self, channel: str, seat: str, phonenum: str) -> SeatLogin:
        return await asyncio.to_thread(self._seat_login, channel, seat, phonenum)

    def _seat_login(self, channel: str, seat: str, phonenum: str) -> SeatLogin:
        """How the seat signs in; while the store is down, as this process last read it."""
        try:
            with session_scope(self._engine) as session:
                login = seat_login(session, channel, seat, phonenum, self._secret_key)
        except (OperationalError, InterfaceError):
            with self._lock:
                known = self._logins.get((channel, seat))
            if known is None:
                raise
            return known.model_copy(update={"phonenum": phonenum})
        with self._lock:
            self._logins[(channel, seat)] = login
        return login

    def _load_or_known(self, channel: str, key: str) -> str | None:
        try:
            self._write_back()
            value = self._load(channel, key)
        except (OperationalError, InterfaceError):
            with self._lock:
                if (channel, key) in self._known:
                    return self._known[(channel, key)]
            raise
        self._remember(channel, key, value)
        return value

    def _save_or_keep(self, channel: str, key: str, value: str) -> None:
        self._remember(channel, key, value)
        try:
            self._write_back()
            self._save(channel, key, value)
        except (OperationalError, InterfaceError) as exc:
            with self._lock:
                self._unsaved[(channel, key)] = value
            log.warning(
                "session kept here until the store is back channel=%s key=%s: %s",
                channel,
                key.split(":", 1)[0],
                exc.__class__.__name__,
            )

    def _remember(self, channel: str, key: str, value: str | None) -> None:
        with self._lock:
            self._known[(channel, key)] = value
            self._known.move_to_end((channel, key))
            while len(self._known) > self.KNOWN_MAX:
                self._known.popitem(last=False)

    def _write_back(self) -> None:
        """What could not be written while the store was down, now (raises while it is)."""
        with self._lock:
            unsaved = dict(self._unsaved)
        for (channel, key), value in unsaved.items():
            self._save(channel, key, value)
            with self._lock:
                if self._unsaved.get((channel, key)) == value:
                    del self._unsaved[(channel, key)]

    def _load(self, channel: str, key: str) -> str | None:
        with session_scope(self._engine) as session:
            row = session.get(ChannelSession, (channel, key))
            return None if row is None else row.value

    def _save(self, channel: str, key: str, value: str) -> None:
        with session_scope(self._engine) as session:
            put_session(session, channel, key, value)


def put_session(session: Session, channel: str, key: str, value: str) -> None:
    """Write one session value in the caller's transaction."""
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
        .where(
            CallRecordRow.tenant == line.tenant,
            CallRecordRow.agent == seat,
            CallRecordRow.channel == channel,
        )
        .order_by(col(CallRecordRow.created).desc())
        .limit(1)
    ).first()
    return latest


def call_of_vendor_id(session: Session, channel: str, vendor_call_id: str) -> str | None:
    """CC's call id of a vendor call (its line may already be free)."""
    row = session.exec(
        select(CallRecordRow.cc_call_id).where(
            CallRecordRow.channel == channel, CallRecordRow.vendor_call_id == vendor_call_id
        )
    ).first()
    return row
