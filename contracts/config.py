"""The workflows' settings, built from ``Settings`` in this one place."""

from __future__ import annotations

from callflow.circuit import CircuitPolicy
from contracts.call import CallTimers, PollTimers, RecordingTimers
from contracts.health import HealthConfig
from contracts.inbox import RedeliveryConfig
from core.config import CoreSettings as Settings


def call_timers(settings: Settings) -> CallTimers:
    return CallTimers(
        watchdog_grace_s=settings.watchdog_grace_s,
        hangup_wait_s=settings.watchdog_hangup_wait_s,
        late_event_window_s=settings.late_event_window_s,
        place_deadline_s=settings.place_deadline_s,
        place_unknown_wait_s=settings.place_unknown_wait_s,
        setup_silence_s=settings.setup_silence_s,
        connected_check_s=settings.connected_check_s,
        save_max_attempts=settings.save_max_attempts,
    )


def poll_timers(settings: Settings) -> PollTimers:
    return PollTimers(
        interval_s=settings.poll_interval_s,
        max_interval_s=settings.poll_max_interval_s,
        unreachable_after_s=settings.poll_unreachable_after_s,
        after_close_s=settings.poll_after_close_s,
    )


def recording_timers(settings: Settings) -> RecordingTimers:
    return RecordingTimers(
        deadline_s=settings.recording_deadline_s,
        retry_initial_s=settings.recording_retry_initial_s,
        retry_max_s=settings.recording_retry_max_s,
    )


def redelivery_config(settings: Settings) -> RedeliveryConfig:
    return RedeliveryConfig(
        every_s=settings.inbox_redeliver_every_s,
        unsent_after_s=settings.inbox_redeliver_after_s,
        budget_s=settings.webhook_signal_budget_s,
        retry_initial_s=settings.inbox_retry_initial_s,
        retry_max_s=settings.inbox_retry_max_s,
        task_queue=settings.task_queue,
    )


def health_config(settings: Settings, channels: list[str]) -> HealthConfig:
    policy = CircuitPolicy(
        failures_to_open=settings.health_failures_to_open,
        cooldown_ms=int(settings.health_cooldown_s * 1000),
        successes_to_close=settings.health_successes_to_close,
    )
    return HealthConfig(
        channels=channels,
        policy=policy,
        interval_s=settings.health_interval_s,
        webhook_silence_s=settings.health_webhook_silence_s,
        reconcile_every_s=settings.lease_reconcile_interval_s,
        lease_min_age_s=settings.lease_min_age_s,
    )
