"""What CallWorkflow's parts (``placing.py``, ``following.py``, ``closing.py``) use of the
workflow that holds them: its state, declared in ``CallWorkflow.__init__``, and the steps only
the workflow itself has. The parts subclass it for type checking only (``CallPart``): mypy
checks every use they make of the workflow, and that CallWorkflow provides all of it
(``workflows/call.py``). At run time they are plain classes: no stub to fall back on, no
dependence on the order of CallWorkflow's bases.

(An abstract class rather than a Protocol: mypy takes an attribute a Protocol's explicit
subclass assigns as a new one of its own, losing the declared type.)"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from callflow.record import CallRecord
    from channels.events import CallEvent
    from contracts.call import Attempt, CallInput, LineLease, NextTry
    from core.types import CloseType


class CallHost(ABC):
    _inp: CallInput
    record: CallRecord
    attempts: list[Attempt]
    _line: LineLease | None  # the lease held now; None once released
    _seat: LineLease | None  # the seat claimed for the call (a polled channel's line)
    _dirty: bool  # the record changed since its last save
    _events_seen: int
    _last_heard_ms: int  # the vendor's last word (or the placement)
    _hangup_asked_ms: int | None
    _placed_ms: int  # when the vendor took the call
    _place_from_ms: int  # when placing began: the placement deadline counts from it
    _wake: bool  # a handler changed what the follow loop waits for
    _lean: bool  # the call's shape (steps.lean), for its whole life
    _timer: asyncio.Task[None] | None  # a lean call's one follow timer
    _timer_due: int
    _quiet_checks: int  # reconciliations in a row that brought nothing new
    _strays: list[tuple[str, str]]  # (channel, vendor call id) to hang up
    _strays_hung_up: set[tuple[str, str]]
    _series_cancelled: bool  # the app hung up: no further try of the series
    _next_try: NextTry | None  # the series' next try, once made

    @property
    @abstractmethod
    def _closed(self) -> bool: ...

    @abstractmethod
    def vendor_event(self, event: CallEvent) -> None:
        """Fold one vendor event into the record (the workflow's signal)."""
        ...

    @abstractmethod
    def _now_ms(self) -> int:
        """The workflow's clock, in epoch ms."""
        ...

    @abstractmethod
    def _close_by_cc(self, close_type: CloseType, reason: str, at: int | None = None) -> None: ...

    @abstractmethod
    async def _release_line(self) -> None: ...

    @abstractmethod
    async def _save(self) -> None: ...

    @abstractmethod
    def _note_max_duration_passed(self) -> None: ...

    @abstractmethod
    async def _reconcile(self) -> None: ...


# What the parts subclass: the host for mypy, a plain object at run time (no stubs).
if TYPE_CHECKING:
    CallPart = CallHost
else:
    CallPart = object
