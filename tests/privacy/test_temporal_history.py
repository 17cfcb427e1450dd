"""Issue 21 part 1 on the real stack: after a call on each channel, nothing Temporal keeps (each
workflow's whole history as the server returns it, read without CC's codec: inputs, signals,
updates, activity inputs and results, failures, memos, search attributes) holds the customer's
or the agent's number or the call's ``biz_data``; CC's own client reads them back; the call's
history still replays once a new key is put first (rotation), and not without the old key.

Before the codec every one of these scans found the numbers in clear."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.history.v1 import History
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from contracts.ids import workflow_id
from contracts.seat import seat_workflow_id
from core.codec import data_converter, new_key_entry
from tests.e2e.calls import place, wait_closed
from tests.stack import PAYLOAD_KEYS, Stack
from workflows.call import CallWorkflow

BIZ_DATA = "order-7f3a-private"


def secrets_of(agent: str, customer: str) -> list[bytes]:
    """Each number as E.164 and as its national digits, and the business data."""
    out = [BIZ_DATA.encode()]
    for number in (agent, customer):
        out += [number.encode(), number.removeprefix("+86").encode()]
    return out


async def raw_history(client: Client, wf_id: str) -> History:
    """The history as the server holds it: the service API, no data converter between."""
    history, token = History(), b""
    while True:
        page = await client.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=client.namespace,
                execution=WorkflowExecution(workflow_id=wf_id),
                next_page_token=token,
            )
        )
        history.events.extend(page.history.events)
        token = page.next_page_token
        if not token:
            return history


async def started_since(client: Client, since: datetime) -> set[str]:
    query = f'StartTime >= "{since.isoformat().replace("+00:00", "Z")}"'
    return {wf.id async for wf in client.list_workflows(query)}


@pytest.mark.parametrize("channel", ["e9", "hw", "jy"])
async def test_no_number_or_biz_data_in_any_history(stack: Stack, channel: str) -> None:
    since = datetime.now(UTC)
    suffix = f"{int(time.time() * 1000) % 10**6:06d}"
    agent, customer = f"+86137{suffix}01", f"+86139{suffix}02"
    call = await place(stack.api, channel=channel, caller=agent, called=customer, biz_data=BIZ_DATA)
    assert (await wait_closed(stack.api, call["id"]))["close_type"] == 0

    ids = {workflow_id(call["id"]), *await started_since(stack.client, since)}
    if channel == "hw":
        ids.add(seat_workflow_id("hw", call["agent"]))  # the seat's claims carry the phone
    scanned = 0
    for wf_id in sorted(ids):
        history = (await raw_history(stack.client, wf_id)).SerializeToString()
        for secret in secrets_of(agent, customer):
            assert secret not in history, f"{secret!r} in clear in {wf_id}'s history"
        scanned += 1
    assert scanned >= 2 if channel == "hw" else scanned >= 1

    # CC's own client (the codec) reads the call's input back.
    started = (await raw_history(stack.client, workflow_id(call["id"]))).events[0]
    payloads = started.workflow_execution_started_event_attributes.input.payloads
    assert all(p.metadata["encoding"] == b"binary/encrypted" for p in payloads)
    [inp] = await stack.client.data_converter.decode(payloads)
    assert customer in str(inp) and BIZ_DATA in str(inp)


async def test_a_history_sealed_with_key_1_replays_after_key_2_is_put_first(
    stack: Stack,
) -> None:
    call = await place(stack.api, biz_data=BIZ_DATA)
    await wait_closed(stack.api, call["id"])
    wf_id = workflow_id(call["id"])
    history = WorkflowHistory(wf_id, list((await raw_history(stack.client, wf_id)).events))

    rotated = data_converter([new_key_entry("k2"), *PAYLOAD_KEYS])
    result = await Replayer(workflows=[CallWorkflow], data_converter=rotated).replay_workflow(
        history
    )
    assert result.replay_failure is None

    without_old = data_converter([new_key_entry("k2")])
    with pytest.raises(RuntimeError, match="PayloadKeyError"):  # the key is named missing
        await Replayer(workflows=[CallWorkflow], data_converter=without_old).replay_workflow(
            history
        )
