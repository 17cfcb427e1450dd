"""CC's own configuration, read once from the environment (prefix ``CC_``) or a ``.env`` file.

Each vendor's settings live in its adapter module (``channels/<vendor>.py``, a subclass of
``CoreSettings``); ``channels.registry.Settings`` composes them all and is what the API, the
worker, the scripts and the simulators read. Modules below ``channels`` (core, store,
storage, contracts) take a ``CoreSettings``. No module reads ``os.environ``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.secrets import DemoDefault
from core.types import DisplayPolicy

# How long CC's HTTP servers (the API, the simulators) keep an idle connection: well past
# the 5 s after which httpx (and most clients) stop reusing one, so a client never sends a
# request on a connection the server is closing at that moment (a POST lost that way has an
# unknown outcome: for a place request, a call closed 7 without dialling).
SERVER_KEEP_ALIVE_S = 75


class CoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CC_", env_file=".env", extra="ignore")

    # Store
    # Where `make run` keeps the stack's files: its SQLite database (CC's and Temporal's), keys,
    # logs and recordings. A second stack beside a running one needs a folder of its own
    # (and its own ports): `CC_VAR_DIR=var2 CC_API_PORT=8100 ... make run`.
    var_dir: str = "./var"
    # Empty: CC's SQLite file in var_dir (``sqlite:///./var/cc.db``).
    database_url: str = ""

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "cc-calls"
    temporal_ui_port: int = 8233
    # Every payload CC hands Temporal is sealed (core/codec.py): a JSON list of
    # "<id>:<base64 of 32 bytes>", the first seals, all open (rotation: add the new key first).
    # Empty: payloads go in clear (CC warns at start); `make run` makes var/payload.key.
    payload_keys: list[str] = Field(default=[], repr=False)
    # The connection to Temporal: TLS (on with a CA, a client certificate for mTLS, or
    # temporal_tls=true for the system's roots) and an API key (Temporal Cloud; needs TLS).
    temporal_tls: bool = False
    temporal_tls_ca: str = ""  # a PEM file: the server's CA (empty: the system's roots)
    temporal_tls_cert: str = ""  # a PEM file: CC's client certificate (mTLS)
    temporal_tls_key: str = Field(default="", repr=False)  # a PEM file: its private key
    temporal_tls_server_name: str = ""  # when the certificate's name is not the address's
    temporal_api_key: str = Field(default="", repr=False)
    # The Temporal UI's origins, the only cross-origin callers of CC's codec endpoint (/codec,
    # api/codec.py). Empty: http://127.0.0.1:<temporal_ui_port> and http://localhost:<...>.
    codec_origins: list[str] = []

    # Public API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # The address vendors post their webhooks to (statusUrl / StatusCallback). Unset, it is
    # the API's own address and port (``http://{api_host}:{api_port}``).
    public_base_url: str = ""
    # An API process trusts an API key it has looked up for this long: a removed key (or
    # tenant) stops working within it. 0: every request looks its key up.
    api_key_cache_s: float = Field(default=5.0, ge=0)
    # Request bodies larger than this are answered 413 before they are read.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    # Vendors: each one's account and address are in its adapter module; this is shared.
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
    # How long a closed call's workflow keeps accepting late events before completing.
    late_event_window_s: int = 30
    # Unapplied inbox events older than this are signalled again by the worker.
    inbox_redeliver_after_s: float = 10.0
    # A webhook waits at most this long for its signal before it is acknowledged anyway (the
    # event is stored; redelivery signals it later): e9 gives up on an answer after 3 s.
    webhook_signal_budget_s: float = 1.0
    # Inbox redelivery (one InboxWorkflow, whatever the number of API processes): how often it
    # looks, and the back-off between signal attempts of one event.
    inbox_redeliver_every_s: float = 5.0
    inbox_retry_initial_s: float = 5.0
    inbox_retry_max_s: float = 300.0
    # A call not placed this long after it was requested (a worker or vendor outage) is closed
    # without dialling (close_type 255): a customer is never rung minutes late.
    place_deadline_s: float = Field(default=60.0, gt=0)
    # A place request whose outcome is unknown (timed out after it was sent) is never placed
    # again: CC waits this long for an event of the call, then closes it with 7 (VENDORS.md).
    place_unknown_wait_s: float = Field(default=30.0, gt=0)
    # A placed call with no vendor event for this long in set-up, or a bridged call silent for
    # connected_check_s, is reconciled with the vendor (its call-result query); a bridged
    # call's period doubles (up to 8x) each time the vendor's answer brings nothing new.
    setup_silence_s: float = Field(default=45.0, gt=0)
    # A scheduled call that finds no line when due (busy, no channel, the tenant's live-call
    # quota) asks again after line_wait_s, doubling up to a minute, for up to line_wait_max_s;
    # then it closes without dialling (255).
    line_wait_s: float = Field(default=5.0, gt=0)
    line_wait_max_s: float = Field(default=3600.0, gt=0)
    connected_check_s: float = Field(default=300.0, gt=0)
    # Saving a record is retried this many times; then the line is freed all the same.
    save_max_attempts: int = Field(default=20, ge=1)

    # Inbound 400-number calls: what the customer hears, and how many digits an extension
    # has (the vendor collects that many when the customer keyed none).
    inbound_ext_digits: int = Field(default=4, ge=1, le=8)
    inbound_prompt_ext: str = "Please enter the extension number."
    inbound_prompt_unknown: str = "The extension you entered does not exist. Goodbye."
    inbound_prompt_busy: str = "The person you are calling is busy. Please call again later."
    inbound_prompt_unavailable: str = "We cannot take your call now. Please call again later."

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
    storage_dir: str = ""  # empty: var_dir/recordings
    oss_endpoint: str = "http://127.0.0.1:9110"
    oss_bucket: str = "cc-recordings"
    oss_access_key_id: Annotated[str, DemoDefault("oss_endpoint")] = "oss-demo-key-id"
    oss_access_key_secret: Annotated[str, DemoDefault("oss_endpoint")] = "oss-demo-key-secret"
    oss_url_ttl_s: int = 300
    recording_deadline_s: float = 3600.0
    recording_retry_initial_s: float = 2.0
    recording_retry_max_s: float = 60.0
    # A vendor's recording is refused past this size, and its download (one request, answer
    # included) abandoned past this many seconds (tried again later).
    recording_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    recording_download_s: float = Field(default=240.0, gt=0)

    # Notifications to apps (PUT /v1/notifications; one NotificationWorkflow): how often the
    # sender looks for due deliveries, how long one POST may take, the back-off between a
    # delivery's attempts, when it is given up (failed), how many POSTs are in flight at once,
    # and how long delivered and failed deliveries are kept.
    notify_poll_s: float = Field(default=0.5, gt=0)
    notify_timeout_s: float = Field(default=10.0, gt=0)
    notify_retry_initial_s: float = Field(default=5.0, gt=0)
    notify_retry_max_s: float = Field(default=3600.0, gt=0)
    notify_give_up_s: float = Field(default=86400.0, gt=0)
    notify_concurrency: int = Field(default=32, ge=1)
    notify_keep_s: float = Field(default=7 * 86400.0, gt=0)
    # At most this many of a subscription's POSTs in flight at once: a slow receiver never
    # holds the slots the other tenants' notifications need.
    notify_per_subscription: int = Field(default=2, ge=1)

    # Egress (core/egress.py): URLs tenants or vendors choose (notification receivers, vendor
    # recording URLs) never reach loopback, private, link-local, CGNAT, multicast or reserved
    # addresses, nor a receiver over plain http, unless listed here (a JSON list): IP networks
    # with any port ("10.0.0.0/8", "127.0.0.1", "::1") or one host:port ("127.0.0.1:8099",
    # "hooks.internal:8443"). `make run` and the test stacks allow 127.0.0.1 and ::1.
    egress_allow: list[str] = []

    # The platform operator's credential (a bearer token, never a tenant key): needed to change
    # channel routing, see every tenant's channel figures, provision vendor resources (lines,
    # 400 numbers) and set quotas (/v1/operator). Empty: no operator can act over the API.
    operator_key: str = Field(default="", repr=False)
    # A bearer token GET /metrics then needs (Authorization: Bearer <token>). Empty: open.
    metrics_token: str = Field(default="", repr=False)
    # Per-tenant quotas unless the operator set the tenant's own (PUT /v1/operator/tenants/{id}):
    # lines, calls live at once, and calls started in any 60 s. Over one: 429 with Retry-After.
    tenant_max_lines: int = Field(default=1000, ge=0)
    tenant_max_live_calls: int = Field(default=200, ge=0)
    tenant_calls_per_minute: int = Field(default=1200, ge=0)

    # Retention (issue 21): raw vendor events, recordings and hw seat sessions are kept this many
    # days (a tenant's own, PUT /v1/settings or the operator's PUT /v1/operator/tenants/{id},
    # overrides it for that tenant's calls), then purged by the Temporal Schedule
    # ``cc-retention`` every ``retention_every_s``, ``retention_batch`` calls (ten times as
    # many rows of the other parts) per short transaction. Call records stay. A tenant may set
    # at most ``retention_max_days``.
    retention_days: int = Field(default=90, ge=1, le=3650)
    retention_max_days: int = Field(default=365, ge=1, le=3650)
    retention_every_s: float = Field(default=3600.0, ge=60)
    retention_batch: int = Field(default=50, ge=1, le=5000)
    # A pause after each batch: the sweep leaves the database to the calls and webhooks most
    # of the time (docs/benchmarks.md, bench/retention.py).
    retention_pause_s: float = Field(default=0.05, ge=0)

    # Demo tenant created by `make run`
    demo_tenant: str = "demo"
    demo_api_key: str | None = None

    # Simulators: scales the vendors' webhook retry schedule (1, 5, 30 s).
    sim_retry_scale: float = 1.0
    # The jy simulator's calls-per-second limit (a token bucket holding one second's worth,
    # as vendors commonly count); over it, 429 with Retry-After. CC_JY_CPS is CC's own pace.
    sim_jy_cps: float = Field(default=20.0, gt=0)

    # Seals secrets kept in the database (hw seat passwords): a Fernet key (core/secrets.py).
    secret_key: str = ""

    # The worker's CPU priority (nice, 0-19). Where the worker shares a machine with the API
    # (``make run``), a higher value lets the API answer vendors and apps first when the
    # machine is saturated; the worker then applies the events (durably queued) a little later.
    worker_nice: int = Field(default=0, ge=0, le=19)
    # Workflows a worker keeps in memory between their tasks (Temporal's sticky cache): a call
    # not kept is replayed from its history at its next event. About 0.15 MiB each
    # (docs/benchmarks.md): the default keeps a worker well under 1 GiB with 10,000 live calls.
    worker_max_cached_workflows: int = Field(default=1000, ge=0)

    log_level: str = "INFO"

    @model_validator(mode="after")
    def _default_public_url(self) -> CoreSettings:
        var = self.var_dir.rstrip("/") or "."
        self.database_url = self.database_url or f"sqlite:///{var}/cc.db"
        self.storage_dir = self.storage_dir or f"{var}/recordings"
        if not self.public_base_url:
            self.public_base_url = f"http://{self.api_host}:{self.api_port}"
        if not self.codec_origins:
            port = self.temporal_ui_port
            self.codec_origins = [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
        return self

    def port_of(self, base_url: str) -> int:
        parts = urlsplit(base_url)
        if parts.port is not None:
            return parts.port
        return 443 if parts.scheme == "https" else 80


@lru_cache
def get_core_settings() -> CoreSettings:
    """CC's own settings, for what runs below the channels (e.g. migrations)."""
    return CoreSettings()
