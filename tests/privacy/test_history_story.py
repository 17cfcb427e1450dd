"""Issue 21 part 5: a call's page in the Temporal UI tells its story without expanding a row:
the workflow's summary and details (masked numbers, ISO times), current details kept up to
date to the close, and a summary on each activity and timer of the call's history."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.sdk.v1 import WorkflowMetadata

from contracts.ids import workflow_id
from tests.e2e.calls import place, wait_closed
from tests.privacy.test_temporal_history import raw_history
from tests.stack import Stack

AGENT, CUSTOMER = "+8613712340001", "+8613912340002"


async def summaries(stack: Stack, events: list[HistoryEvent]) -> list[str]:
    """Each event's user-metadata summary, opened with CC's codec, in history order."""
    found = []
    for event in events:
        if event.user_metadata.HasField("summary"):
            [text] = await stack.client.data_converter.decode([event.user_metadata.summary])
            found.append(f"{EventType.Name(event.event_type)}: {text}")
    return found


async def test_a_calls_history_reads_as_its_story(stack: Stack) -> None:
    call = await place(stack.api, caller=AGENT, called=CUSTOMER, biz_data="x")
    await wait_closed(stack.api, call["id"])
    handle = stack.client.get_workflow_handle(workflow_id(call["id"]))
    await handle.result()

    described = await handle.describe()
    summary = await described.static_summary()
    details = await described.static_details()
    assert summary == "callback e9 +86137****0001 → +86139****0002"
    assert details is not None and "| tenant | tenant-a |" in details
    assert CUSTOMER not in (summary or "") + details

    events = list((await raw_history(stack.client, handle.id)).events)
    story = await summaries(stack, events)
    assert any(line.endswith(": place e9") for line in story), story
    assert any("save conn" in line for line in story), story
    assert any("save close (0 normal)" in line for line in story), story
    assert any(line.startswith("EVENT_TYPE_TIMER_STARTED: ") for line in story), story
    assert not any(CUSTOMER in line or AGENT in line for line in story)

    # Each vendor event's signal names its kind (before: 11 rows of "vendor_event").
    signalled = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    names = [e.workflow_execution_signaled_event_attributes.signal_name
             for e in events if e.event_type == signalled]  # fmt: skip
    assert names and all(name.startswith("vendor_event.") for name in names), names
    assert {"vendor_event.bridged", "vendor_event.hangup"} <= set(names), names

    # The current details follow the record to its close.
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    current = metadata.current_details
    assert "| state | close |" in current and "| close type | 0 normal |" in current, current
    assert CUSTOMER not in current and "+86139****0002" in current
