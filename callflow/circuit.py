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


def observe_probe(
    circuit: Circuit, failure: str | None, silence: str | None, policy: CircuitPolicy, now_ms: int
) -> Circuit:
    """Fold one probe round's view of a channel: ``failure`` is the probe's own (None: the
    vendor answered), ``silence`` is webhook silence seen alongside an answering probe (calls
    set up long ago that no event explains).

    Silence counts as a failure only while the circuit is closed. It is evidence about the
    traffic a channel is carrying, and a channel out of routing carries none: its stuck calls
    stay stuck whatever the vendor does now. Counted while open or half-open it would keep
    the circuit from ever closing (the trial's first round fails it again) for as long as
    one old call stays open, up to its max duration. So the trial is decided by the probe and
    the calls placed on trial; once closed, if the webhooks are still not reaching us, the new
    calls' silence takes the channel out again.
    """
    circuit = advance(circuit, policy, now_ms)
    if failure is None and silence is not None and circuit.state is CircuitState.CLOSED:
        return observe(circuit, False, silence, policy, now_ms, decisive=False)
    return observe(circuit, failure is None, failure, policy, now_ms, decisive=False)


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
