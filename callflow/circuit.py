"""A channel's circuit breaker: a pure function of observations and the time, no I/O.

closed (routable) → open (out of routing) after ``failures_to_open`` failures in a row →
half-open (routable again, on trial) after ``cooldown_ms`` → closed after
``successes_to_close`` successes in a row, or open again at the first failure.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitPolicy(BaseModel):
    failures_to_open: int = 3
    cooldown_ms: int = 30_000
    successes_to_close: int = 2


class Circuit(BaseModel):
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0  # in a row
    successes: int = 0  # in a row, while half-open
    opened_at: int | None = None
    reason: str | None = None

    @property
    def routable(self) -> bool:
        return self.state is not CircuitState.OPEN


def observe(
    circuit: Circuit,
    ok: bool,
    reason: str | None,
    policy: CircuitPolicy,
    now_ms: int,
    decisive: bool = True,
) -> Circuit:
    """Fold one outcome into the circuit.

    A probe's success is not ``decisive``: a vendor can answer probes while refusing calls,
    so it does not wipe out a run of placement failures; it only counts while half-open.
    """
    circuit = advance(circuit, policy, now_ms)
    if ok and not decisive and circuit.state is CircuitState.CLOSED:
        return circuit
    if ok:
        if circuit.state is CircuitState.HALF_OPEN:
            if circuit.successes + 1 >= policy.successes_to_close:
                return Circuit()
            return circuit.model_copy(update={"successes": circuit.successes + 1})
        if circuit.state is CircuitState.CLOSED:
            return circuit.model_copy(update={"failures": 0, "reason": None})
        return circuit
    failures = circuit.failures + 1
    if circuit.state is CircuitState.HALF_OPEN or failures >= policy.failures_to_open:
        return Circuit(state=CircuitState.OPEN, failures=failures, opened_at=now_ms, reason=reason)
    if circuit.state is CircuitState.OPEN:
        return circuit.model_copy(update={"failures": failures})
    return circuit.model_copy(update={"failures": failures, "reason": reason})


def advance(circuit: Circuit, policy: CircuitPolicy, now_ms: int) -> Circuit:
    """Let time pass: an open circuit whose cool-down is over becomes half-open."""
    if (
        circuit.state is CircuitState.OPEN
        and circuit.opened_at is not None
        and now_ms - circuit.opened_at >= policy.cooldown_ms
    ):
        return circuit.model_copy(
            update={"state": CircuitState.HALF_OPEN, "successes": 0, "failures": 0}
        )
    return circuit
