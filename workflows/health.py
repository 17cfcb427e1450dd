"""ChannelHealthWorkflow: one long-running workflow (id ``channel-health``) that keeps a
circuit per channel and writes the routing verdict to the store.

Every ``interval_s`` it runs a probe round (each vendor's probe, and webhook freshness: the
seed's "callback log health", which counts only while a circuit is closed, so a channel out of
routing comes back on its probes alone); between rounds CallWorkflows signal each placing attempt's
outcome, so a vendor refusing calls is taken out of routing within seconds. The circuit
logic is the pure ``callflow.circuit.observe``, fed with ``workflow.now()``, so the same
history replays to the same verdicts. Every ``reconcile_every_s`` it also frees line leases
whose CallWorkflow is gone. History stays bounded by continue-as-new, carrying the circuits.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from callflow.circuit import Circuit, CircuitState, advance, observe, observe_probe
    from contracts import activities
    from contracts import health as model
    from contracts.ids import (
        HEALTH_CONFIGURE_SIGNAL,
        HEALTH_QUERY,
        HEALTH_WORKFLOW,
        LAST_PROBE_ROUND_QUERY,
        PLACEMENT_SIGNAL,
    )

# Rounds per run before continue-as-new, unless the server suggests it earlier.
ROUNDS_PER_RUN = 500
QUICK_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1))


@workflow.defn(name=HEALTH_WORKFLOW)
class ChannelHealthWorkflow:
    @workflow.init
    def __init__(self, inp: model.HealthInput) -> None:
        self._config = inp.config
        self._circuits: dict[str, Circuit] = dict(inp.circuits)
        self._pending: list[model.PlacementOutcome] = list(inp.pending)
        self._written: dict[str, model.Verdict] = {}
        self._last_reconcile_ms = inp.last_reconcile_ms
        self._last_probe_round_ms = 0  # when the last completed probe round started

    @workflow.signal(name=PLACEMENT_SIGNAL)
    def placement_outcome(self, outcome: model.PlacementOutcome) -> None:
        self._pending.append(outcome)

    @workflow.signal(name=HEALTH_CONFIGURE_SIGNAL)
    def configure(self, config: model.HealthConfig) -> None:
        """Sent by every worker at start-up (signal-with-start): new settings apply at once."""
        self._config = config

    @workflow.query(name=HEALTH_QUERY)
    def health(self) -> dict[str, Circuit]:
        return {name: self._circuit(name) for name in self._config.channels}

    @workflow.query(name=LAST_PROBE_ROUND_QUERY)
    def last_probe_round(self) -> int:
        return self._last_probe_round_ms

    @workflow.run
    async def run(self, inp: model.HealthInput) -> None:
        next_round_ms = self._now_ms()
        for _ in range(ROUNDS_PER_RUN):
            wait_ms = next_round_ms - self._now_ms()
            if wait_ms > 0 and not self._pending:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: bool(self._pending), timeout=timedelta(milliseconds=wait_ms)
                    )
            self._fold_placements()
            if self._now_ms() >= next_round_ms:
                await self._probe_round()
                next_round_ms = self._now_ms() + int(self._config.interval_s * 1000)
            await self._write_routing()
            await self._reconcile_if_due()
            if workflow.info().is_continue_as_new_suggested():
                break
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            model.HealthInput(
                config=self._config,
                circuits=self._circuits,
                pending=self._pending,
                last_reconcile_ms=self._last_reconcile_ms,
            )
        )

    def _now_ms(self) -> int:
        return int(workflow.now().timestamp() * 1000)

    def _circuit(self, name: str) -> Circuit:
        return advance(self._circuits.get(name, Circuit()), self._config.policy, self._now_ms())

    def _observe(self, name: str, ok: bool, reason: str | None, decisive: bool) -> None:
        self._circuits[name] = observe(
            self._circuit(name), ok, reason, self._config.policy, self._now_ms(), decisive=decisive
        )

    def _fold_placements(self) -> None:
        pending, self._pending = self._pending, []
        for outcome in pending:
            reason = None if outcome.ok else f"placing calls fails: {outcome.reason}"
            # One call alone never opens a closed circuit, however many requests it made:
            # our own network blinking must not take every channel out at once.
            tries = min(outcome.tries, self._config.policy.failures_to_open - 1)
            for _ in range(1 if outcome.ok else max(1, tries)):
                self._observe(outcome.channel, outcome.ok, reason, decisive=True)

    async def _probe_round(self) -> None:
        started = self._now_ms()
        try:
            observations: list[model.Observation] = await workflow.execute_activity(
                activities.probe_channels,
                model.ProbeInput(
                    channels=self._config.channels, webhook_silence_s=self._config.webhook_silence_s
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=QUICK_RETRY,
            )
        except ActivityError:
            # Our own trouble (store down), not the vendors': no verdict from this round.
            workflow.logger.warning("health: probe round failed")
            return
        for seen in observations:
            # A probe that answers does not prove calls go through (not decisive); webhook
            # silence counts only while the circuit is closed (see observe_probe).
            failure = None if seen.ok or seen.silent else seen.reason or "probe failed"
            silence = (seen.reason or "webhooks silent") if seen.silent else None
            self._circuits[seen.channel] = observe_probe(
                self._circuit(seen.channel),
                failure,
                silence,
                self._config.policy,
                self._now_ms(),
            )
        self._last_probe_round_ms = started

    async def _write_routing(self) -> None:
        """Write only what changed: routing reads the store, not this workflow."""
        changed = []
        for name in self._config.channels:
            circuit = self._circuit(name)
            closed = circuit.state is CircuitState.CLOSED
            reason = None if closed else f"{circuit.state.value}: {circuit.reason}"
            verdict = model.Verdict(channel=name, healthy=circuit.routable, reason=reason)
            if self._written.get(name) != verdict:
                changed.append(verdict)
        if not changed:
            return
        try:
            await workflow.execute_activity(
                activities.write_routing,
                changed,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=QUICK_RETRY,
            )
        except ActivityError:
            workflow.logger.warning("health: routing not written; next round retries")
            return
        self._written.update({verdict.channel: verdict for verdict in changed})

    async def _reconcile_if_due(self) -> None:
        every_ms = int(self._config.reconcile_every_s * 1000)
        if self._now_ms() - self._last_reconcile_ms < every_ms:
            return
        self._last_reconcile_ms = self._now_ms()
        with contextlib.suppress(ActivityError):
            await workflow.execute_activity(
                activities.reconcile_leases,
                model.ReconcileLeasesInput(min_age_s=self._config.lease_min_age_s),
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=QUICK_RETRY,
            )
