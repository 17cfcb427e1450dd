"""Callback policies (API.md, "Later, and again"): when a callback's next try is due, and
when calling hours let a try happen. Pure functions of the policy, the tz database and the
moments given: no clock, no I/O, so a workflow's timer can be set from them and a test can
walk a DST change or a week.

- ``RetryPolicy``: a try that ends with one of ``on``'s close types is tried again after
  ``interval_s``, up to ``max_attempts`` tries in all; any other outcome ends the series.
- ``CallingWindow``: tries happen only on ``days`` (ISO weekdays, 1 = Monday) between
  ``from`` and ``to`` local time in ``tz`` (an IANA zone); a try due outside waits for the
  next opening. Local times are what a wall clock there shows: a window opening in the hour
  a spring DST change skips opens when that hour's clock time would have come (``fold=0``,
  as ``zoneinfo`` reads it), and in the hour an autumn change repeats, at its first
  occurrence.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.types import CloseType

_CLOCK = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00")
DAY_MS = 86_400_000


class RetryPolicy(BaseModel):
    """``retry`` of ``POST /v1/calls`` (or a tenant's default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on: list[CloseType] = Field(min_length=1, description="close types that call for a retry")
    max_attempts: int = Field(ge=1, le=10, description="tries in all, the first included")
    interval_s: int = Field(ge=60, le=86_400, description="seconds from a try's end to the next")


class CallingWindow(BaseModel):
    """``window`` of ``POST /v1/calls`` (or a tenant's default)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    tz: str = Field(description="an IANA time zone, e.g. Asia/Shanghai", max_length=64)
    days: list[int] = Field(min_length=1, max_length=7, description="ISO weekdays, 1 = Monday")
    opens: str = Field(alias="from", description="local opening time, HH:MM")
    closes: str = Field(alias="to", description="local closing time, HH:MM (24:00: midnight)")

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, tz: str) -> str:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {tz!r} (IANA names, e.g. Asia/Shanghai)") from exc
        return tz

    @field_validator("days")
    @classmethod
    def _weekdays(cls, days: list[int]) -> list[int]:
        if any(not 1 <= day <= 7 for day in days) or len(set(days)) != len(days):
            raise ValueError("days are distinct ISO weekdays, 1 (Monday) to 7 (Sunday)")
        return sorted(days)

    @field_validator("opens", "closes")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.fullmatch(value):
            raise ValueError("a local time is HH:MM, 00:00 to 24:00")
        return value

    @model_validator(mode="after")
    def _opens_before_it_closes(self) -> CallingWindow:
        if self.opens >= self.closes:
            raise ValueError("the window's 'from' must come before its 'to' on the same day")
        return self

    def _moment(self, day: date, clock: str) -> datetime:
        hours, minutes = (int(part) for part in clock.split(":"))
        if hours == 24:  # midnight at the end of ``day``
            return datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(self.tz))
        return datetime.combine(day, time(hours, minutes), tzinfo=ZoneInfo(self.tz))

    def next_opening(self, at_ms: int) -> int:
        """The earliest moment at or after ``at_ms`` inside the window (epoch ms)."""
        local = datetime.fromtimestamp(at_ms / 1000, UTC).astimezone(ZoneInfo(self.tz))
        for ahead in range(8):  # today, and every day of the week after it
            day = local.date() + timedelta(days=ahead)
            if day.isoweekday() not in self.days:
                continue
            opens = _epoch_ms(self._moment(day, self.opens))
            closes = _epoch_ms(self._moment(day, self.closes))
            if at_ms < closes:
                return max(at_ms, opens)
        raise AssertionError("a window with a day opens within a week")  # pragma: no cover

    def contains(self, at_ms: int) -> bool:
        return self.next_opening(at_ms) == at_ms


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def first_try_at(requested_ms: int, not_before: int | None, window: CallingWindow | None) -> int:
    """When a callback's first try may be placed: not before ``not_before``, inside the
    window."""
    due = max(requested_ms, not_before or 0)
    return due if window is None else window.next_opening(due)


def next_try_at(
    retry: RetryPolicy | None,
    window: CallingWindow | None,
    tried: int,
    closed_ms: int,
    close_type: CloseType,
) -> int | None:
    """When the series' next try is due after try number ``tried`` ended at ``closed_ms``
    with ``close_type``; None when the series is over (no policy, another outcome, or
    ``max_attempts`` tries made)."""
    if retry is None or close_type not in retry.on or tried >= retry.max_attempts:
        return None
    due = closed_ms + retry.interval_s * 1000
    return due if window is None else window.next_opening(due)
