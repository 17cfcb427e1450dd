"""What every vendor simulator shares: faults, timing, the log, webhook delivery, the tone,
and its calls (``SimulatedCall``, run by a ``CallSimulator``).

Elsewhere: the control API (``/_sim/...``) and the app that mounts it beside a vendor's
routes, in ``simulators/control.py``; the customer who calls a 400 number (``POST
/_sim/inbound``), in ``simulators/inbound.py``.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import random
import struct
import time
import wave
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Generic, Literal, TypeVar

import httpx
from fastapi import Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from channels.registry import Settings
from core.aio import wait_set
from core.types import Direction
from simulators import scenario
from simulators.inbound import BadAnswer
from simulators.scenario import Beat, Timing

log = logging.getLogger("cc.sim")

# ``timeout_after_accept``: the vendor places the call for real (events flow) but sits on its
# answer longer than any client waits, so the client cannot know the call was placed.
PlaceFault = Literal[
    "http_500", "timeout", "malformed", "rate_limit", "auth_reject", "timeout_after_accept"
]
RETRY_SCHEDULE_S = (1.0, 5.0, 30.0)
DELIVERY_TIMEOUT_S = 3.0
HOLD_S = 30.0  # how long a held answer waits: longer than any sane client


class DeliveryFaults(BaseModel):
    drop: float = Field(default=0.0, ge=0, le=1)
    duplicate: float = Field(default=0.0, ge=0, le=1)
    reorder: bool = False
    delay_ms: int = Field(default=0, ge=0)


class Faults(BaseModel):
    place_call: PlaceFault | None = None
    delivery: DeliveryFaults = DeliveryFaults()
    # CC's extension for polled vendors: how the event-poll endpoint misbehaves.
    poll: Literal["http_500", "timeout"] | None = None
    seed: int | None = None


async def transport_fault(fault: str | None) -> Response | None:
    """The vendor-neutral faults (the vendor's own error bodies are each simulator's)."""
    if fault == "http_500":
        return JSONResponse({"error": "internal error"}, status_code=500)
    if fault == "timeout":
        await asyncio.sleep(30)  # longer than any sane client waits
        return JSONResponse({"error": "internal error"}, status_code=500)
    if fault == "malformed":
        return Response("<html>gateway error", media_type="text/html")
    if fault == "rate_limit":
        return JSONResponse(
            {"error": "too many requests"}, status_code=429, headers={"Retry-After": "1"}
        )
    return None


@dataclass
class TokenBucket:
    """A vendor's calls-per-second limit as many count it: ``capacity`` requests at once
    after a quiet spell, refilled at ``rate`` a second."""

    rate: float
    capacity: float
    tokens: float = field(init=False)
    at: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens, self.at = self.capacity, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def as_int(value: object, default: int = 0) -> int:
    """A number from a request field, or ``default``: a bad field never kills a call's task."""
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError, OverflowError):
        return default


def text_or_none(value: object) -> str | None:
    """A request field as text; None when it is missing or empty."""
    return str(value) if value not in (None, "") else None


class SimState:
    """Mutable simulator state shared by the vendor routes and the control API."""

    def __init__(self, retry_scale: float = 1.0) -> None:
        self.faults = Faults()
        self.timing = Timing()
        self.rng = random.Random()
        self.requests: deque[dict[str, Any]] = deque(maxlen=5000)
        self.events: deque[dict[str, Any]] = deque(maxlen=5000)
        self.retry_scale = retry_scale
        self.tasks: set[asyncio.Task[None]] = set()
        self.http: httpx.AsyncClient | None = None
        self._held: dict[str, list[tuple[str, bytes, Callable[[], dict[str, str]]]]] = {}
        self._release = asyncio.Event()

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background. Every background task goes through here: the loop
        keeps only a weak reference to a task, so one nobody holds can vanish mid-call (a
        call that never hangs up); ``tasks`` holds them, and a failure is logged, not lost."""
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("simulator task %s failed", task.get_name(), exc_info=exc)

    async def hold(self, seconds: float = HOLD_S) -> None:
        """Sit on an answer for ``seconds``; new faults (``PUT /_sim/faults``) or shutdown
        release it sooner."""
        await wait_set(self._release, seconds)

    def release_held(self) -> None:
        self._release.set()
        self._release = asyncio.Event()

    async def close(self) -> None:
        self.release_held()
        for task in list(self.tasks):
            task.cancel()
        if self.http is not None:
            await self.http.aclose()

    # -- webhook delivery ----------------------------------------------------------------
    def send(
        self, call_key: str, url: str, body: bytes, headers: Callable[[], dict[str, str]]
    ) -> None:
        """Deliver one event (in the background), applying the delivery faults.

        ``headers`` is called per attempt, so each retry is signed afresh as vendors do.
        """
        faults = self.faults.delivery
        if self.rng.random() < faults.drop:
            self._log_event(url, body, "dropped", 0)
            return
        copies = 2 if self.rng.random() < faults.duplicate else 1
        if faults.reorder:
            self._held.setdefault(call_key, []).extend([(url, body, headers)] * copies)
            return
        for _ in range(copies):
            self.spawn(self._deliver(url, body, headers))

    def _log_event(
        self, url: str, body: bytes, status: int | str, attempt: int, answer: str | None = None
    ) -> None:
        entry = {
            "at": now_ms(),
            "url": url,
            "body": body.decode(),
            "status": status,
            "attempt": attempt,
        }
        if answer is not None:  # an inbound request: what CC answered
            entry["answer"] = answer
        self.events.append(entry)

    def flush(self, call_key: str) -> None:
        """At a call's end, release its held-back events in shuffled order (reorder fault)."""
        held = self._held.pop(call_key, [])
        self.rng.shuffle(held)
        for url, body, headers in held:
            self.spawn(self._deliver(url, body, headers))

    async def _deliver(self, url: str, body: bytes, headers: Callable[[], dict[str, str]]) -> None:
        assert self.http is not None
        if self.faults.delivery.delay_ms:
            await asyncio.sleep(self.faults.delivery.delay_ms / 1000)
        waits = (0.0, *RETRY_SCHEDULE_S)
        for attempt, wait in enumerate(waits, start=1):
            await asyncio.sleep(wait * self.retry_scale)
            status: int | str
            try:
                answer = await self.http.post(
                    url, content=body, headers=headers(), timeout=DELIVERY_TIMEOUT_S
                )
                status = answer.status_code
            except httpx.HTTPError as exc:
                status = exc.__class__.__name__
            self._log_event(url, body, status, attempt)
            if isinstance(status, int) and 200 <= status < 300:
                return
        log.warning("gave up delivering an event to %s", url)

    async def ask_cc(
        self, url: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> httpx.Response:
        """Send a customer's inbound request to CC once (a vendor waits for its answer, it
        does not retry) and return CC's 200 answer; ``BadAnswer`` for anything else."""
        assert self.http is not None
        try:
            answer = await self.http.post(url, content=body, headers=headers, timeout=timeout_s)
        except httpx.HTTPError as exc:
            self._log_event(url, body, exc.__class__.__name__, 1)
            raise BadAnswer(f"no answer from {url}: {exc.__class__.__name__}") from exc
        self._log_event(url, body, answer.status_code, 1, answer.text)
        if answer.status_code != 200:
            raise BadAnswer(f"{url} answered {answer.status_code}: {answer.text[:200]}")
        return answer


@lru_cache(maxsize=1)
def tone_wav(seconds: float = 1.0, rate: int = 8000, hz: float = 440.0) -> bytes:
    """A short real recording: a 440 Hz tone, 8 kHz mono 16-bit PCM WAV."""
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * hz * i / rate)))
        for i in range(int(seconds * rate))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


@dataclass(kw_only=True)
class SimulatedCall(ABC):
    """What every simulated call has, whatever the vendor calls its fields."""

    sid: str  # the vendor's call id
    created: int  # epoch ms
    bridged_at: int | None = None
    ended_at: int | None = None
    cancel: asyncio.Event = field(default_factory=asyncio.Event)  # set: hang up now
    direction: Direction = Direction.OUT  # IN: a customer called a 400 number (leg A)
    # The number each leg's phone was shown (None: nothing was presented, as to a customer
    # who dialled the 400 number): what tests check the agent never sees.
    shown_to_a: str | None = None
    shown_to_b: str | None = None

    @abstractmethod
    def view(self) -> dict[str, Any]:
        """The call as the vendor's API shows it."""


CallT = TypeVar("CallT", bound=SimulatedCall)


class CallSimulator(ABC, Generic[CallT]):
    """A vendor simulator that keeps its calls by sid and runs each one in the background."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sim = SimState(retry_scale=settings.sim_retry_scale)
        self.calls: dict[str, CallT] = {}

    @abstractmethod
    async def run_call(self, call: CallT) -> None:
        """Play the call's timeline to its hang-up (see ``play``)."""

    async def start(self, call: CallT, fault: PlaceFault | None) -> None:
        """Keep ``call`` and run it; with ``timeout_after_accept`` the answer is then held:
        the call runs, the client never hears of it."""
        self.calls[call.sid] = call
        self.sim.spawn(self.run_call(call))
        if fault == "timeout_after_accept":
            await self.sim.hold()

    async def play(
        self, call: CallT, beats: list[Beat], emit: Callable[[Beat], Awaitable[None]]
    ) -> None:
        """Walk ``beats`` (see ``scenario.play``); the events the reorder fault held back go
        out once the call is over."""
        try:
            await scenario.play(beats, emit, call.cancel)
        finally:
            self.sim.flush(call.sid)

    def calls_view(self) -> list[dict[str, Any]]:
        """``/_sim/calls``: each call as the vendor shows it, plus the simulator's own moments
        (epoch ms) of its bridge and end, which latency benchmarks compare with CC's record,
        its direction and what each leg's phone was shown."""
        own = ("bridged_at", "ended_at", "direction", "shown_to_a", "shown_to_b")
        return [{**{m: getattr(c, m) for m in own}, **c.view()} for c in self.calls.values()]
