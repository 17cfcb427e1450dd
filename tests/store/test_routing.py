"""Routing rules on every database: bindings, pins, priority, health and overrides."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from store.db import now_ms, session_scope
from store.lines import ensure_line
from store.models import Binding, ChannelState
from store.routing import LineBusy, NoChannel, Route, RouteRequest, choose_line
from store.tenants import ensure_tenant

PRIORITY = ["e9", "hw", "jy"]


@pytest.fixture
def lines(db_engine: Engine) -> Engine:
    with session_scope(db_engine) as s:
        ensure_tenant(s, "t")
        for channel in PRIORITY:
            for i in range(2):
                ensure_line(s, "t", channel, f"{channel}-{i}", f"+86108{i}000000{i}")
        s.add(Binding(tenant="t", user="alice", channel="hw", agent="hw-1", updated=now_ms()))
    return db_engine


def route(engine: Engine, call: str, **kw: object) -> Route:
    with session_scope(engine) as s:
        return choose_line(s, RouteRequest(tenant="t", cc_call_id=call, priority=PRIORITY, **kw))  # type: ignore[arg-type]


def set_state(engine: Engine, name: str, healthy: bool, override: bool | None = None) -> None:
    with session_scope(engine) as s:
        s.merge(
            ChannelState(name=name, healthy=healthy, enabled_override=override, updated=now_ms())
        )


def test_unbound_calls_follow_priority_then_overflow(lines: Engine) -> None:
    picked = [route(lines, f"c{i}").line.channel for i in range(6)]
    assert picked == ["e9", "e9", "hw", "hw", "jy", "jy"]
    with pytest.raises(LineBusy):
        route(lines, "c7")


def test_a_pinned_channel_is_kept_and_cannot_fail_over(lines: Engine) -> None:
    chosen = route(lines, "c1", channel="jy")
    assert chosen.line.channel == "jy" and not chosen.may_fail_over
    assert route(lines, "c2").may_fail_over


def test_bound_user_always_gets_the_bound_line(lines: Engine) -> None:
    chosen = route(lines, "c1", user="alice")
    assert (chosen.line.channel, chosen.line.agent) == ("hw", "hw-1")
    with pytest.raises(LineBusy):
        route(lines, "c2", user="alice")
    assert route(lines, "c3", user="bob").line.channel == "e9"  # unbound: automatic


def test_unhealthy_channel_is_skipped_unless_an_operator_pins_it_on(lines: Engine) -> None:
    set_state(lines, "e9", healthy=False)
    assert route(lines, "c1").line.channel == "hw"
    with pytest.raises(NoChannel):
        route(lines, "c2", channel="e9")
    set_state(lines, "e9", healthy=False, override=True)
    assert route(lines, "c3").line.channel == "e9"
    set_state(lines, "hw", healthy=True, override=False)
    with pytest.raises(NoChannel):
        route(lines, "c4", user="alice")  # bound channel switched off by an operator
    fallback = route(lines, "c5", user="alice", allow_fallback=True)
    assert fallback.line.channel == "e9" and fallback.may_fail_over


def test_failover_excludes_channels_already_tried(lines: Engine) -> None:
    assert route(lines, "c1", exclude=frozenset({"e9"})).line.channel == "hw"
    with pytest.raises(NoChannel):
        route(lines, "c2", exclude=frozenset(PRIORITY))


def test_no_channel_says_which_channel_and_why(lines: Engine) -> None:
    set_state(lines, "jy", healthy=True, override=False)  # the operator switched it off
    with session_scope(lines) as s:
        s.merge(ChannelState(name="hw", healthy=False, reason="probe failed", updated=now_ms()))
    with pytest.raises(NoChannel) as pinned:
        route(lines, "c1", channel="jy")
    assert "channel jy is switched off by the platform operator" in str(pinned.value)
    assert "PATCH /v1/channels/jy" in str(pinned.value)
    with pytest.raises(NoChannel) as bound:
        route(lines, "c2", user="alice")  # bound to hw
    assert "alice is bound to channel hw, and channel hw is unhealthy: probe failed" in str(
        bound.value
    )
    set_state(lines, "e9", healthy=False)
    with pytest.raises(NoChannel) as none:
        route(lines, "c3", exclude=frozenset({"e9"}))
    words = str(none.value)
    assert "channel hw is unhealthy: probe failed" in words and "jy is switched off" in words
    assert "e9 already tried for this call" in words
