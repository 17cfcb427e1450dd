"""The circuit breaker with explicit, deterministic time."""

from __future__ import annotations

from callflow.circuit import (
    Circuit,
    CircuitPolicy,
    CircuitState,
    advance,
    observe,
    observe_probe,
)

POLICY = CircuitPolicy(failures_to_open=3, cooldown_ms=30_000, successes_to_close=2)


def run(outcomes: list[tuple[int, bool]], circuit: Circuit | None = None) -> Circuit:
    circuit = circuit or Circuit()
    for at, ok in outcomes:
        circuit = observe(circuit, ok, None if ok else "HTTP 500", POLICY, at)
    return circuit


def test_opens_after_k_failures_in_a_row_only() -> None:
    assert run([(0, False), (1, False), (2, True), (3, False), (4, False)]).routable
    opened = run([(0, False), (1, False), (2, False)])
    assert opened.state is CircuitState.OPEN and not opened.routable
    assert (opened.opened_at, opened.reason) == (2, "HTTP 500")


def test_half_open_after_cooldown_then_closes_after_m_successes() -> None:
    opened = run([(0, False), (1, False), (2, False)])
    assert advance(opened, POLICY, 29_999).state is CircuitState.OPEN
    trial = advance(opened, POLICY, 30_002)
    assert trial.state is CircuitState.HALF_OPEN and trial.routable
    once = observe(trial, True, None, POLICY, 30_003)
    assert once.state is CircuitState.HALF_OPEN
    assert observe(once, True, None, POLICY, 30_004) == Circuit()


def test_a_failure_while_half_open_reopens_at_once() -> None:
    trial = advance(run([(0, False), (1, False), (2, False)]), POLICY, 40_000)
    reopened = observe(trial, False, "timeout", POLICY, 40_001)
    assert reopened.state is CircuitState.OPEN and reopened.opened_at == 40_001
    assert advance(reopened, POLICY, 70_000).state is CircuitState.OPEN  # a fresh cool-down


def test_successes_while_open_do_not_close_it_early() -> None:
    opened = run([(0, False), (1, False), (2, False)])
    assert run([(10, True), (11, True)], opened).state is CircuitState.OPEN


def test_probe_success_does_not_hide_placement_failures() -> None:
    circuit = run([(0, False), (1, False)])
    circuit = observe(circuit, True, None, POLICY, 2, decisive=False)
    assert circuit.failures == 2
    assert observe(circuit, False, "HTTP 500", POLICY, 3).state is CircuitState.OPEN
    trial = advance(observe(circuit, False, "x", POLICY, 3), POLICY, 40_000)
    closes = observe(observe(trial, True, None, POLICY, 40_001, decisive=False), True, None,
                     POLICY, 40_002, decisive=False)  # fmt: skip
    assert closes == Circuit()


SILENT = "webhooks silent: 1 calls waiting for events"


def probe_rounds(circuit: Circuit, start: int, rounds: int) -> tuple[Circuit, list[CircuitState]]:
    """Rounds 5 s apart where the probe answers but a stuck call keeps the webhooks silent."""
    seen = []
    for i in range(rounds):
        circuit = observe_probe(circuit, None, SILENT, POLICY, start + i * 5_000)
        seen.append(circuit.state)
    return circuit, seen


def test_webhook_silence_opens_a_closed_circuit() -> None:
    opened, states = probe_rounds(Circuit(), 0, 3)
    assert states == [CircuitState.CLOSED, CircuitState.CLOSED, CircuitState.OPEN]
    assert opened.reason == SILENT and opened.opened_at == 10_000


def test_silence_does_not_keep_a_channel_out_of_routing() -> None:
    """The stuck call that took the channel out is still stuck after the cool-down (nothing
    is routed to an open channel): the trial is decided by the probe, so it closes."""
    opened, _ = probe_rounds(Circuit(), 0, 3)
    _, states = probe_rounds(opened, 25_000, 6)  # opened at 10 s: the trial starts at 40 s
    assert states[:3] == [CircuitState.OPEN] * 3
    assert states[3:5] == [CircuitState.HALF_OPEN, CircuitState.CLOSED]
    # Closed, it carries traffic again; still silent, the evidence counts anew.
    assert states[5] is CircuitState.CLOSED


def test_a_failing_probe_still_counts_whatever_the_silence() -> None:
    trial = advance(run([(0, False), (1, False), (2, False)]), POLICY, 40_000)
    reopened = observe_probe(trial, "probe failed: timeout", SILENT, POLICY, 40_001)
    assert reopened.state is CircuitState.OPEN and reopened.reason == "probe failed: timeout"
    quiet = observe_probe(Circuit(), None, None, POLICY, 1)
    assert quiet == Circuit()
