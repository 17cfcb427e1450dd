"""The workflows' settings, built from ``Settings`` in this one place.

Each model field is read from the setting of the same name after the model's ``prefix``
(``RecordingTimers.deadline_s`` ← ``recording_deadline_s``), or from the setting ``named`` for it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from callflow.circuit import CircuitPolicy
from channels.registry import Settings as AppSettings
from contracts.call import CallTimers, RecordingTimers
from contracts.health import HealthConfig
from contracts.inbox import RedeliveryConfig
from contracts.seat import SeatTimers
from core.config import CoreSettings as Settings

Model = TypeVar("Model", bound=BaseModel)


def _from_settings(
    model: type[Model],
    settings: Settings,
    prefix: str = "",
    named: dict[str, str] | None = None,
    **given: Any,
) -> Model:
    """``model`` with every field not ``given`` read from its setting."""
    named = named or {}
    values = {
        field: getattr(settings, named.get(field, prefix + field))
        for field in model.model_fields
        if field not in given
    }
    return model(**values, **given)


def call_timers(settings: Settings) -> CallTimers:
    return _from_settings(CallTimers, settings, named={"hangup_wait_s": "watchdog_hangup_wait_s"})


def recording_timers(settings: Settings) -> RecordingTimers:
    return _from_settings(RecordingTimers, settings, prefix="recording_")


def redelivery_config(settings: Settings) -> RedeliveryConfig:
    return _from_settings(
        RedeliveryConfig,
        settings,
        named={
            "every_s": "inbox_redeliver_every_s",
            "unsent_after_s": "inbox_redeliver_after_s",
            "budget_s": "webhook_signal_budget_s",
            "retry_initial_s": "inbox_retry_initial_s",
            "retry_max_s": "inbox_retry_max_s",
        },
    )


def health_config(settings: Settings, channels: list[str]) -> HealthConfig:
    policy = CircuitPolicy(
        failures_to_open=settings.health_failures_to_open,
        cooldown_ms=int(settings.health_cooldown_s * 1000),
        successes_to_close=settings.health_successes_to_close,
    )
    return _from_settings(
        HealthConfig,
        settings,
        channels=channels,
        policy=policy,
        named={
            "interval_s": "health_interval_s",
            "webhook_silence_s": "health_webhook_silence_s",
            "reconcile_every_s": "lease_reconcile_interval_s",
        },
    )


def seat_timers(settings: AppSettings) -> SeatTimers:
    """A polled channel's seats (hw: ``CC_HW_SEAT_IDLE_S``)."""
    return SeatTimers(idle_s=settings.hw_seat_idle_s)
