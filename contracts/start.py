"""What every start of a CallWorkflow gives Temporal beside its input: the search attributes
the UI filters on (no number among them) and the UI's summary and details of the call
(``callflow.summary``: masked numbers, ISO times; sealed like every payload)."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from callflow.summary import start_details, start_summary
from contracts.call import CallInput
from contracts.ids import SA_CALL_STATE, SA_CHANNEL, SA_TENANT
from core.types import CallState


def call_start_options(inp: CallInput) -> dict[str, Any]:
    """Keyword arguments for ``Client.start_workflow`` of the call ``inp``."""
    record = inp.record
    return {
        "search_attributes": TypedSearchAttributes(
            [
                SearchAttributePair(SA_CALL_STATE, CallState.INIT.value),
                SearchAttributePair(SA_CHANNEL, record.channel),
                SearchAttributePair(SA_TENANT, record.tenant),
            ]
        ),
        "static_summary": start_summary(record),
        "static_details": start_details(record, inp.max_duration_s),
    }
