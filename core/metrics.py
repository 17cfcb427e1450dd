"""Prometheus metrics (prometheus-client), shared by the API and the worker."""

from __future__ import annotations

from prometheus_client import Counter

CALLS_ACCEPTED = Counter("cc_calls_accepted", "Calls accepted by POST /v1/calls", ["channel"])
CALLS_REFUSED = Counter("cc_calls_refused", "Calls refused by POST /v1/calls", ["code"])
VENDOR_EVENTS = Counter(
    "cc_vendor_events", "Vendor events received, by how they were handled", ["channel", "outcome"]
)
