"""What keeps one seat's long poll whole when what is around it fails: one poller per seat in
this process, and polled events that survive a store outage.

- **One poll in flight per seat.** The gateway refuses a second concurrent poll of a seat
  (``000-007``) and may hand an event to either. A poll activity Temporal retries while the
  earlier attempt still runs here (its heartbeat timed out while Temporal was down, say) waits
  for that attempt to end, heartbeating, and goes on from where it stopped: its parser
  context is newer than the heartbeat Temporal kept.
- **The parser's memory outlives the worker.** Which leg answered decides a failure's close
  type, and Temporal keeps a heartbeat's details only every so often: each answer's context
  is written to the store once its events are, and a retried attempt goes on from it.
- **Nothing polled is lost.** The gateway gives each event once. An answer the store cannot
  take (the database down) is kept, in order, stored before any later one, carried on the
  activity's heartbeat, in its result and to the seat's next poller in this process; the seat
  goes on being polled meanwhile (the poll is its keep-alive), up to ``MAX_UNSTORED``
  answers, then the gateway holds the rest. Storing twice is harmless: the inbox dedupes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from temporalio import activity

from channels.events import SeatContext
from contracts.seat import PollSeatInput, UnstoredPoll

MAX_UNSTORED = 200  # answers kept while the store is down; past it the gateway holds the rest
WAIT_BEAT_S = 5.0  # how often a poller waiting for the seat's earlier one heartbeats


@dataclass
class SeatProgress:
    """Where a seat's poll lineage stands: the parser's context, and what is not stored yet."""

    context: SeatContext
    unstored: list[UnstoredPoll] = field(default_factory=list)

    def details(self) -> tuple[Any, Any]:
        """As heartbeat details (JSON), read back by ``resumed``."""
        return (
            self.context.model_dump(mode="json"),
            [poll.model_dump(mode="json") for poll in self.unstored],
        )

    @classmethod
    def resumed(cls, details: Sequence[Any], inp: PollSeatInput) -> SeatProgress:
        """The input's, or a retried attempt's last heartbeat (newer)."""
        if not details:
            return cls(inp.context, list(inp.unstored))
        unstored = details[1] if len(details) > 1 else []
        return cls(
            SeatContext.model_validate(details[0]),
            [UnstoredPoll.model_validate(poll) for poll in unstored],
        )

    def keep(self, more: Sequence[UnstoredPoll]) -> None:
        """Add answers kept elsewhere ahead of this lineage's own (they were polled before)."""
        self.unstored = [*more, *(poll for poll in self.unstored if poll not in more)]


def lineage_of(info: activity.Info) -> str:
    """The poll activity's attempts share it (and no other activity's do)."""
    return f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"


class StoredContext(BaseModel):
    """A seat's parser context as last stored, and the poll activity it belongs to."""

    lineage: str
    context: SeatContext


@dataclass
class _Seat:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    lineage: str | None = None  # the last poller's
    attempt: int = 0
    progress: SeatProgress | None = None
    leftovers: list[UnstoredPoll] = field(default_factory=list)


class SeatPollers:
    """This process' pollers, one at a time per seat."""

    def __init__(self) -> None:
        self._seats: dict[tuple[str, str], _Seat] = {}

    @contextlib.asynccontextmanager
    async def turn(self, inp: PollSeatInput, progress: SeatProgress) -> AsyncIterator[SeatProgress]:
        """The seat's poll, once no earlier poller of it in this process still runs. Yields
        the progress to poll with (an earlier attempt's of this very activity, if newer) and
        leaves it, whatever happens, for the seat's next poller."""
        seat = self._seats.setdefault((inp.channel, inp.seat), _Seat())
        while True:
            try:
                async with asyncio.timeout(WAIT_BEAT_S):
                    await seat.lock.acquire()
                break
            except TimeoutError:
                activity.heartbeat(*progress.details())
        info = activity.info()
        this = lineage_of(info)
        try:
            retried = seat.lineage == this and seat.attempt < info.attempt
            if seat.progress is not None and retried:
                progress = SeatProgress(seat.progress.context, list(seat.progress.unstored))
            progress.keep(seat.leftovers)
            yield progress
        finally:
            seat.lineage, seat.attempt, seat.progress = this, info.attempt, progress
            seat.leftovers = list(progress.unstored)
            seat.lock.release()
