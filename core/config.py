"""All configuration, read once from the environment (prefix ``CC_``) or a ``.env`` file.

No other module reads ``os.environ``: everything takes a ``Settings`` instance.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.types import DisplayPolicy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CC_", env_file=".env", extra="ignore")

    # Store
    database_url: str = "sqlite:///./var/cc.db"

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "cc-calls"
    temporal_ui_port: int = 8233

    # Public API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # The address vendors post their webhooks to (statusUrl / StatusCallback).
    public_base_url: str = "http://127.0.0.1:8000"

    # Channel e9 (defaults point at the local simulator)
    e9_base_url: str = "http://127.0.0.1:9101"
    e9_account_sid: str = "8a216da8e9demo0001"
    e9_auth_token: str = "e9-demo-auth-token"
    # hw and jy (channels issue): kept here so one settings class lists every vendor.
    hw_base_url: str = "http://127.0.0.1:9102"
    hw_app_key: str = "hw-demo-app-key"
    hw_app_secret: str = "hw-demo-app-secret"
    jy_base_url: str = "http://127.0.0.1:9103"
    jy_account_sid: str = "ACjydemo0001"
    jy_auth_token: str = "jy-demo-auth-token"
    vendor_timeout_s: float = 5.0

    # Calls
    # Automatic routing tries channels in this order (registered channels not listed come last).
    channel_priority: list[str] = ["e9", "hw", "jy"]
    default_max_duration_s: int = Field(default=3600, ge=1, le=14400)
    default_display: DisplayPolicy = DisplayPolicy.PASSTHROUGH
    default_region: str = "CN"
    # Slack past max_duration (covers ringing) before CC's watchdog steps in.
    watchdog_grace_s: int = 120
    # How long the watchdog waits for the vendor's own hang-up after asking for one.
    watchdog_hangup_wait_s: int = 15
    # Polled channels (hw): interval while the call is being set up, the longest back-off
    # once it is bridged and quiet, how long the vendor may stay unreachable before the call
    # is closed (close_type 7), and how long to wait for the CDR after the hang-up.
    poll_interval_s: float = 1.0
    poll_max_interval_s: float = 5.0
    poll_unreachable_after_s: float = 60.0
    poll_after_close_s: float = 10.0
    # How long a closed call's workflow keeps accepting late events before completing.
    late_event_window_s: int = 30
    # Unapplied inbox events older than this are signalled again by the worker.
    inbox_redeliver_after_s: float = 10.0

    # Channel health (ChannelHealthWorkflow): one round of probes every interval; a circuit
    # opens after K failures in a row, half-opens after the cool-down, closes after M
    # successes. A webhook channel with live calls but no event for webhook_silence_s is
    # suspect (the seed's "callback log health").
    health_interval_s: float = 5.0
    health_failures_to_open: int = 3
    health_cooldown_s: float = 20.0
    health_successes_to_close: int = 2
    health_webhook_silence_s: float = 120.0
    # Leases whose CallWorkflow is no longer running (terminated by an operator) are freed
    # by a reconciler this often.
    lease_reconcile_interval_s: float = 30.0
    # A lease younger than this is never reconciled: the API leases the line, then starts the
    # workflow (a start that Temporal is slow to confirm must not look like a lost call).
    lease_min_age_s: float = 60.0

    # Recordings: where CC keeps its copy ("local" directory or Aliyun "oss" via oss2), and
    # how long a late vendor recording is waited for before the copy is given up.
    storage_backend: Literal["local", "oss"] = "local"
    storage_dir: str = "./var/recordings"
    oss_endpoint: str = "http://127.0.0.1:9110"
    oss_bucket: str = "cc-recordings"
    oss_access_key_id: str = "oss-demo-key-id"
    oss_access_key_secret: str = "oss-demo-key-secret"
    oss_url_ttl_s: int = 300
    recording_deadline_s: float = 3600.0
    recording_retry_initial_s: float = 2.0
    recording_retry_max_s: float = 60.0

    # Demo tenant created by `make run`
    demo_tenant: str = "demo"
    demo_api_key: str | None = None

    # Simulators: scales the vendors' webhook retry schedule (1, 5, 30 s).
    sim_retry_scale: float = 1.0

    log_level: str = "INFO"

    def port_of(self, base_url: str) -> int:
        parts = urlsplit(base_url)
        if parts.port is not None:
            return parts.port
        return 443 if parts.scheme == "https" else 80


@lru_cache
def get_settings() -> Settings:
    return Settings()
