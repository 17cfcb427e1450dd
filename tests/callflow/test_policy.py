"""Callback policies as pure functions (callflow/policy.py): calling hours across zones, DST
changes and weeks; when a series' next try is due; what a policy may say."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from callflow.policy import CallingWindow, RetryPolicy, first_try_at, next_try_at
from core.types import CloseType


def ms(iso: str) -> int:
    """Epoch ms of an ISO time with its offset (``Z`` for UTC)."""
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def window(tz: str, days: list[int], opens: str = "09:00", closes: str = "20:00") -> CallingWindow:
    return CallingWindow.model_validate({"tz": tz, "days": days, "from": opens, "to": closes})


EVERY_DAY = [1, 2, 3, 4, 5, 6, 7]
BEIJING = window("Asia/Shanghai", EVERY_DAY)


def test_a_call_at_21_00_in_beijing_waits_for_09_00_the_next_day() -> None:
    assert BEIJING.next_opening(ms("2026-12-07T21:00:00+08:00")) == ms("2026-12-08T09:00:00+08:00")


def test_a_moment_inside_the_window_is_its_own_opening_and_the_close_is_outside() -> None:
    inside = ms("2026-12-07T19:59:59+08:00")
    assert BEIJING.next_opening(inside) == inside and BEIJING.contains(inside)
    assert not BEIJING.contains(ms("2026-12-07T20:00:00+08:00"))  # "to" is not inside
    assert BEIJING.contains(ms("2026-12-07T09:00:00+08:00"))  # "from" is


def test_a_window_open_on_mondays_only_opens_next_week() -> None:
    mondays = window("Asia/Shanghai", [1])
    tuesday = ms("2026-12-08T10:00:00+08:00")  # 2026-12-08 is a Tuesday
    assert mondays.next_opening(tuesday) == ms("2026-12-14T09:00:00+08:00")
    after_close = ms("2026-12-14T20:30:00+08:00")  # Monday, closed for the day
    assert mondays.next_opening(after_close) == ms("2026-12-21T09:00:00+08:00")


def test_the_spring_dst_change_moves_the_opening_with_the_wall_clock() -> None:
    new_york = window("America/New_York", EVERY_DAY, "09:00", "17:00")
    saturday_evening = ms("2026-03-07T18:00:00-05:00")  # EST; clocks go forward on the 8th
    # 09:00 EDT is 13:00 UTC: one hour earlier in UTC than the day before.
    assert new_york.next_opening(saturday_evening) == ms("2026-03-08T13:00:00Z")
    assert new_york.next_opening(ms("2026-03-07T00:00:00Z")) == ms("2026-03-07T14:00:00Z")


def test_an_opening_in_the_hour_spring_skips_comes_when_its_clock_time_would_have() -> None:
    night = window("America/New_York", EVERY_DAY, "02:30", "05:00")
    # 02:30 does not exist on 2026-03-08: read with the offset before the change (EST).
    assert night.next_opening(ms("2026-03-08T06:00:00Z")) == ms("2026-03-08T07:30:00Z")


def test_an_opening_in_the_hour_autumn_repeats_is_its_first_occurrence() -> None:
    berlin = window("Europe/Berlin", EVERY_DAY, "02:30", "04:00")
    # 2026-10-25: 02:00–03:00 happens twice in Berlin (CEST, then CET).
    assert berlin.next_opening(ms("2026-10-25T00:00:00Z")) == ms("2026-10-25T02:30:00+02:00")


def test_midnight_closes_a_window_at_the_end_of_its_day() -> None:
    evening = window("Asia/Shanghai", [1], "18:00", "24:00")
    monday_late = ms("2026-12-07T23:59:00+08:00")
    assert evening.contains(monday_late)
    assert evening.next_opening(ms("2026-12-08T00:00:00+08:00")) == ms("2026-12-14T18:00:00+08:00")


@given(
    at=st.integers(min_value=ms("2026-01-01T00:00:00Z"), max_value=ms("2028-01-01T00:00:00Z")),
    tz=st.sampled_from(["Asia/Shanghai", "America/New_York", "Europe/Berlin", "UTC"]),
    days=st.sets(st.integers(1, 7), min_size=1).map(sorted),
)
def test_the_opening_is_inside_never_earlier_and_a_moment_inside_waits_for_nothing(
    at: int, tz: str, days: list[int]
) -> None:
    hours = window(tz, days, "09:00", "17:30")
    opening = hours.next_opening(at)
    assert opening >= at and hours.contains(opening)
    assert opening - at < 8 * 86_400_000
    local = datetime.fromtimestamp(opening / 1000, UTC).astimezone(ZoneInfo(tz))
    assert local.isoweekday() in days


RETRY = RetryPolicy(on=[CloseType.B_UNREACHABLE], max_attempts=3, interval_s=60)


def test_a_customer_who_does_not_answer_gets_three_tries_a_minute_apart() -> None:
    first_end = ms("2026-12-07T10:00:05+08:00")
    second = next_try_at(RETRY, None, 1, first_end, CloseType.B_UNREACHABLE)
    assert second == first_end + 60_000
    third = next_try_at(RETRY, None, 2, second + 7_000, CloseType.B_UNREACHABLE)
    assert third == second + 67_000
    assert next_try_at(RETRY, None, 3, third + 7_000, CloseType.B_UNREACHABLE) is None


def test_any_other_outcome_ends_the_series() -> None:
    for other in (CloseType.NORMAL, CloseType.B_BUSY, CloseType.CHANNEL_SERVER_ERROR):
        assert next_try_at(RETRY, None, 1, ms("2026-12-07T10:00:00Z"), other) is None
    assert next_try_at(None, BEIJING, 1, 0, CloseType.B_UNREACHABLE) is None


def test_a_retry_due_after_hours_waits_for_the_window() -> None:
    hourly = RetryPolicy(on=[CloseType.B_BUSY], max_attempts=2, interval_s=3600)
    ended = ms("2026-12-07T19:30:00+08:00")
    due = next_try_at(hourly, BEIJING, 1, ended, CloseType.B_BUSY)
    assert due == ms("2026-12-08T09:00:00+08:00")


def test_a_scheduled_first_try_waits_for_not_before_and_the_window() -> None:
    asked = ms("2026-12-07T08:00:00+08:00")
    assert first_try_at(asked, None, None) == asked
    assert first_try_at(asked, asked + 60_000, None) == asked + 60_000
    assert first_try_at(asked, None, BEIJING) == ms("2026-12-07T09:00:00+08:00")
    assert first_try_at(asked, asked - 60_000, None) == asked  # a past not_before: now


@pytest.mark.parametrize(
    "body",
    [
        {"tz": "Mars/Olympus", "days": [1], "from": "09:00", "to": "20:00"},
        {"tz": "UTC", "days": [], "from": "09:00", "to": "20:00"},
        {"tz": "UTC", "days": [0], "from": "09:00", "to": "20:00"},
        {"tz": "UTC", "days": [1, 1], "from": "09:00", "to": "20:00"},
        {"tz": "UTC", "days": [1], "from": "20:00", "to": "09:00"},
        {"tz": "UTC", "days": [1], "from": "9:00", "to": "20:00"},
        {"tz": "UTC", "days": [1], "from": "09:00", "to": "24:30"},
        {"tz": "UTC", "days": [1], "from": "09:00", "to": "20:00", "extra": 1},
    ],
)
def test_a_window_that_cannot_be_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CallingWindow.model_validate(body)


@pytest.mark.parametrize(
    "body",
    [
        {"on": [], "max_attempts": 3, "interval_s": 60},
        {"on": [2], "max_attempts": 11, "interval_s": 60},
        {"on": [2], "max_attempts": 0, "interval_s": 60},
        {"on": [2], "max_attempts": 3, "interval_s": 59},
        {"on": [2], "max_attempts": 3, "interval_s": 86_401},
        {"on": [9], "max_attempts": 3, "interval_s": 60},
    ],
)
def test_a_retry_policy_outside_the_contracts_bounds_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RetryPolicy.model_validate(body)


def test_a_window_reads_and_writes_the_contracts_words() -> None:
    body = {"tz": "Asia/Shanghai", "days": [5, 1], "from": "09:00", "to": "20:00"}
    read = CallingWindow.model_validate(body)
    assert read.model_dump(by_alias=True) == {**body, "days": [1, 5]}
    assert CallingWindow.model_validate_json(read.model_dump_json(by_alias=True)) == read


def test_zones_are_known_without_the_systems_tz_database() -> None:
    """Slim images carry no /usr/share/zoneinfo: the ``tzdata`` package answers then."""
    code = (
        "from callflow.policy import CallingWindow; "
        "CallingWindow.model_validate("
        "{'tz': 'Asia/Shanghai', 'days': [1], 'from': '09:00', 'to': '20:00'})"
    )
    env = {**os.environ, "PYTHONTZPATH": ""}  # no system tz database at all
    ran = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
