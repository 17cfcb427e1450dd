"""The jy simulator's calls-per-second limit: a token bucket (a second's worth at once after a
quiet spell, then ``rate`` a second), on a clock the test moves."""

from __future__ import annotations

import pytest

from simulators import common
from simulators.common import TokenBucket


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(common.time, "monotonic", lambda: now[0])
    return now


def takes(bucket: TokenBucket, n: int) -> list[bool]:
    return [bucket.take() for _ in range(n)]


def test_a_second_s_worth_at_once_then_the_rate(clock: list[float]) -> None:
    bucket = TokenBucket(rate=5, capacity=5)
    assert takes(bucket, 6) == [True] * 5 + [False]
    clock[0] += 0.2  # one more a fifth of a second later
    assert takes(bucket, 2) == [True, False]
    clock[0] += 0.8  # four more
    assert takes(bucket, 5) == [True] * 4 + [False]


def test_a_quiet_spell_refills_no_more_than_the_capacity(clock: list[float]) -> None:
    bucket = TokenBucket(rate=5, capacity=5)
    takes(bucket, 5)
    clock[0] += 60
    assert takes(bucket, 6) == [True] * 5 + [False]


def test_at_the_rate_every_request_is_taken(clock: list[float]) -> None:
    bucket = TokenBucket(rate=5, capacity=5)
    answers = []
    for _ in range(50):
        answers.append(bucket.take())
        clock[0] += 0.2
    assert all(answers)
