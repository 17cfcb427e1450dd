"""Requests to a CEC CC-Gateway on behalf of a seat (VENDORS.md, hw): each carries the seat's
newest session (``Guid`` and the sign-in's cookies) from the ``SessionStore`` every process
shares, saves back what the answer changed (``Set-GUID``, a cookie), and retries a stale guid
(``000-003``) once with the newest one. Only a CEC seat id is ever put in a path, and a
seat's guid goes only to its own gateway's recording URLs."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from channels.errors import (
    RecordingNotReady,
    RecordingUnavailable,
    SeatRefused,
    VendorRejected,
    VendorServerError,
)
from channels.helpers import path_segment
from channels.http import (
    RecordingSource,
    capped_recording,
    raise_for_recording,
    read_object,
    recording_deadline,
    send,
)
from channels.hw_events import ROOT
from channels.hw_session import NO_RECORDING, STALE_GUID, SeatSession, StaleGuid, raise_for
from channels.protocols import Recording, SessionStore
from core.egress import read_capped

log = logging.getLogger("cc.channels.hw")

NAME = "hw"
SEAT_ID = r"[0-9]{1,10}"  # CEC's agent (seat) ids: 1 to 10 digits
REFUSAL_BYTES = 64 * 1024  # a JSON answer to a recording request, at most


class SeatGateway:
    def __init__(
        self,
        http: httpx.AsyncClient,
        base: str,
        sessions: SessionStore,
        recordings: RecordingSource | None = None,
    ) -> None:
        self._http, self._base, self._sessions = http, base, sessions
        # A recording's caps: its size, and one deadline for the whole download.
        self._recordings = recordings or RecordingSource.strict(NAME, base)
        self.seat_id = SEAT_ID  # what a seat id must match to be sent at all

    async def call(
        self, seat: str, method: str, path: str, placing: bool = False, **request: Any
    ) -> tuple[httpx.Response, dict[str, Any]]:
        """One call with the seat's session; a stale guid (``000-003``) is retried once with
        the newest one (this answer's ``Set-GUID``, or another process'), then ``StaleGuid``."""
        what = f"hw {method} {path.replace(self.segment(seat), '{seat}')}"
        for _ in (1, 2):
            session = await self.load(seat)
            response = await send(
                self._http,
                method,
                ROOT + path,
                what=what,
                placing=placing,
                headers=session.headers(),
                **request,
            )
            await self.take(seat, session, response)
            answer = read_object(response, what)
            if str(answer.get("retcode")) != STALE_GUID:
                return response, answer
        raise StaleGuid(f"{what}: {STALE_GUID} with the newest guid")

    def segment(self, seat: str) -> str:
        """The seat as one segment of a gateway path. Only a CEC seat id is sent at all: any
        other (``a/../10001``) is refused here, before it could name another seat's resource,
        as the seat's own fault; and the segment is percent-encoded all the same."""
        if not re.fullmatch(self.seat_id, seat):
            raise SeatRefused("invalid-seat", "not a CC-Gateway seat id")
        return path_segment(seat)

    async def seat_of(self, vendor_call_id: str) -> str:
        seat = await self._sessions.load(NAME, f"call:{vendor_call_id}")
        if not seat:
            raise VendorRejected("unknown-call", "no seat is known to have placed this call")
        return seat

    async def load(self, seat: str) -> SeatSession:
        stored = await self._sessions.load(NAME, f"seat:{seat}")
        try:
            return SeatSession.model_validate_json(stored) if stored else SeatSession()
        except ValidationError:
            return SeatSession()

    async def take(self, seat: str, session: SeatSession, response: httpx.Response) -> None:
        """Save what an answer changed of the seat's session (a new guid, a cookie). Best
        effort: a guid not shared still works for the gateway's grace, and the next answer
        to a replaced guid carries the newest again; a placed call must not fail on it."""
        taken = session.taking(response)
        if taken == session:
            return
        try:
            await self.save(seat, taken)
        except Exception:  # noqa: BLE001 - see above
            log.warning("hw seat session not saved seat=%s", seat, exc_info=True)

    async def save(self, seat: str, session: SeatSession) -> None:
        await self._sessions.save(NAME, f"seat:{seat}", session.model_dump_json())

    @contextlib.asynccontextmanager
    async def open_recording(self, url: str) -> AsyncIterator[Recording]:
        """The seat's ``recordfile`` (built by the parser), with the seat's newest guid: an
        audio answer is the file, read within the recording caps (``RecordingSource``: at
        most ``max_bytes``, all of it within ``deadline_s``); a JSON one the gateway's
        refusal (``104-005`` not yet), read at most ``REFUSAL_BYTES``."""
        seat = self._recording_seat(url)
        caps = self._recordings
        async with recording_deadline(caps):
            for attempt in (1, 2):
                session = await self.load(seat)
                async with self._http.stream(
                    "GET", url, headers=session.headers(), follow_redirects=False
                ) as response:
                    raise_for_recording(response, NAME)
                    await self.take(seat, session, response)
                    content_type = response.headers.get("content-type", "audio/wav")
                    if "json" not in content_type:
                        recording = capped_recording(response, caps)
                        yield dataclasses.replace(recording, content_type=content_type)
                        return
                    body, whole = await read_capped(response, REFUSAL_BYTES)
                if not whole:
                    raise VendorServerError("hw recordfile: answer too large")
                answer = read_object(httpx.Response(200, content=body), "hw recordfile")
                code = str(answer.get("retcode", ""))
                if code == STALE_GUID and attempt == 1:
                    continue
                if code == NO_RECORDING:
                    raise RecordingNotReady("hw recording: not found (yet)")
                raise_for(answer, "hw recordfile")
                raise RecordingUnavailable("hw recording: answered without a file")

    def _recording_seat(self, url: str) -> str:
        """The seat of a recording URL of this gateway; the seat's guid goes nowhere else."""
        prefix = f"{self._base}{ROOT}/recordfile/"
        seat = urlsplit(url).path.rsplit("/", 1)[-1]
        if not url.startswith(prefix) or not seat.isdigit():
            raise RecordingUnavailable("hw recording: not a recording URL of this gateway")
        return seat
