"""Inputs and outputs of ChannelHealthWorkflow and its activities."""

from __future__ import annotations

from pydantic import BaseModel

from callflow.circuit import Circuit, CircuitPolicy


class HealthConfig(BaseModel):
    channels: list[str]
    policy: CircuitPolicy = CircuitPolicy()
    interval_s: float = 5.0
    webhook_silence_s: float = 120.0
    reconcile_every_s: float = 30.0
    # A lease younger than this is never reconciled: the API leases, then starts the workflow.
    lease_min_age_s: float = 60.0


class PlacementOutcome(BaseModel):
    """A CallWorkflow's word on one placing attempt: the fastest health signal there is."""

    channel: str
    ok: bool
    reason: str | None = None
    tries: int = 1  # vendor requests behind this outcome (a failure after retries: all of them)


class HealthInput(BaseModel):
    config: HealthConfig
    # Carried over continue-as-new.
    circuits: dict[str, Circuit] = {}
    pending: list[PlacementOutcome] = []
    last_reconcile_ms: int = 0


class ProbeInput(BaseModel):
    channels: list[str]
    webhook_silence_s: float


class Observation(BaseModel):
    """What one probe round saw of one channel."""

    channel: str
    ok: bool
    reason: str | None = None
    # The probe answered and the failure is webhook silence only (calls set up long ago that
    # nothing explains). It counts only while the circuit is closed: see observe_probe.
    silent: bool = False


class Verdict(BaseModel):
    channel: str
    healthy: bool  # routable: closed or half-open
    reason: str | None = None


class ReconcileLeasesInput(BaseModel):
    min_age_s: float


class ReconcileLeasesResult(BaseModel):
    freed: list[str] = []  # CC call ids whose line was freed
    # Scheduled calls (no line yet) whose workflow is gone: closed 255, never dialled.
    closed_waiting: list[str] = []
