"""Names both sides of a Temporal call must agree on: ids, types, signals, queries, updates,
search attributes."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

TASK_QUEUE_DEFAULT = "cc-calls"

# Workflow types (the class names the worker registers).
CALL_WORKFLOW = "CallWorkflow"
LATE_EVENTS_WORKFLOW = "LateEventsWorkflow"
HEALTH_WORKFLOW = "ChannelHealthWorkflow"
INBOX_WORKFLOW = "InboxWorkflow"

# CallWorkflow: one per call, id ``call-<cc_call_id>``.
VENDOR_EVENT_SIGNAL = "vendor_event"  # a unified CallEvent, from intake
STATUS_QUERY = "status"  # the record as the workflow holds it
HANGUP_UPDATE = "hangup"  # end the call (the API's DELETE); refused once closed
# A series' earlier try cancels the try it just made, still scheduled (its series cancelled).
CANCEL_SCHEDULED_SIGNAL = "cancel_scheduled"

# LateEventsWorkflow: events for a call whose CallWorkflow has finished, id ``late-<id>``.
LATE_EVENT_SIGNAL = "late_event"

# The one ChannelHealthWorkflow: placement outcomes from CallWorkflows, new settings from
# every worker at start-up.
HEALTH_WORKFLOW_ID = "channel-health"
PLACEMENT_SIGNAL = "placement_outcome"
HEALTH_CONFIGURE_SIGNAL = "configure"
HEALTH_QUERY = "health"
LAST_PROBE_ROUND_QUERY = "last_probe_round"

# The one InboxWorkflow: signals again the inbox events whose signal failed.
INBOX_WORKFLOW_ID = "inbox-redelivery"
INBOX_CONFIGURE_SIGNAL = "configure"

NOTIFY_WORKFLOW_ID = "notifications"  # the one NotificationWorkflow (contracts/notify.py)

SA_CALL_STATE = SearchAttributeKey.for_keyword("CallState")
SA_CHANNEL = SearchAttributeKey.for_keyword("Channel")
SA_TENANT = SearchAttributeKey.for_keyword("Tenant")
SEARCH_ATTRIBUTES = (SA_CALL_STATE, SA_CHANNEL, SA_TENANT)


def vendor_event_signal(kind: str) -> str:
    """The signal a vendor event is sent as: ``vendor_event.b_ringing``, so that the Temporal
    UI's list of a call's events names each one's kind (CallWorkflow still takes the older,
    kind-less ``vendor_event`` of calls signalled before)."""
    return f"{VENDOR_EVENT_SIGNAL}.{kind}"


def workflow_id(cc_call_id: str) -> str:
    return f"call-{cc_call_id}"


def late_workflow_id(cc_call_id: str) -> str:
    return f"late-{cc_call_id}"


def placement_queue(task_queue: str, channel: str) -> str:
    """The task queue a channel's place requests go to: one per vendor, so the worker can
    hold each to the calls per second its vendor allows (``CC_<VENDOR>_CPS``), across every
    worker (Temporal's task-queue rate limit is the server's, not one worker's)."""
    return f"{task_queue}-place-{channel}"
