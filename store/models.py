"""SQLModel tables. ``CallRecordRow`` keeps every RECORD.md column with its meaning and size
(declared once, in ``callflow.record.CallRecordBase``)."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel
from sqlmodel.sql.sqltypes import AutoString

from callflow.record import CallRecordBase

# SQLite only auto-increments an INTEGER primary key; elsewhere the surrogate key is a bigint.
BigPK = BigInteger().with_variant(Integer(), "sqlite")


def _ms(nullable: bool = True) -> Column:  # type: ignore[type-arg]
    return Column(BigInteger(), nullable=nullable)


class Tenant(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=128)
    default_region: str = Field(default="CN", max_length=2)
    default_display: str = Field(default="passthrough", max_length=16)
    created: int = Field(sa_column=_ms(nullable=False))
    # The operator's quotas for this tenant; None: the platform's default (CC_TENANT_*).
    max_lines: int | None = Field(default=None)
    max_live_calls: int | None = Field(default=None)
    calls_per_minute: int | None = Field(default=None)
    # How many days the tenant's raw vendor events and recordings are kept; None: the
    # platform's (CC_RETENTION_DAYS). Set by the tenant (PUT /v1/settings) or the operator.
    retention_days: int | None = Field(default=None)
    # The tenant's default callback policies (JSON of callflow.policy's RetryPolicy and
    # CallingWindow) for calls that do not bring their own; None: none.
    default_retry: str | None = Field(default=None, sa_type=Text)
    default_window: str | None = Field(default=None, sa_type=Text)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: int | None = Field(default=None, sa_column=Column(BigPK, primary_key=True))
    tenant: str = Field(foreign_key="tenant.id", max_length=32, index=True)
    key_hash: str = Field(max_length=64, unique=True)  # sha256 hex of the raw key
    scope: str = Field(default="full", max_length=8)
    created: int = Field(sa_column=_ms(nullable=False))


class AgentLine(SQLModel, table=True):
    """A line a channel provides (e9: a phone number, hw: a seat id); one call at a time."""

    __tablename__ = "agent_line"
    __table_args__ = (UniqueConstraint("channel", "agent", name="uq_agent_line_channel_agent"),)

    id: int | None = Field(default=None, sa_column=Column(BigPK, primary_key=True))
    tenant: str = Field(foreign_key="tenant.id", max_length=32, index=True)
    channel: str = Field(max_length=8)
    agent: str = Field(max_length=64)
    number: str = Field(max_length=16)  # the number the line shows (E.164)
    # The lease: which call holds the line, and a fencing token bumped on every grant.
    lease_call_id: str | None = Field(default=None, max_length=32)
    lease_token: int = Field(default=0)
    leased_at: int | None = Field(default=None, sa_column=_ms())
    # A seat's password (hw), encrypted with CC_SECRET_KEY; never returned, never logged.
    # None: the channel's default (CC_HW_SEAT_PASSWORD), a secret held outside the database.
    secret: str | None = Field(default=None, sa_type=Text)
    # Why no call may take the line (a seat taken elsewhere); None: in service.
    out_of_service: str | None = Field(default=None, max_length=255)


class Provision(SQLModel, table=True):
    """A vendor resource that belongs to one company, given to one tenant by the platform
    operator: a line id of a channel (an hw seat, an e9/jy number) or a 400 main number. A
    tenant creates lines and binds extensions only on what it holds."""

    __table_args__ = (
        UniqueConstraint("kind", "channel", "resource", name="uq_provision_resource"),
        Index("ix_provision_tenant", "tenant", "kind", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigPK, primary_key=True))
    tenant: str = Field(foreign_key="tenant.id", max_length=32)
    kind: str = Field(max_length=16)  # core.types.ResourceKind
    channel: str = Field(default="", max_length=8)  # "" for a main number (any channel)
    resource: str = Field(max_length=64)  # the line id, or the main number (E.164)
    # An hw seat kept signed in all day, so inbound calls can ring it.
    stay_signed_in: bool = Field(default=False)
    created: int = Field(sa_column=_ms(nullable=False))


class ChannelSession(SQLModel, table=True):
    """A polled vendor's session state (hw: a seat's guid and cookie, which seat placed which
    call), shared by every worker and API process: a callout from one worker and the long
    poll on another must use the same, latest guid."""

    __tablename__ = "channel_session"

    channel: str = Field(primary_key=True, max_length=8)
    key: str = Field(primary_key=True, max_length=96)
    value: str = Field(sa_type=Text)
    updated: int = Field(sa_column=_ms(nullable=False))


class CallRowBase(CallRecordBase):
    """The record's columns and the row's own that apps see, which the live record the
    workflow keeps does not carry: the row's clock, and how the app asked for the call."""

    updated: int = Field(sa_type=BigInteger)
    user: str | None = Field(default=None, sa_type=AutoString(length=64))
    max_duration: int = Field(default=3600)
    record_audio: bool = Field(default=True)


# The columns calls are looked up by, each with its tenant index (store.calls filters on them).
FILTERED_COLUMNS = (
    "state",
    "channel",
    "agent",
    "user",
    "caller",
    "called",
    "close_type",
    "direction",
    "main_num",
    "ext_num",
)


class CallRecordRow(CallRowBase, table=True):
    """One row per call: the columns above, and CC's own that never leave the store."""

    __tablename__ = "call_record"
    __table_args__ = (
        UniqueConstraint("tenant", "idempotency_key", name="uq_call_record_idempotency"),
        Index("ix_call_record_tenant_created", "tenant", "created", "id"),
        Index("ix_call_record_state", "state"),
        Index("ix_call_record_vendor_call", "channel", "call_id"),
        # The retention sweep's walk: a tenant's calls not purged yet, oldest first.
        Index("ix_call_record_retention", "tenant", "purged", "created"),
        Index("ix_call_record_parent", "parent", "try"),  # a retry series' tries
        *(
            Index(f"ix_call_record_tenant_{name}", "tenant", name, "created", "id")
            for name in FILTERED_COLUMNS
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigPK, primary_key=True))
    idempotency_key: str | None = Field(default=None, max_length=64)
    request_hash: str | None = Field(default=None, max_length=64)
    # CC's bookkeeping: the lease's fencing token, and each vendor tried (JSON).
    lease_token: int | None = Field(default=None)
    attempts: str = Field(default="[]", sa_column=Column(Text(), nullable=False))
    # When the retention sweep deleted the call's raw vendor events and recording.
    purged: int | None = Field(default=None, sa_column=_ms())
    # When the call's recording was deleted (retention, or an admin's DELETE): from then on no
    # recording is copied or kept for it, whatever a late vendor event says.
    recording_deleted: int | None = Field(default=None, sa_column=_ms())


class VendorEvent(SQLModel, table=True):
    """The webhook inbox: every vendor event, stored raw before anything else happens."""

    __tablename__ = "vendor_event"
    __table_args__ = (
        UniqueConstraint("channel", "dedupe_key", name="uq_vendor_event_dedupe"),
        Index("ix_vendor_event_call", "cc_call_id", "id"),
        Index("ix_vendor_event_applied", "applied", "received"),
        Index("ix_vendor_event_channel_received", "channel", "received"),
        Index("ix_vendor_event_redelivery", "applied", "signalled_at", "next_attempt_at"),
        Index("ix_vendor_event_received", "received", "id"),  # the retention sweep's
    )

    id: int | None = Field(default=None, sa_column=Column(BigPK, primary_key=True))
    channel: str = Field(max_length=8)
    dedupe_key: str = Field(max_length=128)
    cc_call_id: str | None = Field(default=None, max_length=64)
    vendor_call_id: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=32)
    event_time: int = Field(sa_column=_ms(nullable=False))
    received: int = Field(sa_column=_ms(nullable=False))
    content_type: str = Field(max_length=64)
    body: str = Field(sa_column=Column(Text(), nullable=False))
    # The translated event (CallEvent JSON), so a redelivery needs no vendor code.
    event_json: str = Field(sa_column=Column(Text(), nullable=False))
    applied: bool = Field(default=False)
    applied_at: int | None = Field(default=None, sa_column=_ms())
    # Why it is not applied (e.g. "unknown_call"), for operators.
    note: str | None = Field(default=None, max_length=64)
    # Signal delivery: when a signal reached Temporal (then it is never signalled again by
    # redelivery), how many were tried, and when the next try is due after a failure.
    signalled_at: int | None = Field(default=None, sa_column=_ms())
    signal_attempts: int = Field(
        default=0, sa_column=Column(Integer(), nullable=False, server_default="0")
    )
    next_attempt_at: int | None = Field(default=None, sa_column=_ms())


class Binding(SQLModel, table=True):
    """User–agent–channel: a user of a tenant pinned to one line of one channel."""

    __table_args__ = (UniqueConstraint("tenant", "user", name="uq_binding_tenant_user"),)

    id: int | None = Field(default=None, sa_column=Column(BigPK, primary_key=True))
    tenant: str = Field(foreign_key="tenant.id", max_length=32)
    user: str = Field(max_length=64)
    channel: str = Field(max_length=8)
    agent: str = Field(max_length=64)
    updated: int = Field(sa_column=_ms(nullable=False))


class Extension(SQLModel, table=True):
    """An extension of a 400 number bound to one line: a customer who dials ``main_num`` and
    keys ``ext_num`` is bridged to that line's agent. A vendor routes a number and extension
    to exactly one place, so the pair is unique across every tenant."""

    __table_args__ = (
        UniqueConstraint("main_num", "ext_num", name="uq_extension_main_ext"),
        Index("ix_extension_tenant_main", "tenant", "main_num"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigPK, primary_key=True))
    tenant: str = Field(foreign_key="tenant.id", max_length=32)
    main_num: str = Field(max_length=16)  # E.164
    ext_num: str = Field(max_length=8)  # digits
    channel: str = Field(max_length=8)
    agent: str = Field(max_length=64)
    # The agent's phone the call rings (E.164): a line's id is not always one (an hw seat).
    phone: str = Field(max_length=16)
    updated: int = Field(sa_column=_ms(nullable=False))


class ChannelState(SQLModel, table=True):
    """Routing state of a channel: the health verdict and an operator's override."""

    __tablename__ = "channel_state"

    name: str = Field(primary_key=True, max_length=8)
    healthy: bool = Field(default=True)
    reason: str | None = Field(default=None, max_length=255)
    # None: follow the health verdict; True/False: an operator pinned routing on/off.
    enabled_override: bool | None = Field(default=None)
    updated: int = Field(sa_column=_ms(nullable=False))


# -- notifications to apps (store/notifications.py, store/notification_sending.py) --------


class EventType(StrEnum):
    STATE = "call.state"  # the record's state changed (init, conn, close)
    CLOSED = "call.closed"  # the call ended (with the close's call.state)
    RECORDING = "call.recording"  # CC's copy of the recording landed (audio_url set)
    # A retry policy recorded the series' next try (the view is that try's: not_before, try)
    RETRY_SCHEDULED = "call.retry_scheduled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up after the retry period (CC_NOTIFY_GIVE_UP_S)


class NotificationSubscription(SQLModel, table=True):
    """A tenant's one subscription: where to POST which events, signed with its secret."""

    __tablename__ = "notification_subscription"
    __table_args__ = (UniqueConstraint("tenant", name="uq_notification_subscription_tenant"),)

    id: int | None = Field(default=None, sa_column=Column(BigPK, primary_key=True))
    tenant: str = Field(foreign_key="tenant.id", max_length=32)
    url: str = Field(sa_column=Column(Text(), nullable=False))
    events: str = Field(max_length=64)  # EventType values, comma-separated
    masked: bool = Field(default=False)
    # The Standard Webhooks secret (whsec_...), sealed with CC_SECRET_KEY; shown once.
    secret: str = Field(sa_column=Column(Text(), nullable=False))
    created: int = Field(sa_column=_ms(nullable=False))
    updated: int = Field(sa_column=_ms(nullable=False))

    @property
    def event_types(self) -> frozenset[EventType]:
        return frozenset(EventType(e) for e in self.events.split(",") if e)


class NotificationDelivery(SQLModel, table=True):
    """One event for one subscription, and how sending it went."""

    __tablename__ = "notification_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "dedupe_key", name="uq_notification_delivery_dedupe"),
        Index("ix_notification_delivery_due", "status", "next_attempt_at"),
        Index("ix_notification_delivery_queue", "subscription_id", "cc_call_id", "status", "id"),
        Index("ix_notification_delivery_tenant", "tenant", "id"),
        Index("ix_notification_delivery_tenant_status", "tenant", "status", "id"),
        Index("ix_notification_delivery_tenant_call", "tenant", "cc_call_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigPK, primary_key=True))
    # No foreign key: a subscription removed meanwhile must never fail a record's save.
    subscription_id: int = Field(sa_column=Column(BigInteger(), nullable=False))
    tenant: str = Field(max_length=32)
    cc_call_id: str = Field(max_length=64)
    event_type: str = Field(max_length=16)
    # <call>:<type>[:<state>]: a save run twice (a retried local activity) enqueues once.
    dedupe_key: str = Field(max_length=96)
    webhook_id: str = Field(max_length=40)  # the webhook-id header: the same on every attempt
    call_json: str = Field(sa_column=Column(Text(), nullable=False))  # the row, then
    masked: bool = Field(default=False)
    at: int = Field(sa_column=_ms(nullable=False))  # when it happened (the payload's "at")
    status: str = Field(default=DeliveryStatus.PENDING.value, max_length=16)
    attempts: int = Field(default=0, sa_column=Column(Integer(), nullable=False))
    last_status: int | None = Field(default=None)  # the receiver's HTTP status
    last_error: str | None = Field(default=None, max_length=255)
    last_attempt_at: int | None = Field(default=None, sa_column=_ms())
    next_attempt_at: int = Field(sa_column=_ms(nullable=False))
    since: int = Field(sa_column=_ms(nullable=False))  # the retry period starts (enqueue, retry)
    delivered_at: int | None = Field(default=None, sa_column=_ms())


class NotificationSenderLease(SQLModel, table=True):
    """Which sender may POST now (one row, ``SENDER_LEASE``): whoever holds it unexpired
    (``store/notification_sending.py``). Temporal alone cannot promise one sender: it starts
    another once a heartbeat is late, whether or not the first one has stopped."""

    __tablename__ = "notification_sender_lease"

    name: str = Field(primary_key=True, max_length=16)
    holder: str = Field(default="", max_length=64)
    expires_at: int = Field(default=0, sa_column=_ms(nullable=False))


class CallFigures(SQLModel, table=True):
    """The figures of a tenant's closed calls created in one minute, hour or UTC day, per
    group (``store.figures``): kept as calls close, so ``GET /v1/stats`` adds up a few rows
    instead of reading every call. ``talk`` and ``wait`` are histograms (``store.histogram``)
    of talk seconds and placement-to-answer ms."""

    __tablename__ = "call_figures"
    # Kept in key order on SQLite too (as InnoDB does): one grouping's rows of a range are
    # one stretch of the table, not one row lookup each.
    __table_args__ = {"sqlite_with_rowid": False}

    # The key's order is the read's: a tenant's grouping, then each span's range of starts.
    tenant: str = Field(primary_key=True, max_length=32)
    dim: str = Field(primary_key=True, max_length=16)  # "" (none), channel, agent, close_type
    span: int = Field(primary_key=True)  # ms: a minute, an hour or a day
    start: int = Field(sa_column=Column(BigInteger(), primary_key=True))
    direction: str = Field(primary_key=True, max_length=8)
    grp: str = Field(primary_key=True, max_length=96)  # the group's value, as JSON
    calls: int
    placed: int
    connected: int
    talk_sum: int = Field(sa_type=BigInteger)
    talk: bytes = Field(sa_type=LargeBinary)  # store.histogram's blobs (at most ~40 KB)
    wait: bytes = Field(sa_type=LargeBinary)
