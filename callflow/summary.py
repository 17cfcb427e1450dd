"""What the Temporal UI shows of a call (its user metadata): a one-line summary and details
set when the workflow starts, and current details kept up to date as the record changes.
Pure functions of the record: numbers masked (``core.phones.mask``), times as ISO 8601 UTC,
close types by name. All of it is sealed like every payload (core/codec.py): the operator
reads it through CC's codec endpoint."""

from __future__ import annotations

from datetime import UTC, datetime

from callflow.record import CallRecord
from core.phones import mask
from core.types import CloseType, Direction

_TIMES = (("created", "created"), ("a_call_time", "agent rung"), ("b_call_time", "customer rung"),
          ("conn_time", "bridged"), ("close_time", "closed"))  # fmt: skip


def iso(ms: int | None) -> str:
    """Epoch ms as the UI writes times (ISO 8601, UTC, to the second); '-' for none."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def close_name(close_type: CloseType | None) -> str:
    if close_type is None:
        return "-"
    return f"{close_type.value} {close_type.name.lower().replace('_', ' ')}"


def save_summary(record: CallRecord, line_freed: bool) -> str:
    """``save conn``, ``save close (0 normal), line freed``: what the UI lists per save."""
    text = f"save {record.state.value}"
    if record.close_type is not None:
        text += f" ({close_name(record.close_type)})"
    return text + (", line freed" if line_freed else "")


def _legs(record: CallRecord) -> str:
    return f"{mask(record.caller)} → {mask(record.called)}"


def start_summary(record: CallRecord) -> str:
    """``callback e9 +86138****0001 → +86139****0002`` (the UI's one line per workflow)."""
    kind = "inbound" if record.direction == Direction.IN.value else "callback"
    return f"{kind} {record.channel} {_legs(record)}"


def start_details(record: CallRecord, max_duration_s: int) -> str:
    rows = [
        ("call", record.cc_call_id),
        ("tenant", record.tenant),
        (
            "direction",
            "inbound (400 number)" if record.direction == Direction.IN.value else "callback",
        ),
        ("channel", record.channel),
        ("line", record.agent),
        ("leg A → leg B", _legs(record)),
        ("created", iso(record.created)),
        ("max duration", f"{max_duration_s} s"),
    ]
    return _table(rows)


def current_details(record: CallRecord) -> str:
    """The record as it stands: state, close type, vendor call id, the moments so far."""
    rows = [
        ("state", record.state.value),
        ("close type", close_name(record.close_type)),
        ("channel", record.channel),
        ("vendor call id", record.vendor_call_id or "-"),
        ("leg A → leg B", _legs(record)),
        *((label, iso(getattr(record, field))) for field, label in _TIMES),
        ("duration", f"{record.duration} s"),
        ("recording", "copied" if record.audio_url else (record.recording_error or "-")),
    ]
    return _table(rows)


def _table(rows: list[tuple[str, str]]) -> str:
    """Markdown, which the UI renders."""
    return "\n".join(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])
