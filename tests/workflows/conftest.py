"""Fixtures of the workflow tests: SeatWorkflow's (tests/workflows/seat_support.py), and
``env``, one time-skipping test server per module for the CallWorkflow timer tests."""

from collections.abc import AsyncIterator

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from contracts.ids import SEARCH_ATTRIBUTES
from tests.workflows.seat_support import seat, seat_env  # noqa: F401  (fixtures)
from tests.workflows.servers import time_skipping_env


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await time_skipping_env()
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    await environment.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=environment.client.namespace,
            search_attributes={key.name: keyword for key in SEARCH_ATTRIBUTES},
        )
    )
    yield environment
    await environment.shutdown()
